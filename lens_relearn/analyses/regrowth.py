"""Regrowth or relocation: with pruned weights free to regrow, do the regrown units carry the concept? (§18)

Measured after every round of an arm that pruned neurons, in weights mode without freezing: the
share of the concept's saliency on the pruned units, how many of them are among the best
``primed_top``, and the concept's F1 with them masked again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from lens_relearn.study.analysis import Analysis, StageOutcome, StudyContext
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.folders import StageKey

MEASURES = ("pruned_saliency_share", "pruned_in_top", "concept_f1_remasked", "f1_remasked")


@dataclass(frozen=True)
class RegrowthRound:
    """One round of the first arm (means over seeds; None where unknown)."""

    pruned_saliency_share: float | None
    pruned_in_top: float | None
    concept_f1_remasked: float | None
    f1_remasked: float | None


@dataclass(frozen=True)
class RegrowthSummary:
    """Every round's regrowth measures, by round (``round1`` ...)."""

    rounds: dict[str, RegrowthRound]


class Regrowth(Analysis):
    """What the regrown pruned units carry after each round (``regrowth.csv`` in each round's folder)."""

    name = "regrowth"
    summary_type = RegrowthSummary

    def applies(self, config: ExperimentConfig) -> str | None:
        if config.prune_mode != "weights" or config.freeze:
            return "pruned units regrow only with prune_mode='weights' and freeze=False"
        return None

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        removed, table = outcome.removed_neurons, outcome.neurons
        if not removed or not outcome.trained:
            return {}
        remasked = study.ablated_f1(outcome.tagger, outcome.key.seed, removed)
        top = table.position < study.config.primed_top
        row = {
            "pruned_saliency_share": float(table.saliency[table.pruned].sum() / table.saliency.sum()),
            "pruned_in_top": int((table.pruned & top).sum()),
            "concept_f1_remasked": remasked["concept_f1"],
            "f1_remasked": remasked["f1"],
        }
        return {"regrowth": pd.DataFrame([row])}

    def summarise(self, study: StudyContext) -> RegrowthSummary:
        def mean(stage: str, measure: str) -> float | None:
            known = []
            for seed in study.config.seeds:
                key = StageKey(seed, study.main_arm, stage)
                if (study.folder.stage_dir(key) / "regrowth.csv").is_file():
                    value = study.folder.stage_table(key, "regrowth")[measure].iloc[0]
                    known += [] if pd.isna(value) else [float(value)]
            return sum(known) / len(known) if known else None

        return RegrowthSummary(
            {stage: RegrowthRound(*(mean(stage, measure) for measure in MEASURES)) for stage in study.stages[2:]}
        )
