"""The relearning study's core: its config, the inputs it reads, its run folders, the seams for analyses and
removals, the runner, the selectivity sweep and iterative removal."""

from lens_relearn.study.analysis import ANALYSES, Analysis, Needs, StageOutcome, StudyContext, register_analysis
from lens_relearn.study.config import ExperimentConfig, RemovalConfig, preset, removal_preset
from lens_relearn.study.folders import StageKey, StudyFolder, open_folder
from lens_relearn.study.inputs import Inputs, load_inputs
from lens_relearn.study.iterative import run_removal
from lens_relearn.study.removal import REMOVALS, NeuronRemoval, Removal, RemovalContext, register_removal
from lens_relearn.study.runner import load_stage, run_experiment
from lens_relearn.study.summary import StudySummary
from lens_relearn.study.sweep import selectivity_sweep

__all__ = [
    "ANALYSES",
    "REMOVALS",
    "Analysis",
    "ExperimentConfig",
    "Inputs",
    "Needs",
    "NeuronRemoval",
    "Removal",
    "RemovalConfig",
    "RemovalContext",
    "StageKey",
    "StageOutcome",
    "StudyContext",
    "StudyFolder",
    "StudySummary",
    "load_inputs",
    "load_stage",
    "open_folder",
    "preset",
    "register_analysis",
    "register_removal",
    "removal_preset",
    "run_experiment",
    "run_removal",
    "selectivity_sweep",
]
