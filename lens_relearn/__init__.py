"""lens_relearn: do language models relearn concepts whose neurons were pruned, and where?

The subpackages follow the pipeline: ``models`` -> ``data`` -> ``tagger`` -> ``neurons`` ->
``study`` -> ``views``; each imports only from the ones before it.
"""

from lens_relearn.data import (
    CONLL_TAGS,
    Concept,
    EncodedBatch,
    NerData,
    Sentence,
    encode,
    find_concept,
    load_ner,
    pool_words,
    read_conll,
    read_token_label_files,
    write_conll,
)
from lens_relearn.errors import LensRelearnError
from lens_relearn.models import Neuron, NeuronSite, known_specs, load_model, neuron_site, neuron_sites
from lens_relearn.neurons import (
    ActivationStats,
    PrunedNeurons,
    Ranking,
    TopTokens,
    collect_stats,
    prune,
    random_neurons,
    rank_neurons,
    top_tokens,
)
from lens_relearn.study import ExperimentConfig, load_stage, preset, run_experiment
from lens_relearn.tagger import Tagger, TrainHistory, entity_scores, evaluate_tagger, train_tagger
from lens_relearn.views import (
    View,
    f1_table,
    neuron_view,
    neuron_views,
    plot_f1,
    plot_layer_saliency,
    plot_redistribution,
    plot_saliency_heatmap,
    plot_similarity,
    write_report,
)

__all__ = [
    "ActivationStats",
    "CONLL_TAGS",
    "Concept",
    "EncodedBatch",
    "ExperimentConfig",
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
    "load_stage",
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
    "preset",
    "prune",
    "random_neurons",
    "rank_neurons",
    "read_conll",
    "read_token_label_files",
    "run_experiment",
    "top_tokens",
    "train_tagger",
    "write_conll",
    "write_report",
]
