"""Collateral damage: what each arm did to every entity type, and how selective its removal was (docs/design.md §17)."""

from __future__ import annotations

from dataclasses import dataclass

from lens_relearn.stats import selectivity
from lens_relearn.study.analysis import Analysis, StudyContext, finite

SPLIT = "test"  # the held-out split collateral damage is measured on


@dataclass(frozen=True)
class ArmCollateral:
    """One arm on the test split, stage by stage (means over seeds).

    Attributes:
        concept_f1: The concept's F1.
        other_f1: The other entity types' mean F1 (None where the split has none).
        per_type: Every entity type's F1, in label order.
        selectivity: The share of the others' F1 a stage kept minus the share of the concept's
            (``lens_relearn.stats.selectivity``; None where undefined), from ``pruned`` on.
    """

    concept_f1: dict[str, float]
    other_f1: dict[str, float | None]
    per_type: dict[str, dict[str, float]]
    selectivity: dict[str, float | None]


@dataclass(frozen=True)
class CollateralSummary:
    """What each arm did to the concept and to the other entity types, by arm, on the split named."""

    split: str
    arms: dict[str, ArmCollateral]


class Collateral(Analysis):
    """Every entity type's F1 at every stage of every arm, and each removal's selectivity."""

    name = "collateral"
    summary_type = CollateralSummary

    def summarise(self, study: StudyContext) -> CollateralSummary:
        return CollateralSummary(SPLIT, {arm: self._arm(study, arm) for arm in study.config.arms})

    def _arm(self, study: StudyContext, arm: str) -> ArmCollateral:
        stages = study.stages
        performance, types = study.folder.table("performance"), study.folder.table("types")
        test = performance[(performance.arm == arm) & (performance.split == SPLIT)].groupby("stage")
        concept, others = test.concept_f1.mean(), test.other_f1.mean()
        per_type = types[(types.arm == arm) & (types.split == SPLIT)].groupby(["type", "stage"]).f1.mean()
        return ArmCollateral(
            concept_f1={stage: float(concept[stage]) for stage in stages},
            other_f1={stage: finite(others[stage]) for stage in stages},
            per_type={
                kind: {stage: float(per_type[kind, stage]) for stage in stages}
                for kind in dict.fromkeys(types.type)  # label order
            },
            selectivity={stage: selectivity(concept.to_dict(), others.to_dict(), stage) for stage in stages[1:]},
        )
