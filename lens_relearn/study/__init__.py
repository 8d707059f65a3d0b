"""The relearning study: its config, the run folder, the runner and the tables it writes."""

from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.runner import load_stage, run_experiment

__all__ = ["ExperimentConfig", "load_stage", "preset", "run_experiment"]
