"""Neurons: activation statistics and top tokens, concept rankings (attribution too), pruning."""

from lens_relearn.neurons.activations import ActivationStats, TopTokens, collect_stats, top_tokens
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.pruning import PrunedNeurons, prune, random_neurons
from lens_relearn.neurons.ranking import Ranking, rank_neurons

__all__ = [
    "ActivationStats",
    "PrunedNeurons",
    "Ranking",
    "TopTokens",
    "collect_stats",
    "prune",
    "random_neurons",
    "rank_by_attribution",
    "rank_neurons",
    "top_tokens",
]
