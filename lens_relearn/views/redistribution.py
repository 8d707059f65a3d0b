"""Redistribution and similarity, seen: where salient survivors are, and how saliency relates to top-token drift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lens_relearn.stats import spearman
from lens_relearn.study.tables import SALIENT
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html
from lens_relearn.views.sections import ReportSection

CAPTIONS = {
    "similarity": "Top-token similarity to the base model against saliency after the last round, for the neurons "
    "that survived pruning.",
    "redistribution": "Share of each layer's surviving neurons with saliency above 0.5, at the base model and after "
    "the last round.",
}


def plot_redistribution(out_dir: str | Path | FinishedStudy, *, arm: str | None = None) -> Figure:
    """Share of each layer's surviving neurons that are salient, at the base and the last round.

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first).

    Returns:
        Grouped bars, two a layer.
    """
    run = finished(out_dir)
    arm = run.arm(arm)
    layers = run.table("layers")
    shares = layers[layers.arm == arm].groupby(["stage", "layer"]).salient_share.mean()
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    width = 0.4
    for offset, stage, colour in ((-width / 2, "base", "tab:gray"), (width / 2, run.final, "tab:red")):
        values = shares.loc[stage]
        axis.bar(values.index + offset, values.to_numpy(), width=width, color=colour, label=stage)
    axis.set_xticks(sorted(shares.loc["base"].index))
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_xlabel("layer")
    axis.set_ylabel(f"surviving neurons with saliency > {SALIENT}")
    axis.set_title(f"{run.config.model}: where salient {run.concept} neurons are ({arm} arm)")
    axis.legend(title="stage")
    axis.grid(alpha=0.3, axis="y")
    return figure


def plot_similarity(
    out_dir: str | Path | FinishedStudy,
    *,
    stage: str | None = None,
    arm: str | None = None,
    seed: int | None = None,
) -> Figure:
    """Each surviving neuron's top-token similarity to the base model against its saliency.

    Args:
        out_dir: A finished study's folder.
        stage: Which stage (default: the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed (default: the study's first).

    Returns:
        A scatter coloured by layer; primed neurons (``primed.csv``, when the blend analysis ran) ringed in black.
    """
    run = finished(out_dir)
    arm, stage, seed = run.arm(arm), stage or run.final, run.seed(seed)
    rows = run.neurons_at(seed, arm, stage)
    alive = rows[~rows.pruned]
    figure = Figure(figsize=(8, 5), layout="constrained")
    axis = figure.subplots()
    points = axis.scatter(
        alive.saliency,
        alive.similarity_to_base,
        c=alive.layer,
        cmap="viridis",
        s=8,
        alpha=0.5,
        vmin=0,
        vmax=rows.layer.max(),
    )
    primed = run.table("primed") if run.ran("blend") else pd.DataFrame(columns=["seed", "layer", "index"])
    primed = primed[primed.seed == seed][["layer", "index"]].merge(alive, on=["layer", "index"])
    if arm == run.arm(None) and stage == run.final and not primed.empty:
        axis.scatter(
            primed.saliency,
            primed.similarity_to_base,
            facecolors="none",
            edgecolors="black",
            s=40,
            label=f"primed neurons ({len(primed)})",
        )
        axis.legend(loc="lower left")
    rho = spearman(alive.saliency.tolist(), alive.similarity_to_base.tolist())
    figure.colorbar(points, ax=axis, label="layer")
    axis.set_xlabel(f"normalised {run.concept} saliency at {stage}")
    axis.set_ylabel("cosine similarity of top tokens to the base model's")
    axis.set_title(f"{run.config.model}: similarity vs saliency ({arm} arm, {stage}; Spearman ρ = {rho:.2f})")
    axis.grid(alpha=0.3)
    return figure


def _render(run: FinishedStudy, seed: int) -> str:
    return figure_html(plot_redistribution(run), CAPTIONS["redistribution"]) + figure_html(
        plot_similarity(run, seed=seed), CAPTIONS["similarity"]
    )


SECTION = ReportSection("redistribution", "Where the salient neurons are", _render)
