"""The concept arm's removal: the neurons the config's ranking puts first for the concept on the base model."""

from __future__ import annotations

import torch
from einops import rearrange

from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.ranking import Ranking
from lens_relearn.study.removal import NeuronRemoval, RemovalContext
from lens_relearn.tagger.model import Tagger


class ConceptNeurons(NeuronRemoval):
    """The ``count`` best neurons of the base stage's ranking (its scores in the base neuron table)."""

    name = "concept"
    description = "concept pruning"

    def choose(self, tagger: Tagger, context: RemovalContext) -> list[Neuron]:
        assert context.inputs is not None  # NeuronRemoval.remove chooses only with the inputs
        scores = torch.tensor(context.base_neurons()["score"].to_numpy())
        units = context.inputs.site.units
        ranking = Ranking(
            context.inputs.corpus_concept.name,
            context.config.ranking,
            context.config.site,
            rearrange(scores, "(layers units) -> layers units", units=units),
        )
        return ranking.top(context.count)
