"""The control arm's removal: nothing, so retraining alone is measured."""

from __future__ import annotations

from lens_relearn.models.sites import Neuron
from lens_relearn.study.removal import NeuronRemoval, RemovalContext
from lens_relearn.tagger.model import Tagger


class NoRemoval(NeuronRemoval):
    """No neuron (an empty pruning, so the arm's files and tables are those of every other arm)."""

    name = "none"
    description = "no pruning (control)"

    def choose(self, tagger: Tagger, context: RemovalContext) -> list[Neuron]:
        return []
