"""The ``learned_mask`` arm's removal: as many units as the concept arm removes, chosen by a learned mask.

The gates learn on the training split with the base tagger frozen (``learn_mask``); the units with
the highest gates are then pruned as the config prunes ranked neurons. The optimisation's steps,
seconds and loss terms are kept beside the choice (``removal.json`` in the arm's ``pruned`` stage
folder).
"""

from __future__ import annotations

from lens_relearn.models.sites import Neuron
from lens_relearn.study.folders import write_json
from lens_relearn.study.removal import RECORD_FILE, NeuronRemoval, RemovalContext
from lens_relearn.study.skeleton import learned_mask
from lens_relearn.tagger.model import Tagger


class LearnedMaskNeurons(NeuronRemoval):
    """``count`` units of the site, chosen by a mask learned to forget the concept and keep the rest."""

    name = "learned_mask"
    description = "learned mask"

    def choose(self, tagger: Tagger, context: RemovalContext) -> list[Neuron]:
        assert context.inputs is not None  # NeuronRemoval.remove chooses only with the inputs
        mask = learned_mask(context.config, tagger, context.inputs, context.count, seed=context.key.seed)
        write_json(
            context.where / RECORD_FILE,
            {"steps": mask.steps, "seconds": mask.seconds, "forget": list(mask.forget), "retain": list(mask.retain)},
        )
        return list(mask.neurons)
