"""Relearning attacks: how little brings the concept back, and whether what comes back generalises (docs/design.md §25).

At every stage after a removal, the concept's F1 on the test split apart for the names whose
surface form occurs in the arm's retraining sentences (``seen``) and the others (``unseen``;
``concept_scores_by_form``): relearning that reaches the unseen names generalises, relearning
limited to the seen ones memorises. On the synthetic corpus the test split's place names are
drawn apart from the training split's, so every test place is unseen by construction; on other
data both parts exist. After every seed, one table: a row a removal, a column a retraining
condition (``few:N`` by N, ``without_concept``, ``full``, ``concept_as_o``), a cell the concept's
F1 after the first round with its interval over seeds, and the steps to half its base F1 where
the recovery curve exists.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from lens_relearn.analyses.recovery import KnownInterval, RecoverySummary
from lens_relearn.data.sentences import few_count
from lens_relearn.stats import interval
from lens_relearn.study.analysis import Analysis, StageOutcome, StudyContext
from lens_relearn.study.config import arm_parts
from lens_relearn.study.folders import StageKey
from lens_relearn.study.summary import Interval
from lens_relearn.tagger.scores import concept_scores_by_form

CONDITION_ORDER = ("without_concept", "full", "concept_as_o")  # after the few:N columns, by N


@dataclass(frozen=True)
class AttackCell:
    """One removal retrained on one condition, after the first round (test split).

    Attributes:
        arm: The arm.
        sentences: The sentences it retrained on.
        concept_f1: The concept's F1, with its interval over seeds.
        steps_to_50: Steps until the concept was back to half its base F1 (None: no recovery curve).
        seen_f1, unseen_f1: The concept's F1 over the names whose form its retraining showed, and the others
            (means over seeds; None where a seed had no such name).
        seen_names, unseen_names: How many of the test split's names of the concept are in each part (mean over seeds).
    """

    arm: str
    sentences: int
    concept_f1: Interval
    steps_to_50: KnownInterval | None
    seen_f1: float | None
    unseen_f1: float | None
    seen_names: float
    unseen_names: float


@dataclass(frozen=True)
class AttacksSummary:
    """The attack table: ``removals[removal][condition]``, conditions in ``conditions`` order, after ``stage``."""

    stage: str
    conditions: list[str]
    removals: dict[str, dict[str, AttackCell]]


class Attacks(Analysis):
    """Seen and unseen names at every stage after a removal (``forms.csv``), and the attack table."""

    name = "attacks"
    summary_type = AttacksSummary

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        if outcome.key.arm is None:
            return {}
        condition = arm_parts(outcome.key.arm)[1]
        known = study.inputs.retraining[condition, outcome.key.seed]
        parts = concept_scores_by_form(
            study.inputs.data.test, outcome.test_pass.predictions, study.inputs.concept.members, known
        )
        row = {f"{part}_{measure}": scores[measure] for part, scores in parts.items() for measure in ("f1", "support")}
        return {"forms": pd.DataFrame([row])}

    def summarise(self, study: StudyContext) -> AttacksSummary:
        stage = study.stages[2]  # the first round
        conditions = sorted({arm_parts(arm)[1] for arm in study.config.arms}, key=_column)
        performance = study.folder.table("performance")
        tested = performance[(performance.split == "test") & (performance.stage == stage)]
        removals: dict[str, dict[str, AttackCell]] = {}
        for arm in study.config.arms:
            removal, condition = arm_parts(arm)
            removals.setdefault(removal, {})[condition] = self._cell(study, arm, stage, tested[tested.arm == arm])
        return AttacksSummary(stage, conditions, removals)

    def _cell(self, study: StudyContext, arm: str, stage: str, rows: pd.DataFrame) -> AttackCell:
        """The arm's cell from its rows of the performance table (the test split, ``stage``, every seed)."""
        condition, seeds = arm_parts(arm)[1], study.config.seeds
        forms = [study.folder.stage_table(StageKey(seed, arm, stage), "forms") for seed in seeds]
        recovery = study.sections.get("recovery")
        return AttackCell(
            arm=arm,
            sentences=len(study.inputs.retraining[condition, seeds[0]]),
            concept_f1=Interval(**interval(rows.concept_f1.tolist())),
            steps_to_50=recovery.arms[arm].steps_to_50 if isinstance(recovery, RecoverySummary) else None,
            seen_f1=_mean_where_named(forms, "seen"),
            unseen_f1=_mean_where_named(forms, "unseen"),
            seen_names=statistics.fmean(float(form.seen_support.iloc[0]) for form in forms),
            unseen_names=statistics.fmean(float(form.unseen_support.iloc[0]) for form in forms),
        )


def _column(condition: str) -> tuple[int, int]:
    """Where a condition's column goes: ``few:N`` by N first, then ``CONDITION_ORDER``."""
    count = few_count(condition)
    return (0, count) if count is not None else (1, CONDITION_ORDER.index(condition))


def _mean_where_named(forms: list[pd.DataFrame], part: str) -> float | None:
    """The mean F1 of a part over the seeds whose test split has names in it."""
    values = [float(form[f"{part}_f1"].iloc[0]) for form in forms if form[f"{part}_support"].iloc[0] > 0]
    return statistics.fmean(values) if values else None
