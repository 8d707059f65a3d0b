"""The ``erase`` arm's removal: LEACE erasers at every layer of the residual stream (``erase_concept``).

The erasers are fitted on the concept corpus, the concept's words against the rest, with the
study's word pooling, each layer's with the earlier ones in place, and saved in the arm's
``pruned`` stage folder (``erasers.safetensors``), from which ``load_stage`` applies them again;
the fitting's seconds are kept beside them (``removal.json``). No neuron is pruned: the neuron
tables of the arm have none marked.
"""

from __future__ import annotations

import time

from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.erasure import erase_concept, load_erasers
from lens_relearn.study.analysis import AppliedRemoval
from lens_relearn.study.folders import write_json
from lens_relearn.study.removal import RECORD_FILE, Removal, RemovalContext
from lens_relearn.tagger.model import Tagger

ERASERS_FILE = "erasers.safetensors"


class ConceptErasure(Removal):
    """The concept erased linearly from the residual stream, layer after layer."""

    name = "erase"
    description = "linear concept erasure (LEACE)"

    def remove(self, tagger: Tagger, context: RemovalContext) -> AppliedRemoval:
        if (saved := context.saved(ERASERS_FILE)) is not None:
            return load_erasers(tagger.model, saved)
        if context.inputs is None:
            raise LensRelearnError(f"{context.where / ERASERS_FILE} is missing: the arm's erasers were never fitted.")
        start = time.perf_counter()
        erased = erase_concept(
            tagger.model,
            context.inputs.corpus,
            context.inputs.corpus_concept,
            aggregation=context.config.aggregation,
            progress=False,
        )
        erased.save(context.where / ERASERS_FILE)
        write_json(context.where / RECORD_FILE, {"seconds": time.perf_counter() - start, "layers": len(erased.erasers)})
        return erased
