"""Collateral damage, seen: every entity type's F1 per stage and arm, and each removal's selectivity."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from lens_relearn.analyses.collateral import CollateralSummary
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html
from lens_relearn.views.plots import CONCEPT_COLOUR, arm_style, f1_table, type_f1
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "F1 of every entity type on the test split at every stage, one panel an arm: the concept's classes thick and "
    "red, the other types thin. Selectivity is the share of the other types' mean F1 a stage kept minus the share "
    "of the concept's F1 it kept: 1 when only the concept was lost, 0 when both lost the same share."
)


CONCEPT_LINE_STYLES = ("-", "--", ":", "-.")
# tab20 is ten pairs of a dark and a light colour: the dark ones first, without the reds (6, 7), which are the concept's
_TAB20 = [colormaps["tab20"](i) for i in range(20)]
OTHER_TYPE_COLOURS = [c for c in (*_TAB20[0::2], *_TAB20[1::2]) if c not in (_TAB20[6], _TAB20[7])]


def plot_collateral(out_dir: str | Path | FinishedStudy, *, split: str = "test") -> Figure:
    """Every entity type's F1 per stage, one panel an arm: did pruning remove the concept only?

    Args:
        out_dir: A finished study's folder.
        split: Which split's scores.

    Returns:
        One panel an arm run (concept, random, none), one line an entity type the split has
        (mean over seeds): the concept's classes thick and red, the other types thin in their
        own colours. Each panel's title gives the arm's selectivity after pruning (``f1_table``).
    """
    run = finished(out_dir)
    table = f1_table(run, split=split)
    per_type = type_f1(run, split)
    kinds = list(per_type.index.unique("type"))
    styles = _type_styles(kinds, run.summary.concept_classes)
    arms = run.config.arms
    figure = Figure(figsize=(1 + 3.8 * len(arms), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(arms), sharey=True))
    positions = np.arange(len(run.stages))
    for axis, arm in zip(axes, arms, strict=True):
        for kind in kinds:
            axis.plot(positions, per_type.loc[(arm, kind)].to_numpy(), marker="o", **styles[kind])
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


def kept_sentence(summary: CollateralSummary, concept: str) -> str:
    """How much of the concept's F1 and of the other types' mean F1 pruning kept on the test split, per arm run.

    Example:
        >>> from lens_relearn.analyses.collateral import ArmCollateral
        >>> def arm(concept, others, chosen):
        ...     return ArmCollateral({"base": 0.8, "pruned": concept}, {"base": 0.8, "pruned": others}, {},
        ...                          {"pruned": chosen})
        >>> arms = {"concept": arm(0.096, 0.44, 0.43), "none": arm(0.8, 0.8, 0.0)}
        >>> kept_sentence(CollateralSummary("test", arms), "LOC")
        "Pruning kept 12% of LOC's F1 and 55% of the other types' mean F1 (selectivity 0.43 after pruning). "
        >>> kept_sentence(CollateralSummary("test", {"random": arm(0.76, None, None)}), "LOC")[:60]
        "Random pruning kept 95% of LOC's F1 and an unknown share of "
    """
    parts: list[str] = []
    for arm, pruning in (("concept", "pruning"), ("random", "random pruning")):
        if arm not in summary.arms:
            continue
        values = summary.arms[arm]
        kept, others = _kept(values.concept_f1), _kept(values.other_f1)
        chosen = values.selectivity["pruned"]
        shown = "undefined" if chosen is None else f"{chosen:.2f}"
        if parts:
            parts.append(f"{pruning} kept {kept} and {others} (selectivity {shown})")
        else:
            parts.append(
                f"{pruning} kept {kept} of {html.escape(concept)}'s F1 and {others} of the other "
                f"types' mean F1 (selectivity {shown} after pruning)"
            )
    sentence = "; ".join(parts)
    return f"{sentence[:1].upper()}{sentence[1:]}. " if parts else ""


def _kept(f1: dict[str, float] | dict[str, float | None]) -> str:
    """The share of its base F1 an arm kept after pruning, as a percentage.

    Example:
        >>> _kept({"base": 0.8, "pruned": 0.2}), _kept({"base": 0.0, "pruned": 0.0}), _kept({"base": None, "pruned": 1})
        ('25%', 'an unknown share', 'an unknown share')
    """
    base, pruned = f1["base"], f1["pruned"]
    if not base or pruned is None or math.isnan(base) or math.isnan(pruned):
        return "an unknown share"
    return f"{pruned / base:.0%}"


def _render(run: FinishedStudy, seed: int) -> str:
    sentence = kept_sentence(run.section(CollateralSummary), run.concept)
    return f"<p>{sentence}</p>{figure_html(plot_collateral(run), CAPTION)}"


SECTION = ReportSection("collateral", "What else the removal took", _render)
