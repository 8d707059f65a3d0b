"""The random arm's removal, the baseline: as many neurons as the concept arm's, drawn from the site by the seed."""

from __future__ import annotations

from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.pruning import random_neurons
from lens_relearn.study.removal import NeuronRemoval, RemovalContext
from lens_relearn.tagger.model import Tagger


class RandomNeurons(NeuronRemoval):
    """``count`` neurons of the site drawn at random with the study's seed."""

    name = "random"
    description = "random pruning (baseline)"

    def choose(self, tagger: Tagger, context: RemovalContext) -> list[Neuron]:
        return random_neurons(tagger.model, context.count, site=context.config.site, seed=context.key.seed)
