"""Redistribution and similarity: where salient neurons are after relearning, and whether the neurons that carry
the concept now prefer other tokens than before (the paper's redistribution table and similarity plot)."""

from __future__ import annotations

from dataclasses import dataclass

from lens_relearn.stats import interval, spearman
from lens_relearn.study.analysis import Analysis, StudyContext
from lens_relearn.study.summary import Interval


@dataclass(frozen=True)
class RedistributionSummary:
    """The first arm's share of each layer's surviving neurons that are salient (saliency above 0.5), at the
    base model and after the last round (means over seeds), and the Spearman correlation over the last round's
    survivors of saliency and top-token similarity to the base model (its interval over seeds)."""

    base: list[float]
    final: list[float]
    saliency_similarity_spearman: Interval


class Redistribution(Analysis):
    """Salient survivors per layer, and saliency against top-token similarity to the base model."""

    name = "redistribution"
    summary_type = RedistributionSummary

    def summarise(self, study: StudyContext) -> RedistributionSummary:
        main, final = study.main_arm, study.stages[-1]
        layers = study.folder.table("layers")
        layers = layers[layers.arm == main]

        def shares(stage: str) -> list[float]:
            return layers[layers.stage == stage].groupby("layer").salient_share.mean().round(12).tolist()

        neurons = study.folder.table("neurons")
        correlations = []
        for seed in study.config.seeds:
            alive = neurons[(neurons.seed == seed) & (neurons.arm == main) & (neurons.stage == final) & ~neurons.pruned]
            correlations.append(spearman(alive.saliency.tolist(), alive.similarity_to_base.tolist()))
        return RedistributionSummary(shares("base"), shares(final), Interval(**interval(correlations)))
