"""One tiny finished study shared by the view and wiring tests, with its stages' live logits."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from lens_relearn import load_ner, write_report
from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.runner import StageObserver, run_experiment

TINY_STUDY = preset(
    "quick",
    model="tiny-bert",
    n_train=60,
    n_validation=30,
    n_test=20,
    n_novel=10,
    base_epochs=1,
    rounds=2,
    arms=("concept", "random", "none"),
)


@dataclass(frozen=True)
class TinyStudy:
    """A finished study, and each stage's logits on ``probe`` taken from the live model."""

    out: Path
    config: ExperimentConfig
    probe: list
    live: dict


@pytest.fixture(scope="session")
def live_logits() -> Callable[[list], tuple[StageObserver, dict]]:
    """``observer, live = live_logits(probe)``: a stage observer that records, as each stage is described, the
    live model's logits on ``probe`` into ``live``, by ``(arm or "base", stage)``."""

    def make(probe: list) -> tuple[StageObserver, dict]:
        live = {}

        def record_logits(outcome):
            tagger, was_training = outcome.tagger, outcome.tagger.training
            with torch.no_grad():
                live[outcome.key.arm or "base", outcome.key.stage] = tagger.eval()(tagger.encode(probe))
            tagger.train(was_training)

        return record_logits, live

    return make


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, live_logits) -> TinyStudy:
    """The tiny-bert study (every arm, two rounds), its live logits recorded as each stage is described."""
    out = tmp_path_factory.mktemp("tiny-study") / "run"
    probe = load_ner("synthetic", n_train=1, n_validation=6, n_test=1, n_novel=0).validation
    observer, live = live_logits(probe)
    run_experiment(TINY_STUDY, out, progress=False, observer=observer)
    return TinyStudy(out, TINY_STUDY, probe, live)


@pytest.fixture(scope="session")
def tiny_run(tiny_study) -> Path:
    """The folder of the tiny study."""
    return tiny_study.out


@pytest.fixture(scope="session")
def tiny_page(tiny_run) -> str:
    """The tiny study's HTML report."""
    return write_report(tiny_run).read_text()
