"""The relearning study: its config, the run folder, the runner, the tables it writes, the selectivity sweep,
and iterative removal."""

from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.removal import RemovalConfig, removal_preset, run_removal
from lens_relearn.study.runner import load_stage, run_experiment
from lens_relearn.study.sweep import selectivity_sweep

__all__ = [
    "ExperimentConfig",
    "RemovalConfig",
    "load_stage",
    "preset",
    "removal_preset",
    "run_experiment",
    "run_removal",
    "selectivity_sweep",
]
