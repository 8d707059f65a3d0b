"""The causal test of relocation: after the last round, ablate the neurons that now carry the concept (§18).

The carriers are the best-ranked unpruned neurons of the concept arm's last round. They are
ablated on top of its pruning; as controls, as many random unpruned neurons are, and the
carriers are ablated in the base model too. Each seed's record is ``seed{s}/relocation.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.pruning import random_neurons
from lens_relearn.study.analysis import Analysis, StudyContext, headline_f1
from lens_relearn.study.config import ExperimentConfig, arm_parts
from lens_relearn.study.folders import StageKey
from lens_relearn.study.runner import load_stage
from lens_relearn.tagger.model import Tagger

CONDITIONS = {  # what is ablated, and how the views name it
    "base": "base model",
    "base_without_carriers": "base model, carriers ablated",
    "final": "last round (pruned, retrained)",
    "final_without_carriers": "last round, carriers ablated too",
    "final_without_random": "last round, as many random survivors ablated too",
}


@dataclass(frozen=True)
class HeadlineF1:
    """Overall F1, the concept's F1 and the other types' mean F1 on the test split (None where unknown)."""

    f1: float | None
    concept_f1: float | None
    other_f1: float | None


@dataclass(frozen=True)
class RelocationSummary:
    """How many carriers were ablated, each condition's F1 (means over seeds) and every seed's record."""

    count: int
    conditions: dict[str, HeadlineF1]
    per_seed: dict[str, dict[str, Any]]


class Relocation(Analysis):
    """Ablate the last round's carriers, as many random survivors, and the carriers in the base model."""

    name = "relocation"
    summary_type = RelocationSummary

    def applies(self, config: ExperimentConfig) -> str | None:
        if not any(arm_parts(arm)[0] == "concept" for arm in config.arms):
            return "it ablates what the concept arm relearned, and no arm is one"
        return None

    def after_seed(self, study: StudyContext, seed: int) -> dict:
        arm = study.concept_arm
        assert arm is not None  # applies() says so
        final = StageKey(seed, arm, study.stages[-1])
        inputs, folder = study.inputs, study.folder
        table = folder.stage_table(final)
        pruned = [
            Neuron(int(layer), int(index))
            for layer, index in zip(table.layer[table.pruned], table["index"][table.pruned], strict=True)
        ]
        carriers = concept_carriers(table, study.config.relocation_count or inputs.count)
        base = Tagger.load(folder.tagger_dir(StageKey(seed, None, "base")), device=study.device)
        retrained = load_stage(folder.path, final.stage, seed=seed, arm=arm, device=study.device)
        others = random_neurons(retrained.model, len(carriers), site=study.config.site, seed=seed, exclude=pruned)
        return {
            "count": len(carriers),
            "carriers": [list(n) for n in carriers],
            "base": headline_f1(folder.stage_record(StageKey(seed, None, "base"))["scores"]["test"], inputs.concept),
            "base_without_carriers": study.ablated_f1(base, seed, carriers),
            "final": headline_f1(folder.stage_record(final)["scores"]["test"], inputs.concept),
            "final_without_carriers": study.ablated_f1(retrained, seed, carriers),
            "final_without_random": study.ablated_f1(retrained, seed, others),
        }

    def summarise(self, study: StudyContext) -> RelocationSummary:
        per_seed = {str(seed): study.folder.seed_record(seed, self.name) for seed in study.config.seeds}
        first = per_seed[str(study.config.seeds[0])]
        conditions = {
            condition: HeadlineF1(
                **{metric: _mean_known([r[condition][metric] for r in per_seed.values()]) for metric in HEADLINE}
            )
            for condition in CONDITIONS
        }
        return RelocationSummary(first["count"], conditions, per_seed)


HEADLINE = ("f1", "concept_f1", "other_f1")


def concept_carriers(table: pd.DataFrame, count: int) -> list[Neuron]:
    """The ``count`` best-ranked neurons of a stage's neuron table that are not pruned (fewer if fewer are left).

    Example:
        >>> table = pd.DataFrame({"layer": [0, 0, 1], "index": [0, 1, 0], "position": [1, 0, 2],
        ...                       "pruned": [False, True, False]})
        >>> concept_carriers(table, 2)
        [Neuron(layer=0, index=0), Neuron(layer=1, index=0)]
    """
    alive = table[~table.pruned].sort_values("position").head(count)
    return [Neuron(int(layer), int(index)) for layer, index in zip(alive.layer, alive["index"], strict=True)]


def _mean_known(values: list[float | int | None]) -> float | None:
    """The mean of the values that are known (None if none is)."""
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None
