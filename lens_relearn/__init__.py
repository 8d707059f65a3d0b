"""lens_relearn: do language models relearn concepts whose neurons were pruned, and where?"""

from lens_relearn.activations import ActivationStats, TopTokens, collect_stats, top_tokens
from lens_relearn.alignment import EncodedBatch, encode, pool_words
from lens_relearn.data import (
    CONLL_TAGS,
    Concept,
    NerData,
    Sentence,
    find_concept,
    load_ner,
    read_conll,
    read_token_label_files,
    write_conll,
)
from lens_relearn.errors import LensRelearnError
from lens_relearn.models import (
    Neuron,
    NeuronSite,
    known_specs,
    load_model,
    neuron_site,
    neuron_sites,
)
from lens_relearn.pruning import PrunedNeurons, prune, random_neurons
from lens_relearn.ranking import Ranking, rank_neurons
from lens_relearn.tagger import Tagger, TrainHistory, entity_scores, evaluate_tagger, train_tagger

__all__ = [
    "ActivationStats",
    "CONLL_TAGS",
    "Concept",
    "EncodedBatch",
    "LensRelearnError",
    "NerData",
    "Neuron",
    "NeuronSite",
    "PrunedNeurons",
    "Ranking",
    "Sentence",
    "Tagger",
    "TopTokens",
    "TrainHistory",
    "collect_stats",
    "encode",
    "entity_scores",
    "evaluate_tagger",
    "find_concept",
    "known_specs",
    "load_model",
    "load_ner",
    "neuron_site",
    "neuron_sites",
    "pool_words",
    "prune",
    "random_neurons",
    "rank_neurons",
    "read_conll",
    "read_token_label_files",
    "top_tokens",
    "train_tagger",
    "write_conll",
]
