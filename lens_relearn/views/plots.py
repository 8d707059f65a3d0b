"""Plots of a finished study, as matplotlib figures made without pyplot.

Plots are ``matplotlib.figure.Figure`` objects made without pyplot, so no GUI backend is
involved; they render with Agg when saved, and inline in Jupyter after ``%matplotlib inline``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lens_relearn.errors import LensRelearnError
from lens_relearn.stats import interval, selectivity, spearman
from lens_relearn.study.config import arm_parts
from lens_relearn.study.run_folder import RunFolder, finished_run
from lens_relearn.study.tables import RECOVERY_SHARES, SALIENT

ARM_STYLE = {
    "concept": ("concept pruning", "tab:red"),
    "random": ("random pruning (baseline)", "tab:blue"),
    "none": ("no pruning (control)", "tab:gray"),
}
CONCEPT_COLOUR = ARM_STYLE["concept"][1]
CONDITION_STYLE = {  # retraining data: what the label adds, the line style
    "full": ("", "-"),
    "without_concept": (", retrained without the concept's sentences", "--"),
    "concept_as_o": (", retrained with the concept tagged O", ":"),
}


def arm_style(arm: str) -> tuple[str, str, str]:
    """An arm's label, colour (its pruning's) and line style (its retraining data's).

    Example:
        >>> arm_style("concept@without_concept")
        ("concept pruning, retrained without the concept's sentences", 'tab:red', '--')
    """
    pruning, condition = arm_parts(arm)
    label, colour = ARM_STYLE[pruning]
    suffix, line = CONDITION_STYLE[condition]
    return label + suffix, colour, line


CONCEPT_LINE_STYLES = ("-", "--", ":", "-.")
# tab20 is ten pairs of a dark and a light colour: the dark ones first, without the reds (6, 7), which are the concept's
_TAB20 = [colormaps["tab20"](i) for i in range(20)]
OTHER_TYPE_COLOURS = [c for c in (*_TAB20[0::2], *_TAB20[1::2]) if c not in (_TAB20[6], _TAB20[7])]


def f1_table(out_dir: str | Path | RunFolder, *, split: str = "test") -> pd.DataFrame:
    """Overall, concept and every other entity type's F1 at every stage of every arm (mean over seeds).

    Args:
        out_dir: A finished study's folder.
        split: ``validation``, ``test`` or ``novel_test``.

    Returns:
        One row an ``(arm, metric)`` pair, one column a stage. An arm's rows: ``F1``, ``{concept} F1``,
        ``{type} F1`` of each other entity type the split has, ``other types F1`` (their mean) and
        ``selectivity`` (``lens_relearn.stats.selectivity``; NaN at base and where undefined).
    """
    run = finished_run(out_dir)
    means = run.scores(split).groupby(["arm", "stage"])[["f1", "concept_f1", "other_f1"]].mean()
    type_f1 = _type_f1(run, split)
    concept_classes = run.summary["concept_classes"]
    records: dict[tuple[str, str], list[float]] = {}
    for arm in run.config.arms:
        at = means.loc[arm].reindex(run.stages)
        records[arm, "F1"] = at.f1.tolist()
        records[arm, f"{run.concept} F1"] = at.concept_f1.tolist()
        for kind, values in type_f1.loc[arm].iterrows():
            if kind not in concept_classes:
                records[arm, f"{kind} F1"] = values.tolist()
        records[arm, "other types F1"] = at.other_f1.tolist()
        records[arm, "selectivity"] = _selectivity(at.concept_f1, at.other_f1)
    table = pd.DataFrame.from_dict(records, orient="index", columns=run.stages)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["arm", "metric"])
    return table


def _type_f1(run: RunFolder, split: str) -> pd.DataFrame:
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


def plot_f1(out_dir: str | Path | RunFolder, *, split: str = "test") -> Figure:
    """Overall and concept F1 per stage for every arm run (concept, random, none).

    Args:
        out_dir: A finished study's folder.
        split: Which split's scores.

    Returns:
        Two panels, overall F1 and the concept's F1, one line an arm; bars are 95% intervals
        over seeds when there are several.
    """
    run = finished_run(out_dir)
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


def plot_collateral(out_dir: str | Path | RunFolder, *, split: str = "test") -> Figure:
    """Every entity type's F1 per stage, one panel an arm: did pruning remove the concept only?

    Args:
        out_dir: A finished study's folder.
        split: Which split's scores.

    Returns:
        One panel an arm run (concept, random, none), one line an entity type the split has
        (mean over seeds): the concept's classes thick and red, the other types thin in their
        own colours. Each panel's title gives the arm's selectivity after pruning (``f1_table``).
    """
    run = finished_run(out_dir)
    table = f1_table(run, split=split)
    type_f1 = _type_f1(run, split)
    kinds = list(type_f1.index.unique("type"))
    styles = _type_styles(kinds, run.summary["concept_classes"])
    arms = run.config.arms
    figure = Figure(figsize=(1 + 3.8 * len(arms), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(arms), sharey=True))
    positions = np.arange(len(run.stages))
    for axis, arm in zip(axes, arms, strict=True):
        for kind in kinds:
            axis.plot(positions, type_f1.loc[(arm, kind)].to_numpy(), marker="o", **styles[kind])
        after_pruning = table.loc[(arm, "selectivity"), "pruned"]
        shown = "undefined" if math.isnan(after_pruning) else f"{after_pruning:.2f}"
        axis.set_title(f"{arm_style(arm)[0]}\nselectivity after pruning: {shown}")
        axis.set_xticks(positions, run.stages)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("stage")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"entity F1 on the {split} split")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(kinds), 6))
    figure.suptitle(f"{run.config.model}: did pruning remove {run.concept} only? F1 of every entity type per stage")
    return figure


def _type_styles(kinds: Sequence[str], concept_classes: Sequence[str]) -> dict[str, dict]:
    """Line style of each entity type: the concept's classes thick and red, the other types thin in their own colours.

    Example:
        >>> styles = _type_styles(["PER", "LOC", "ORG"], ["LOC"])
        >>> styles["LOC"]["label"], styles["LOC"]["color"], styles["PER"]["color"] == styles["ORG"]["color"]
        ('LOC (concept)', 'tab:red', False)
    """
    colours, line_styles = cycle(OTHER_TYPE_COLOURS), cycle(CONCEPT_LINE_STYLES)
    return {
        kind: {"color": CONCEPT_COLOUR, "linewidth": 3, "linestyle": next(line_styles), "label": f"{kind} (concept)"}
        if kind in concept_classes
        else {"color": next(colours), "linewidth": 1.2, "markersize": 4, "label": kind}
        for kind in kinds
    }


def plot_layer_saliency(out_dir: str | Path | RunFolder, *, arm: str | None = None) -> Figure:
    """Mean concept saliency of each layer at each stage, with 95% intervals (Lo et al., figs. 2-5).

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first, usually ``concept``).

    Returns:
        One line a stage over the layers, its interval shaded.
    """
    run = finished_run(out_dir)
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


def plot_probes(out_dir: str | Path | RunFolder, *, arm: str | None = None) -> Figure:
    """Accuracy of a linear probe for the concept on each residual layer, at each stage.

    The probes are trained on the concept corpus and scored on the test split
    (``lens_relearn.neurons.probes``); the dashed line is the majority class's accuracy, the floor.
    A probe that still reads the concept after pruning says the information survived and only
    its use broke.

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first, usually ``concept``).

    Returns:
        One line a stage over the residual layers (mean over seeds).
    """
    run = finished_run(out_dir)
    arm = run.arm(arm)
    probes = run.table("probes")
    probes = probes[probes.arm == arm].groupby(["stage", "layer"])[["accuracy", "majority"]].mean()
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    for stage, colour in zip(run.stages, (f"C{i}" for i in range(len(run.stages))), strict=False):
        rows = probes.loc[stage]
        axis.plot(rows.index, rows["accuracy"], marker="o", color=colour, label=stage)
    floor = probes.loc[run.stages[0]]["majority"]
    axis.plot(floor.index, floor, linestyle="--", color="gray", label="majority class")
    axis.set_xlabel("residual layer (0: embeddings)")
    axis.set_ylabel(f"probe accuracy, {run.concept} vs the rest (test)")
    axis.set_xticks(sorted(probes.index.get_level_values("layer").unique()))
    axis.set_title(f"{run.config.model}: is {run.concept} still linearly readable? ({arm} arm)")
    figure.legend(title="stage", loc="outside right upper")
    axis.grid(alpha=0.3)
    return figure


def plot_saliency_heatmap(
    out_dir: str | Path | RunFolder, *, stages: Sequence[str] | None = None, arm: str | None = None, seed: int = 0
) -> Figure:
    """Saliency of every neuron, layer by neuron, at some stages (pruned neurons grey).

    Within each layer the neurons are ordered by their base saliency, the same order in every
    panel, so the panels show where saliency leaves and where it comes back.

    Args:
        out_dir: A finished study's folder.
        stages: Which stages (default: base and the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed.

    Returns:
        One panel a stage.
    """
    run = finished_run(out_dir)
    arm = run.arm(arm)
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


def plot_similarity(
    out_dir: str | Path | RunFolder, *, stage: str | None = None, arm: str | None = None, seed: int = 0
) -> Figure:
    """Each surviving neuron's top-token similarity to the base model against its saliency.

    Args:
        out_dir: A finished study's folder.
        stage: Which stage (default: the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed.

    Returns:
        A scatter coloured by layer; primed neurons (``primed.csv``) ringed in black.
    """
    run = finished_run(out_dir)
    arm, stage = run.arm(arm), stage or run.final
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
    primed = run.table("primed")
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


RELOCATION_ROWS = {
    "base": "base model",
    "base_without_carriers": "base model, carriers ablated",
    "final": "last round (pruned, retrained)",
    "final_without_carriers": "last round, carriers ablated too",
    "final_without_random": "last round, as many random survivors ablated too",
}


def plot_relocation(out_dir: str | Path | RunFolder) -> Figure:
    """The causal test of relocation: concept F1 and the other types' F1 under each ablation.

    Args:
        out_dir: A finished study's folder (with a concept arm).

    Returns:
        Two bars a condition (``RELOCATION_ROWS``): the concept's F1 and the other types' mean
        F1 on the test split, means over seeds.
    """
    run = finished_run(out_dir)
    if "relocation" not in run.summary:
        raise LensRelearnError(f"{run.path} has no relocation test: it runs with the concept arm.")
    relocation = run.summary["relocation"]
    conditions = relocation["conditions"]
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    positions = np.arange(len(RELOCATION_ROWS))
    for offset, (metric, label, colour) in zip(
        (-0.2, 0.2),
        (("concept_f1", f"{run.concept} F1", CONCEPT_COLOUR), ("other_f1", "other types' mean F1", "tab:gray")),
        strict=True,
    ):
        values = [number_or_nan(conditions[key][metric]) for key in RELOCATION_ROWS]
        axis.bar(positions + offset, values, width=0.4, color=colour, label=label)
    ticks = [
        "base",
        "base,\ncarriers ablated",
        "last round",
        "last round,\ncarriers ablated",
        "last round,\nrandom ablated",
    ]
    axis.set_xticks(positions, ticks, fontsize=8)
    axis.set_ylim(0, 1)
    axis.set_xlabel("what is ablated")
    axis.set_ylabel("F1 (test)")
    axis.set_title(f"{run.config.model}: ablating the {relocation['count']} neurons that carry {run.concept} now")
    figure.legend(loc="outside lower center", ncols=2, fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    return figure


def plot_redistribution(out_dir: str | Path | RunFolder, *, arm: str | None = None) -> Figure:
    """Share of each layer's surviving neurons that are salient, at the base and the last round.

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first).

    Returns:
        Grouped bars, two a layer.
    """
    run = finished_run(out_dir)
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


def plot_blend(out_dir: str | Path | RunFolder, *, seed: int = 0) -> Figure:
    """Entropy of each neuron's class composition at the base model against after the last round.

    The composition is the share of each class among a neuron's top-activating words
    (docs/design.md §19): entropy 0 when one class holds them all. Surviving neurons of the
    study's first arm are grey; primed neurons (``primed.csv``) red. A neuron above the diagonal
    mixes more classes after retraining than before.

    Args:
        out_dir: A finished study's folder (with class compositions).
        seed: Which seed.

    Returns:
        A scatter with the diagonal.
    """
    run = finished_run(out_dir)
    arm = run.arm(None)
    base, final = run.neurons_at(seed, arm, "base"), run.neurons_at(seed, arm, run.final)
    if "entropy" not in final:
        raise LensRelearnError(f"{run.path} has no class compositions (a study before they were recorded).")
    both = final.merge(base, on=["layer", "index"], suffixes=("", "_base"))
    alive = both[~both.pruned]
    primed = run.table("primed")
    primed = primed[primed.seed == seed][["layer", "index"]].merge(alive, on=["layer", "index"])
    figure = Figure(figsize=(6.5, 6), layout="constrained")
    axis = figure.subplots()
    for rows, name, size, colour, alpha in (
        (alive, "surviving", 6, "tab:gray", 0.35),
        (primed, "primed", 18, CONCEPT_COLOUR, 1.0),
    ):
        if rows.empty:
            continue
        means = f"mean {rows.entropy_base.mean():.2f} → {rows.entropy.mean():.2f}"
        axis.scatter(
            rows.entropy_base,
            rows.entropy,
            s=size,
            color=colour,
            alpha=alpha,
            label=f"{name} neurons ({len(rows)}; {means})",
        )
    top = max(float(both[["entropy", "entropy_base"]].max().max()), 1e-3) * 1.05
    axis.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--")
    axis.set_xlim(0, top)
    axis.set_ylim(0, top)
    axis.set_aspect("equal")
    axis.set_xlabel("entropy of the class composition at base (bits)")
    axis.set_ylabel(f"entropy at {run.final} (bits)")
    axis.set_title(f"{run.config.model}: do neurons blend classes after relearning? ({arm} arm, seed {seed})")
    axis.legend(loc="upper left", fontsize=8)
    axis.grid(alpha=0.3)
    return figure


def plot_regrowth(out_dir: str | Path | RunFolder) -> Figure:
    """Regrowth or relocation (weights mode, unfrozen): what the regrown pruned units carry, per round.

    Args:
        out_dir: A finished study's folder run with ``prune_mode="weights"`` and ``freeze=False``.

    Returns:
        Two panels over the rounds: the share of the concept's saliency on regrown pruned units;
        the concept's F1 as retrained and with the pruned units masked again (means over seeds).
    """
    run = finished_run(out_dir)
    summary = run.summary
    if "regrowth" not in summary:
        raise LensRelearnError(
            f"{run.path} has no regrowth split: it is measured with prune_mode='weights' and freeze=False."
        )
    rounds = list(summary["regrowth"])
    regrowth = [summary["regrowth"][r] for r in rounds]
    positions = np.arange(1, len(rounds) + 1)
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    share_axis, f1_axis = figure.subplots(1, 2)
    share_axis.bar(positions, [number_or_nan(r["pruned_saliency_share"]) for r in regrowth], color=CONCEPT_COLOUR)
    share_axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    share_axis.set_ylim(0, 1)
    share_axis.set_xlabel("retraining round")
    share_axis.set_ylabel(f"share of {run.concept} saliency on regrown units")
    share_axis.set_title("saliency carried by the regrown pruned units")
    f1_axis.plot(positions, summary["concept_f1"]["rounds"], marker="o", color=CONCEPT_COLOUR, label="as retrained")
    f1_axis.plot(
        positions,
        [number_or_nan(r["concept_f1_remasked"]) for r in regrowth],
        marker="s",
        linestyle="--",
        color="black",
        label="pruned units masked again",
    )
    f1_axis.axhline(summary["concept_f1"]["base"], color="tab:gray", linestyle=":", label="base")
    f1_axis.set_ylim(0, 1)
    f1_axis.set_xlabel("retraining round")
    f1_axis.set_ylabel(f"{run.concept} F1 (test)")
    f1_axis.set_title("without the regrown units")
    f1_axis.legend(fontsize=8)
    for axis in (share_axis, f1_axis):
        axis.set_xticks(positions, rounds)
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(f"{run.config.model}: regrowth or relocation? ({summary['pruned']['count']} units, weights mode)")
    return figure


def number_or_nan(value: float | None) -> float:
    """A value from JSON for a plot or table: None (unknown) becomes NaN."""
    return math.nan if value is None else value


def plot_recovery(out_dir: str | Path | RunFolder) -> Figure:
    """Recovery curves: the concept's F1 and the other types' F1 on the monitor sentences, step by step since pruning.

    Args:
        out_dir: A finished study's folder (recorded with ``monitor_sentences`` > 0).

    Returns:
        Two panels over the steps since pruning (step 0: the pruned model), one line an arm
        (mean over seeds, shaded 95% interval when there are several); each round's last point
        is a larger marker; the base model's F1 is the dashed line, 50% and 90% of it dotted.
    """
    run = finished_run(out_dir)
    if "recovery" not in run.summary:
        raise LensRelearnError(f"{run.path} has no recovery curves: it ran with monitor_sentences=0.")
    dynamics = run.table("dynamics")
    base = dynamics[dynamics.stage == "base"].sort_values("step").groupby("seed").last()
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for axis, (column, label) in zip(
        axes, (("concept_f1", f"{run.concept} F1"), ("other_f1", "other types' mean F1")), strict=True
    ):
        for arm in run.config.arms:
            name, colour, line = arm_style(arm)
            curve = dynamics[dynamics.arm == arm]
            stats = [(step, interval(rows[column].dropna().tolist())) for step, rows in curve.groupby("step")]
            steps = np.array([step for step, _ in stats])
            means = np.array([stat["mean"] for _, stat in stats])
            axis.plot(steps, means, color=colour, linestyle=line, label=name)
            if len(run.config.seeds) > 1:
                axis.fill_between(
                    steps,
                    [stat["low"] for _, stat in stats],
                    [stat["high"] for _, stat in stats],
                    color=colour,
                    alpha=0.15,
                )
            ends = curve.groupby("stage").step.max()
            ends = ends[ends.index != "pruned"].sort_values()
            axis.plot(ends, np.interp(ends, steps, means), linestyle="none", marker="o", color=colour)
        reference = float(base[column].mean())
        axis.axhline(reference, color="black", linestyle="--", linewidth=0.8, label="base model")
        if column == "concept_f1":
            for share in RECOVERY_SHARES:
                axis.axhline(share * reference, color="gray", linestyle=":", linewidth=0.8)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("training steps since pruning (dots: end of a round)")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"F1 on {run.summary['recovery']['sentences']} validation sentences")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    figure.suptitle(f"{run.config.model}: how fast {run.concept} comes back")
    return figure
