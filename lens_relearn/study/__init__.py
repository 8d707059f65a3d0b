"""The relearning study: its config, the run folder, the runner, the tables it writes, and the selectivity sweep."""

from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.runner import load_stage, run_experiment
from lens_relearn.study.sweep import selectivity_sweep

__all__ = ["ExperimentConfig", "load_stage", "preset", "run_experiment", "selectivity_sweep"]
