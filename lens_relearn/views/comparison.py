"""The removals side by side, seen: one table row and one group of bars an arm (``analyses/comparison.py``)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lens_relearn.analyses.comparison import ComparisonSummary, RemovalRow
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import arm_style, number_or_nan
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "Each arm's concept F1 on the test split before its removal, right after it, and after the first and the last "
    "round of retraining (bars), and the share of the other entity types' F1 the removal kept (diamonds): a specific "
    "removal takes the concept's bar down and keeps its diamond near 1; relearning raises the later bars again."
)
BARS = (
    ("base", "concept_f1_base"),
    ("removed", "concept_f1_removed"),
    ("round 1", "concept_f1_round1"),
    ("last round", "concept_f1_last"),
)


def plot_comparison(out_dir: str | Path | FinishedStudy) -> Figure:
    """Every arm's concept F1 at base, after its removal and after retraining, with the others' share kept.

    Args:
        out_dir: A finished study's folder (one that ran the ``comparison`` analysis).

    Returns:
        One group of bars an arm (means over seeds).
    """
    run = finished(out_dir)
    rows = run.section(ComparisonSummary).arms
    figure = Figure(figsize=(4 + 1.5 * len(rows), 5.5), layout="constrained")
    axis = figure.subplots()
    positions = np.arange(len(rows))
    width = 0.8 / len(BARS)
    for offset, (label, field) in enumerate(BARS):
        values = [getattr(row, field) for row in rows.values()]
        axis.bar(positions + (offset - (len(BARS) - 1) / 2) * width, values, width, label=f"{run.concept} F1, {label}")
    kept = [number_or_nan(row.others_kept) for row in rows.values()]
    axis.plot(positions, kept, "D", color="black", label="others' F1 kept after the removal")
    axis.set_xticks(positions, [arm_style(arm)[0] for arm in rows], rotation=20, ha="right")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("F1 (test) / share kept")
    axis.grid(axis="y", alpha=0.3)
    axis.set_title(f"{run.config.model}: each removal of {run.concept}, its cost, and what came back")
    figure.legend(loc="outside lower center", ncols=3)
    return figure


def comparison_rows(summary: ComparisonSummary) -> tuple[list[str], list[tuple]]:
    """The table's header and rows (``None`` where not measured)."""
    header = [
        "arm",
        "units removed",
        "concept F1 removed",
        "others kept",
        "selectivity",
        "probe (majority)",
        "concept F1 round 1",
        "concept F1 last",
        "steps to 50% / 90%",
        "last, untaught",
        "removal's own",
    ]
    rows = [(arm, *_cells(row)) for arm, row in summary.arms.items()]
    return header, rows


def _cells(row: RemovalRow) -> tuple:
    probe = "–" if row.probe_accuracy is None else f"{row.probe_accuracy:.3f} ({row.probe_majority:.3f})"
    steps = " / ".join("–" if s is None else f"{s:.0f}" for s in (row.steps_to_50, row.steps_to_90))
    own = ", ".join(f"{key} {value:.3g}" for key, value in row.record.items()) or "–"
    return (
        row.units,
        row.concept_f1_removed,
        row.others_kept,
        row.selectivity,
        probe,
        row.concept_f1_round1,
        row.concept_f1_last,
        steps,
        row.concept_f1_without_concept,
        own,
    )


def _render(run: FinishedStudy, seed: int) -> str:
    header, rows = comparison_rows(run.section(ComparisonSummary))
    intro = (
        f"<p>Every removal the study ran, on the same task, budget and retraining: {html.escape(run.concept)}'s F1 on "
        "the test split right after the removal, the share of the other types' F1 it kept and its selectivity, the "
        "last residual layer's probe accuracy after it (the majority class's in brackets), the concept's F1 after "
        "the first and the last round, the training steps it took to come back to 50% and 90% of base, the F1 after "
        "the last round of the same removal retrained without the concept's sentences, and what the removal "
        "recorded of itself (seconds, steps). Means over seeds.</p>"
    )
    return intro + html_table(header, rows) + figure_html(plot_comparison(run), CAPTION)


SECTION = ReportSection("comparison", "The removals side by side", _render)
