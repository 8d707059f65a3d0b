"""Retraining conditions side by side: what each arm retrained on, and where the concept stood after its removal
and after the last round (test split), beside the last residual layer's probe."""

from __future__ import annotations

from dataclasses import dataclass

from lens_relearn.stats import interval
from lens_relearn.study.analysis import Analysis, StudyContext, finite
from lens_relearn.study.config import arm_parts
from lens_relearn.study.summary import Interval


@dataclass(frozen=True)
class ArmRetraining:
    """One arm at ``base``, ``pruned`` and the last round (means over seeds).

    Attributes:
        pruning: Its removal.
        data: Its retraining data (``full``, ``without_concept``, ``concept_as_o``).
        sentences: How many sentences it retrained on.
        concept_f1: The concept's F1, and its interval over seeds in ``concept_f1_intervals``.
        other_f1: The other entity types' mean F1 (None where the split has none).
        probe_accuracy_last_layer: The last residual layer's probe accuracy.
    """

    pruning: str
    data: str
    sentences: int
    concept_f1: dict[str, float]
    concept_f1_intervals: dict[str, Interval]
    other_f1: dict[str, float | None]
    probe_accuracy_last_layer: dict[str, float]


@dataclass(frozen=True)
class RetrainingSummary:
    """Every arm's retraining data and where the concept stood, by arm."""

    arms: dict[str, ArmRetraining]


class Retraining(Analysis):
    """Every arm's retraining data and the concept's F1 and probe accuracy before and after it."""

    name = "retraining"
    requires = ("probes",)
    summary_type = RetrainingSummary

    def summarise(self, study: StudyContext) -> RetrainingSummary:
        return RetrainingSummary({arm: self._arm(study, arm) for arm in study.config.arms})

    def _arm(self, study: StudyContext, arm: str) -> ArmRetraining:
        pruning, condition = arm_parts(arm)
        stages = ("base", "pruned", study.stages[-1])
        performance, probes = study.folder.table("performance"), study.folder.table("probes")
        test = performance[(performance.arm == arm) & (performance.split == "test")]
        by_stage = test.groupby("stage")
        concept, others = by_stage.concept_f1.mean(), by_stage.other_f1.mean()
        last_layer = probes[(probes.arm == arm) & (probes.layer == probes.layer.max())].groupby("stage").accuracy.mean()
        return ArmRetraining(
            pruning=pruning,
            data=condition,
            sentences=len(study.inputs.retraining[condition, study.config.seeds[0]]),
            concept_f1={stage: float(concept[stage]) for stage in stages},
            concept_f1_intervals={
                stage: Interval(**interval(test[test.stage == stage].concept_f1.tolist())) for stage in stages
            },
            other_f1={stage: finite(others[stage]) for stage in stages},
            probe_accuracy_last_layer={stage: float(last_layer[stage]) for stage in stages},
        )
