"""Recovery curves: how fast the concept comes back, step by step, while the tagger retrains (docs/design.md §20).

A monitor scores a fixed, seeded subset of the validation split every few training steps (the
base fine-tune and every round; the pruned model at step 0): overall F1, the concept's F1 and the
other types' mean F1. Each stage keeps its points in ``dynamics.csv``; the run's ``dynamics.csv``
has them all, and the summary says how many steps and sentences each arm took to reach 50% and
90% of the base model's concept F1, and the area under its curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from lens_relearn.data.sources import subsample
from lens_relearn.stats import interval
from lens_relearn.study.analysis import Analysis, StageOutcome, StudyContext, finite, mean_f1
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.folders import StageKey
from lens_relearn.study.tables import recovery_measures
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores, evaluate_tagger

DYNAMICS = ["seed", "arm", "stage", "step", "examples", "f1", "concept_f1", "other_f1"]  # dynamics.csv's columns


@dataclass(frozen=True)
class KnownInterval:
    """A mean with its 95% Student-t interval over the ``n`` seeds where the value is known (None: none is)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class ArmRecovery:
    """One arm's recovery measures over seeds (``recovery_measures``), and each seed's."""

    base_concept_f1: KnownInterval
    steps_to_50: KnownInterval
    examples_to_50: KnownInterval
    steps_to_90: KnownInterval
    examples_to_90: KnownInterval
    auc: KnownInterval
    per_seed: dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class RecoverySummary:
    """How many monitor sentences, and every arm's recovery."""

    sentences: int
    arms: dict[str, ArmRecovery]


class _Curve:
    """The points one training run adds to a recovery curve (a ``TrainingMonitor``)."""

    def __init__(self, study: StudyContext, key: StageKey, tagger: Tagger, start: tuple[int, int], every: int) -> None:
        self.study, self.key, self.tagger, self.start, self.every = study, key, tagger, start, every
        self.points: list[dict] = []

    def __call__(self, steps: int, seen: int) -> None:
        self.points.append(_point(self.study, self.key, self.tagger, self.start[0] + steps, self.start[1] + seen))


class Recovery(Analysis):
    """Recovery curves of every stage's training, and how fast each arm's concept came back."""

    name = "recovery"
    summary_type = RecoverySummary

    def applies(self, config: ExperimentConfig) -> str | None:
        return "monitor_sentences is 0" if config.monitor_sentences == 0 else None

    def monitor(self, study: StudyContext, key: StageKey, tagger: Tagger, start: tuple[int, int], steps: int) -> _Curve:
        return _Curve(study, key, tagger, start, study.config.monitor_every or max(1, math.ceil(steps / 10)))

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        curve = outcome.monitors.get(self.name)
        points = curve.points if isinstance(curve, _Curve) else [_point(study, outcome.key, outcome.tagger, 0, 0)]
        return {"dynamics": pd.DataFrame(points, columns=DYNAMICS)}

    def summarise(self, study: StudyContext) -> RecoverySummary | None:
        main = study.main_arm
        curves = []
        for arm, key in study.stage_keys():
            points = study.folder.stage_table(key, "dynamics")
            if len(points) and (key.arm is not None or arm == main):  # the base curve is the seed's: once
                curves.append(points.assign(arm=key.arm))
        if not curves:
            return None
        dynamics = pd.concat(curves, ignore_index=True)
        study.folder.write_table("dynamics", dynamics)
        arms = {arm: self._arm(study, dynamics, arm) for arm in study.config.arms}
        return RecoverySummary(len(monitor_sentences(study)), arms)

    def _arm(self, study: StudyContext, dynamics: pd.DataFrame, arm: str) -> ArmRecovery:
        per_seed = {}
        for seed in study.config.seeds:
            base = dynamics[(dynamics.seed == seed) & (dynamics.stage == "base")].sort_values("step")
            curve = dynamics[(dynamics.seed == seed) & (dynamics.arm == arm) & (dynamics.stage != "base")]
            reference = float(base.concept_f1.iloc[-1])
            per_seed[str(seed)] = {"base_concept_f1": reference, **recovery_measures(curve, reference)}
        over_seeds = {
            measure: _known_interval([values[measure] for values in per_seed.values()])
            for measure in ("base_concept_f1", "steps_to_50", "examples_to_50", "steps_to_90", "examples_to_90", "auc")
        }
        return ArmRecovery(**over_seeds, per_seed=per_seed)


def monitor_sentences(study: StudyContext) -> list:
    """The validation sentences the curves are scored on: a fixed subset, the same whatever the study's seed."""
    return subsample(study.inputs.data.validation, study.config.monitor_sentences, 0, "monitor")


def _point(study: StudyContext, key: StageKey, tagger: Tagger, step: int, examples: int) -> dict:
    """One point of a recovery curve: F1, concept F1 and other types' F1 on the monitor sentences."""
    scores = evaluate_tagger(tagger, monitor_sentences(study))
    concept = study.inputs.concept
    return {
        "seed": key.seed,
        "arm": key.arm,
        "stage": key.stage,
        "step": step,
        "examples": examples,
        "f1": scores["f1"],
        "concept_f1": concept_scores(scores, concept.members)["f1"],
        "other_f1": mean_f1(scores, concept.contrast),
    }


def _known_interval(values: list[float | int | None]) -> KnownInterval:
    """The Student-t interval of the values that are known (``n`` of them; NaN becomes None)."""
    known = interval([float(value) for value in values if value is not None])
    return KnownInterval(finite(known["mean"]), finite(known["low"]), finite(known["high"]), known["n"])
