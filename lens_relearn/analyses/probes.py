"""Layer probes: is the concept still linearly readable from the residual stream at each stage? (docs/design.md §18)

A logistic-regression probe a residual layer (``lens_relearn.neurons.probes``), trained on the
concept corpus's word vectors and scored on the test split's, beside the majority class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from lens_relearn.neurons.probes import probe_layers
from lens_relearn.study.analysis import Analysis, Needs, StageOutcome, StudyContext


@dataclass(frozen=True)
class LayerProbes:
    """A stage's probes, one value a residual layer (means over seeds)."""

    accuracy: list[float]
    f1: list[float]
    majority: list[float]


@dataclass(frozen=True)
class ProbesSummary:
    """Every arm's probes, by arm and stage."""

    arms: dict[str, dict[str, LayerProbes]]


class Probes(Analysis):
    """A probe a residual layer at every stage; ``probes.csv`` has every seed, arm, stage and layer."""

    name = "probes"
    needs = Needs(vectors=True)
    summary_type = ProbesSummary

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        corpus, test, inputs = outcome.corpus_pass, outcome.test_pass, study.inputs
        table = probe_layers(
            corpus.vectors,
            corpus.tags,
            inputs.corpus_concept,
            test.vectors,
            test.tags,
            inputs.concept,
            seed=outcome.key.seed,
            max_train=study.config.probe_words,
        )
        return {"probes": table}

    def summarise(self, study: StudyContext) -> ProbesSummary:
        probes = study.stage_tables("probes")
        study.folder.write_table("probes", probes)

        def stage(arm: str, name: str) -> LayerProbes:
            rows = probes[(probes.arm == arm) & (probes.stage == name)]
            means = rows.groupby("layer")[["accuracy", "f1", "majority"]].mean().round(12)
            return LayerProbes(means.accuracy.tolist(), means.f1.tolist(), means.majority.tolist())

        return ProbesSummary({arm: {name: stage(arm, name) for name in study.stages} for arm in study.config.arms})
