"""The removals side by side: one row an arm, on the same task, budget and retraining (docs/design.md §24).

Each row reads what the other analyses measured on the test split (means over seeds): the
concept's F1 before and after the removal, the share of the other entity types' F1 the removal
kept and its selectivity (``collateral``), the last residual layer's probe accuracy after the
removal beside the majority class (``probes``), the concept's F1 after the first and the last
round, the steps its F1 took to come back to 50% and 90% of base (``recovery``, when it ran),
and the concept's F1 after the last round of the same removal retrained without the concept's
sentences (its ``@without_concept`` arm, when the study has one). What the removal itself said of
how it chose (``removal.json`` in the ``pruned`` stage: a learned mask's steps and seconds, an
eraser's seconds) is averaged over seeds beside.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from lens_relearn.analyses.collateral import CollateralSummary
from lens_relearn.analyses.probes import ProbesSummary
from lens_relearn.analyses.recovery import RecoverySummary
from lens_relearn.study.analysis import Analysis, StudyContext, finite
from lens_relearn.study.config import arm_parts
from lens_relearn.study.folders import StageKey, read_json
from lens_relearn.study.removal import RECORD_FILE


@dataclass(frozen=True)
class RemovalRow:
    """One arm's removal and what followed it (means over seeds; None where not measured or undefined).

    Attributes:
        removal: The arm's removal.
        data: Its retraining data.
        units: Neurons it pruned (0 for a removal that edits directions, as erasure).
        concept_f1_base: The concept's F1 before any removal.
        concept_f1_removed: The concept's F1 right after the removal.
        others_kept: The share of the other types' mean F1 the removal kept.
        selectivity: ``others_kept`` minus the share of the concept's F1 it kept.
        probe_accuracy: The last residual layer's probe accuracy after the removal.
        probe_majority: The majority class's accuracy on the same words.
        concept_f1_round1: The concept's F1 after the first round of retraining.
        concept_f1_last: The concept's F1 after the last round.
        steps_to_50: Training steps until the concept's F1 was back at 50% of base.
        steps_to_90: The same to 90%.
        concept_f1_without_concept: The concept's F1 after the last round of this removal's ``@without_concept``
            arm.
        record: The removal's own numbers (``removal.json``), means over seeds.
    """

    removal: str
    data: str
    units: int
    concept_f1_base: float
    concept_f1_removed: float
    others_kept: float | None
    selectivity: float | None
    probe_accuracy: float | None
    probe_majority: float | None
    concept_f1_round1: float
    concept_f1_last: float
    steps_to_50: float | None
    steps_to_90: float | None
    concept_f1_without_concept: float | None
    record: dict[str, float]


@dataclass(frozen=True)
class ComparisonSummary:
    """Every arm's row, by arm, on the split named."""

    split: str
    arms: dict[str, RemovalRow]


class Comparison(Analysis):
    """One table of every removal the study ran: how much of the concept it took, at what cost, and how it came back."""

    name = "comparison"
    requires = ("collateral", "probes")
    summary_type = ComparisonSummary

    def summarise(self, study: StudyContext) -> ComparisonSummary:
        return ComparisonSummary("test", {arm: self._row(study, arm) for arm in study.config.arms})

    def _row(self, study: StudyContext, arm: str) -> RemovalRow:
        collateral = study.sections["collateral"]
        probes = study.sections["probes"]
        recovery = study.sections.get("recovery")
        assert isinstance(collateral, CollateralSummary) and isinstance(probes, ProbesSummary)
        removal, data = arm_parts(arm)
        f1, others = collateral.arms[arm].concept_f1, collateral.arms[arm].other_f1
        base_others, removed_others = others["base"], others["pruned"]
        untaught = collateral.arms.get(f"{removal}@without_concept")
        probe = probes.arms[arm]["pruned"]
        steps = recovery.arms[arm] if isinstance(recovery, RecoverySummary) else None
        last = study.stages[-1]
        return RemovalRow(
            removal=removal,
            data=data,
            units=self._units(study, arm),
            concept_f1_base=f1["base"],
            concept_f1_removed=f1["pruned"],
            others_kept=finite(removed_others / base_others) if base_others and removed_others is not None else None,
            selectivity=collateral.arms[arm].selectivity["pruned"],
            probe_accuracy=probe.accuracy[-1],
            probe_majority=probe.majority[-1],
            concept_f1_round1=f1[study.stages[2]] if len(study.stages) > 2 else f1["pruned"],
            concept_f1_last=f1[last],
            steps_to_50=steps.steps_to_50.mean if steps else None,
            steps_to_90=steps.steps_to_90.mean if steps else None,
            concept_f1_without_concept=untaught.concept_f1[last] if untaught else None,
            record=self._record(study, arm),
        )

    def _units(self, study: StudyContext, arm: str) -> int:
        table = study.folder.stage_table(StageKey(study.config.seeds[0], arm, "pruned"))
        return int(table.pruned.sum())

    def _record(self, study: StudyContext, arm: str) -> dict[str, float]:
        records = [
            read_json(path)
            for seed in study.config.seeds
            if (path := study.folder.stage_dir(StageKey(seed, arm, "pruned")) / RECORD_FILE).is_file()
        ]
        numbers = [key for key, value in (records[0] if records else {}).items() if isinstance(value, int | float)]
        return {key: statistics.fmean(record[key] for record in records) for key in numbers}
