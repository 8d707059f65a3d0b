"""The core's plots of a finished study (F1, layer saliency, the saliency heatmap), as matplotlib figures.

Plots are ``matplotlib.figure.Figure`` objects made without pyplot, so no GUI backend is
involved; they render with Agg when saved, and inline in Jupyter after ``%matplotlib inline``.
Each analysis's own plots are in its view module (``lens_relearn.views.collateral`` ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from lens_relearn.data.sentences import few_count
from lens_relearn.stats import interval, selectivity
from lens_relearn.study.config import arm_parts
from lens_relearn.study.removal import REMOVALS
from lens_relearn.views.finished import FinishedStudy, finished

ARM_COLOURS = {"concept": "tab:red", "random": "tab:blue", "none": "tab:gray"}  # each built-in removal's colour
OTHER_ARM_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink")
CONCEPT_COLOUR = ARM_COLOURS["concept"]
CONDITION_STYLE = {  # retraining data: what the label adds, the line style
    "full": ("", "-"),
    "without_concept": (", retrained without the concept's sentences", "--"),
    "concept_as_o": (", retrained with the concept tagged O", ":"),
}


def arm_style(arm: str) -> tuple[str, str, str]:
    """An arm's label and colour (its removal's) and line style (its retraining data's).

    Example:
        >>> arm_style("concept@without_concept")
        ("concept pruning, retrained without the concept's sentences", 'tab:red', '--')
        >>> arm_style("random@few:8")
        ("random pruning (baseline), retrained on 8 of the concept's sentences", 'tab:blue', '-.')
    """
    removal, condition = arm_parts(arm)
    others = [name for name in REMOVALS.names() if name not in ARM_COLOURS]
    colour = ARM_COLOURS.get(removal) or OTHER_ARM_COLOURS[others.index(removal) % len(OTHER_ARM_COLOURS)]
    count = few_count(condition)
    few = (f", retrained on {count} of the concept's sentences", "-.")
    suffix, line = CONDITION_STYLE[condition] if count is None else few
    return (REMOVALS.get(removal).description or removal) + suffix, colour, line


def f1_table(out_dir: str | Path | FinishedStudy, *, split: str = "test") -> pd.DataFrame:
    """Overall, concept and every other entity type's F1 at every stage of every arm (mean over seeds).

    Args:
        out_dir: A finished study's folder.
        split: ``validation``, ``test`` or ``novel_test``.

    Returns:
        One row an ``(arm, metric)`` pair, one column a stage. An arm's rows: ``F1``, ``{concept} F1``,
        ``{type} F1`` of each other entity type the split has, ``other types F1`` (their mean) and
        ``selectivity`` (``lens_relearn.stats.selectivity``; NaN at base and where undefined).
    """
    run = finished(out_dir)
    means = run.scores(split).groupby(["arm", "stage"])[["f1", "concept_f1", "other_f1"]].mean()
    per_type = type_f1(run, split)
    concept_classes = run.summary.concept_classes
    records: dict[tuple[str, str], list[float]] = {}
    for arm in run.config.arms:
        at = means.loc[arm].reindex(run.stages)
        records[arm, "F1"] = at.f1.tolist()
        records[arm, f"{run.concept} F1"] = at.concept_f1.tolist()
        for kind, values in per_type.loc[arm].iterrows():
            if kind not in concept_classes:
                records[arm, f"{kind} F1"] = values.tolist()
        records[arm, "other types F1"] = at.other_f1.tolist()
        records[arm, "selectivity"] = _selectivity(at.concept_f1, at.other_f1)
    table = pd.DataFrame.from_dict(records, orient="index", columns=run.stages)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["arm", "metric"])
    return table


def type_f1(run: FinishedStudy, split: str) -> pd.DataFrame:
    """Each entity type's F1 (mean over seeds), one row an ``(arm, type)`` pair in label order, one column a stage.

    Types the split has no entity of are left out.
    """
    types = run.table("types")
    rows = types[(types.split == split) & (types.support > 0)]
    kinds = list(dict.fromkeys(rows.type))
    means = rows.groupby(["arm", "type", "stage"]).f1.mean().unstack("stage")
    index = pd.MultiIndex.from_product([run.config.arms, kinds], names=["arm", "type"])
    return means.reindex(index=index, columns=run.stages)


def _selectivity(concept_f1: pd.Series, other_f1: pd.Series) -> list[float]:
    """Selectivity at each stage of one arm from its F1 per stage (index: stages, base first); NaN where undefined."""
    concept, others = concept_f1.to_dict(), other_f1.to_dict()
    values = [selectivity(concept, others, stage) for stage in concept_f1.index[1:]]
    return [math.nan] + [math.nan if value is None else value for value in values]


def plot_f1(out_dir: str | Path | FinishedStudy, *, split: str = "test") -> Figure:
    """Overall and concept F1 per stage for every arm run (concept, random, none).

    Args:
        out_dir: A finished study's folder.
        split: Which split's scores.

    Returns:
        Two panels, overall F1 and the concept's F1, one line an arm; bars are 95% intervals
        over seeds when there are several.
    """
    run = finished(out_dir)
    rows = run.scores(split)
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(run.stages))
    for axis, (column, label) in zip(
        axes, (("f1", "overall entity F1"), ("concept_f1", f"{run.concept} F1")), strict=True
    ):
        for arm in run.config.arms:
            name, colour, line = arm_style(arm)
            stats = [interval(rows[(rows.arm == arm) & (rows.stage == s)][column].tolist()) for s in run.stages]
            means = np.array([s["mean"] for s in stats])
            errors = np.array([[s["mean"] - s["low"] for s in stats], [s["high"] - s["mean"] for s in stats]])
            errors = errors.clip(min=0)  # the mean is rounded
            axis.errorbar(
                positions, means, yerr=errors, label=name, color=colour, linestyle=line, marker="o", capsize=3
            )
        axis.set_xticks(positions, run.stages)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("stage")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"F1 on the {split} split")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(run.config.arms), 3))
    figure.suptitle(f"{run.config.model}: F1 after pruning and each retraining round")
    return figure


def plot_layer_saliency(out_dir: str | Path | FinishedStudy, *, arm: str | None = None) -> Figure:
    """Mean concept saliency of each layer at each stage, with 95% intervals (Lo et al., figs. 2-5).

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first, usually ``concept``).

    Returns:
        One line a stage over the layers, its interval shaded.
    """
    run = finished(out_dir)
    arm = run.arm(arm)
    layers = run.table("layers")
    layers = layers[layers.arm == arm].groupby(["stage", "layer"])[["mean", "low", "high"]].mean()
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    palette = [f"C{i}" for i in range(len(run.stages))]
    for stage, colour in zip(run.stages, palette, strict=False):
        rows = layers.loc[stage]
        axis.plot(rows.index, rows["mean"], marker="o", color=colour, label=stage)
        axis.fill_between(rows.index, rows["low"], rows["high"], color=colour, alpha=0.15)
    axis.set_xlabel("layer")
    axis.set_ylabel("mean normalised saliency (0 to 1)")
    axis.set_xticks(sorted(layers.index.get_level_values("layer").unique()))
    axis.set_title(f"{run.config.model}: mean {run.concept} saliency per layer ({arm} arm)")
    figure.legend(title="stage", loc="outside right upper")
    axis.grid(alpha=0.3)
    return figure


def plot_saliency_heatmap(
    out_dir: str | Path | FinishedStudy,
    *,
    stages: Sequence[str] | None = None,
    arm: str | None = None,
    seed: int | None = None,
) -> Figure:
    """Saliency of every neuron, layer by neuron, at some stages (pruned neurons grey).

    Within each layer the neurons are ordered by their base saliency, the same order in every
    panel, so the panels show where saliency leaves and where it comes back.

    Args:
        out_dir: A finished study's folder.
        stages: Which stages (default: base and the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed (default: the study's first).

    Returns:
        One panel a stage.
    """
    run = finished(out_dir)
    arm, seed = run.arm(arm), run.seed(seed)
    stages = list(stages or ("base", run.final))
    base = run.neurons_at(seed, arm, "base")
    n_layers, units = base.layer.max() + 1, base["index"].max() + 1
    order = np.argsort(-base.saliency.to_numpy().reshape(n_layers, units), axis=1, kind="stable")
    figure = Figure(figsize=(10, 0.8 + len(stages) * (0.6 + 0.25 * n_layers)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(stages), 1, sharex=True))
    for axis, stage in zip(axes, stages, strict=True):
        rows = run.neurons_at(seed, arm, stage)
        saliency = np.where(rows.pruned, np.nan, rows.saliency).reshape(n_layers, units)
        image = axis.imshow(
            np.take_along_axis(saliency, order, axis=1),
            aspect="auto",
            interpolation="nearest",
            cmap=colormaps["viridis"].with_extremes(bad="lightgrey"),
            vmin=0,
            vmax=1,
        )
        axis.set_ylabel("layer")
        axis.set_yticks(range(n_layers))
        pruned = int(rows.pruned.sum())
        axis.set_title(f"{stage} ({pruned} pruned neurons in grey)" if pruned else stage)
    axes[-1].set_xlabel("neurons of each layer, ordered by base saliency")
    figure.colorbar(image, ax=list(axes), label="normalised saliency")
    figure.suptitle(f"{run.config.model}: {run.concept} saliency per neuron ({arm} arm, seed {seed})")
    return figure


def number_or_nan(value: float | None) -> float:
    """A value from JSON for a plot or table: None (unknown) becomes NaN."""
    return math.nan if value is None else value
