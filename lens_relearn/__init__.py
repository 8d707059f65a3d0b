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
from lens_relearn.report import write_report
from lens_relearn.tagger import Tagger, TrainHistory, entity_scores, evaluate_tagger, train_tagger
from lens_relearn.viz import (
    View,
    f1_table,
    neuron_view,
    neuron_views,
    plot_f1,
    plot_layer_saliency,
    plot_redistribution,
    plot_saliency_heatmap,
    plot_similarity,
)

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
    "View",
    "collect_stats",
    "encode",
    "entity_scores",
    "evaluate_tagger",
    "f1_table",
    "find_concept",
    "known_specs",
    "load_model",
    "load_ner",
    "neuron_site",
    "neuron_sites",
    "neuron_view",
    "neuron_views",
    "plot_f1",
    "plot_layer_saliency",
    "plot_redistribution",
    "plot_saliency_heatmap",
    "plot_similarity",
    "pool_words",
    "prune",
    "random_neurons",
    "rank_neurons",
    "read_conll",
    "read_token_label_files",
    "top_tokens",
    "train_tagger",
    "write_conll",
    "write_report",
]
