"""lens_relearn: do language models relearn concepts whose neurons were pruned, and where?

The subpackages follow the pipeline: ``models`` -> ``data`` -> ``tagger`` -> ``neurons`` ->
``study`` -> ``removals`` -> ``analyses`` -> ``views``; each imports only from the ones before it.
Importing the package registers the built-in removals, analyses and report sections; the names
below are what a notebook needs, and everything else is importable from its subpackage.
"""

import lens_relearn.analyses
import lens_relearn.removals
import lens_relearn.views  # noqa: F401  (registers the report sections)
from lens_relearn.data import load_ner
from lens_relearn.errors import LensRelearnError
from lens_relearn.models import load_model
from lens_relearn.neurons import collect_stats, prune, rank_neurons, top_tokens
from lens_relearn.study import (
    Analysis,
    ExperimentConfig,
    NeuronRemoval,
    RemovalConfig,
    StageOutcome,
    load_stage,
    preset,
    register_analysis,
    register_removal,
    removal_preset,
    run_experiment,
    run_removal,
    selectivity_sweep,
)
from lens_relearn.tagger import Tagger, evaluate_tagger, train_tagger
from lens_relearn.views import ReportSection, Run, neuron_view, open_run, register_section, write_report

__all__ = [
    "Analysis",
    "ExperimentConfig",
    "LensRelearnError",
    "NeuronRemoval",
    "RemovalConfig",
    "ReportSection",
    "Run",
    "StageOutcome",
    "Tagger",
    "collect_stats",
    "evaluate_tagger",
    "load_model",
    "load_ner",
    "load_stage",
    "neuron_view",
    "open_run",
    "preset",
    "prune",
    "rank_neurons",
    "register_analysis",
    "register_removal",
    "register_section",
    "removal_preset",
    "run_experiment",
    "run_removal",
    "selectivity_sweep",
    "top_tokens",
    "train_tagger",
    "write_report",
]
