"""The causal test of relocation, seen: the concept's F1 with the neurons that carry it now ablated, beside controls."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lens_relearn.analyses.relocation import CONDITIONS, RelocationSummary
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import CONCEPT_COLOUR, number_or_nan
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "The causal test of relocation: concept F1 and the other types' mean F1 on the test split with the last round's "
    "carriers ablated, as many random survivors ablated, and the carriers ablated in the base model (means over seeds)."
)


def plot_relocation(out_dir: str | Path | FinishedStudy) -> Figure:
    """The causal test of relocation: concept F1 and the other types' F1 under each ablation.

    Args:
        out_dir: A finished study's folder (with a concept arm).

    Returns:
        Two bars a condition (``CONDITIONS``): the concept's F1 and the other types' mean
        F1 on the test split, means over seeds.
    """
    run = finished(out_dir)
    relocation = run.section(RelocationSummary)
    conditions = relocation.conditions
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    positions = np.arange(len(CONDITIONS))
    for offset, (metric, label, colour) in zip(
        (-0.2, 0.2),
        (("concept_f1", f"{run.concept} F1", CONCEPT_COLOUR), ("other_f1", "other types' mean F1", "tab:gray")),
        strict=True,
    ):
        values = [number_or_nan(getattr(conditions[key], metric)) for key in CONDITIONS]
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
    axis.set_title(f"{run.config.model}: ablating the {relocation.count} neurons that carry {run.concept} now")
    figure.legend(loc="outside lower center", ncols=2, fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    return figure


def _render(run: FinishedStudy, seed: int) -> str:
    relocation, concept = run.section(RelocationSummary), run.concept
    rows = [
        (label, *(number_or_nan(getattr(relocation.conditions[key], m)) for m in ("concept_f1", "other_f1", "f1")))
        for key, label in CONDITIONS.items()
    ]
    intro = (
        f"<p>The carriers are the {relocation.count} best-ranked unpruned neurons for {html.escape(concept)} "
        "after the last round. Ablating them on top of the pruning tests whether the concept moved into them; "
        "as many random survivors, and the carriers in the base model, are the controls (test split).</p>"
    )
    table = html_table(["condition", f"{concept} F1", "other types F1", "F1"], rows)
    return intro + table + figure_html(plot_relocation(run), CAPTION)


SECTION = ReportSection("relocation", "Where the concept went", _render)
