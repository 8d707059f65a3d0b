"""The selectivity frontier of a sweep (``lens_relearn.study.sweep``) as a matplotlib figure."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lens_relearn.study.sweep import CONCEPT_GOAL, OTHERS_GOAL


def plot_sweep(table: pd.DataFrame, *, concept: str = "LOC", model: str = "") -> Figure:
    """Concept F1 against the other types' mean F1, one line a ranking method, random as reference.

    Each point is one fraction of neurons pruned (labelled in %), from the unpruned tagger (the
    star) outwards; the shaded corner is the goal: the concept at most half its base F1, the
    other types at least 90% of theirs.

    Args:
        table: ``selectivity_sweep`` output (``sweep.csv``).
        concept: The concept's name, for the axis.
        model: The model's name, for the title.

    Example:
        >>> table = pd.DataFrame({"method": ["base", "probeless", "random"], "fraction": [0, 0.1, 0.1],
        ...                       "concept_f1": [0.9, 0.1, 0.85], "other_f1": [0.8, 0.5, 0.78]})
        >>> len(plot_sweep(table).axes[0].lines)
        3
    """
    base = table[table.method == "base"].iloc[0]
    figure = Figure(figsize=(7, 5.5), layout="constrained")
    axis = figure.subplots()
    axis.axvspan(OTHERS_GOAL * base.other_f1, 1.0, ymax=CONCEPT_GOAL * base.concept_f1, color="tab:green", alpha=0.1)
    methods = [m for m in dict.fromkeys(table.method) if m != "base"]
    for method in methods:
        points = table[table.method == method].groupby("fraction").mean(numeric_only=True).sort_index()
        style: dict[str, Any] = {"color": "gray", "linestyle": "--"} if method == "random" else {}
        label = "random (mean of seeds)" if method == "random" else method
        x = [base.other_f1, *points.other_f1]
        y = [base.concept_f1, *points.concept_f1]
        (line,) = axis.plot(x, y, marker="o", markersize=4, label=label, **style)
        for fraction, other, own in zip(points.index, points.other_f1, points.concept_f1, strict=True):
            axis.annotate(
                f"{fraction:.0%}",
                (other, own),
                fontsize=7,
                color=line.get_color(),
                xytext=(3, 3),
                textcoords="offset points",
            )
    axis.plot(
        [base.other_f1], [base.concept_f1], marker="*", markersize=14, color="black", linestyle="", label="unpruned"
    )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("mean F1 of the other entity types (test)")
    axis.set_ylabel(f"{concept} F1 (test)")
    axis.set_title(f"{model}: selectivity of pruning, no retraining".strip(": "))
    axis.legend(loc="upper left", fontsize=8)
    return figure
