"""Recovery curves, seen: the concept's F1 step by step after its removal, and how fast each arm got it back."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lens_relearn.analyses.recovery import KnownInterval, RecoverySummary
from lens_relearn.stats import interval
from lens_relearn.study.tables import RECOVERY_SHARES
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import arm_style, number_or_nan
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "Recovery curves: the concept's F1 and the other types' mean F1 on the monitor sentences (a fixed subset of the "
    "validation split) every few training steps after pruning, one line an arm; dots end a round, the dashed line is "
    "the base model, the dotted ones 50% and 90% of it."
)


def plot_recovery(out_dir: str | Path | FinishedStudy) -> Figure:
    """Recovery curves: the concept's F1 and the other types' F1 on the monitor sentences, step by step since pruning.

    Args:
        out_dir: A finished study's folder (recorded with ``monitor_sentences`` > 0).

    Returns:
        Two panels over the steps since pruning (step 0: the pruned model), one line an arm
        (mean over seeds, shaded 95% interval when there are several); each round's last point
        is a larger marker; the base model's F1 is the dashed line, 50% and 90% of it dotted.
    """
    run = finished(out_dir)
    recovery = run.section(RecoverySummary)
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
    axes[0].set_ylabel(f"F1 on {recovery.sentences} validation sentences")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    figure.suptitle(f"{run.config.model}: how fast {run.concept} comes back")
    return figure


def _reached(value: KnownInterval, seeds: int) -> str:
    """Steps to a share of base F1 as the table shows it: the mean, or never, and over how many seeds.

    Example:
        >>> _reached(KnownInterval(4.0, 2.0, 6.0, 3), 3), _reached(KnownInterval(None, None, None, 0), 3)
        ('4', 'never')
        >>> _reached(KnownInterval(8.0, 8.0, 8.0, 1), 3)
        '8 (1 of 3 seeds)'
    """
    mean = "never" if value.mean is None else f"{value.mean:.0f}"
    return mean if value.n in (0, seeds) else f"{mean} ({value.n} of {seeds} seeds)"


def _render(run: FinishedStudy, seed: int) -> str:
    recovery = run.section(RecoverySummary)
    rows = [
        (
            arm,
            _reached(measures.steps_to_50, len(measures.per_seed)),
            _reached(measures.steps_to_90, len(measures.per_seed)),
            number_or_nan(measures.auc.mean),
        )
        for arm, measures in recovery.arms.items()
    ]
    intro = (
        f"<p>How many training steps after pruning each arm took to reach 50% and 90% of the base model's "
        f"{html.escape(run.concept)} F1 on the {recovery.sentences} monitor sentences, and the area under that "
        "recovery curve (1: at base F1 throughout).</p>"
    )
    table = html_table(["arm", "steps to 50%", "steps to 90%", "recovery AUC"], rows)
    return intro + table + figure_html(plot_recovery(run), CAPTION)


SECTION = ReportSection("recovery", "How fast the concept returns", _render)
