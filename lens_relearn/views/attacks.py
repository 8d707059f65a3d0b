"""Relearning attacks, seen: the concept's F1 after one round against how much of it retraining showed."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lens_relearn.analyses.attacks import AttackCell, AttacksSummary
from lens_relearn.data.sentences import few_count
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import arm_style
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "The concept's F1 on the test split after the first round of retraining against N, the number of the concept's "
    "training sentences the retraining showed beside every sentence without it (few:N; 0 is without_concept), one "
    "line a removal, with 95% Student-t intervals over seeds."
)


def plot_attacks(out_dir: str | Path | FinishedStudy) -> Figure:
    """The concept's F1 after one round against N for every removal's ``few:N`` arms (needs two or more N, or one).

    Args:
        out_dir: A finished study's folder with ``few:N`` arms.

    Returns:
        One line a removal over N (a symmetric-log axis: N = 0 stays on it), means over seeds with intervals.
    """
    run = finished(out_dir)
    section = run.section(AttacksSummary)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    for removal, cells in section.removals.items():
        few = sorted((count, cell) for condition, cell in cells.items() if (count := few_count(condition)) is not None)
        if not few:
            continue
        label, colour, _ = arm_style(removal)
        means = [cell.concept_f1.mean for _, cell in few]
        errors = [  # the mean is rounded to 12 digits, the ends are not
            [max(0.0, cell.concept_f1.mean - cell.concept_f1.low) for _, cell in few],
            [max(0.0, cell.concept_f1.high - cell.concept_f1.mean) for _, cell in few],
        ]
        axis.errorbar([n for n, _ in few], means, yerr=errors, marker="o", capsize=3, color=colour, label=label)
    axis.set_xscale("symlog", linthresh=1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel(f"N: {run.concept} training sentences retrained on")
    axis.set_ylabel(f"{run.concept} F1 after {section.stage} (test)")
    axis.grid(alpha=0.3)
    axis.set_title(f"{run.config.model}: how little brings {run.concept} back?")
    axis.legend(fontsize=8)
    return figure


def attack_rows(section: AttacksSummary) -> tuple[list[str], list[tuple]]:
    """The attack table: a row a removal, a column a condition; a cell the F1 after one round [interval] and the
    steps to half of base (a dash where not run or not measured)."""
    header = ["removal", *section.conditions]
    rows = [
        (removal, *(_cell(cells[c]) if c in cells else "–" for c in section.conditions))
        for removal, cells in section.removals.items()
    ]
    return header, rows


def forms_rows(section: AttacksSummary) -> tuple[list[str], list[tuple]]:
    """Seen and unseen names after one round: a row an arm."""
    header = ["arm", "sentences", "names seen", "F1, seen", "names unseen", "F1, unseen"]
    rows = [
        (c.arm, c.sentences, round(c.seen_names, 1), c.seen_f1, round(c.unseen_names, 1), c.unseen_f1)
        for cells in section.removals.values()
        for c in cells.values()
    ]
    return header, rows


def _cell(cell: AttackCell) -> str:
    f1 = cell.concept_f1
    text = f"{f1.mean:.3f} [{f1.low:.3f}, {f1.high:.3f}]"
    steps = cell.steps_to_50
    return text if steps is None or steps.mean is None else f"{text}; {steps.mean:.0f} steps to 50%"


def _section(run: FinishedStudy, seed: int) -> str:
    section = run.section(AttacksSummary)
    figure = (
        figure_html(plot_attacks(run), CAPTION)
        if any(few_count(c) is not None for c in section.conditions)
        else "<p>No few:N arm ran: the picture of F1 against N needs them.</p>"
    )
    return (
        f"<p>The concept's F1 on the test split after {section.stage}, a row a removal, a column the data it "
        "retrained on; the interval is over seeds.</p>"
        + html_table(*attack_rows(section))
        + figure
        + "<p>The same after one round, apart for the test split's names whose form the retraining sentences hold "
        "(seen) and the others (unseen): relearning that reaches the unseen names generalises.</p>"
        + html_table(*forms_rows(section))
    )


SECTION = ReportSection("attacks", "How little brings it back", _section)
