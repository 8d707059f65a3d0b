"""Regrowth or relocation, seen: what the regrown pruned units carry after each round (weights mode, unfrozen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lens_relearn.analyses.regrowth import RegrowthSummary
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html
from lens_relearn.views.plots import CONCEPT_COLOUR, number_or_nan
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "Regrowth or relocation: the share of the concept's saliency on the pruned units that grew back, and the "
    "concept's F1 with them masked again, per round (means over seeds)."
)


def plot_regrowth(out_dir: str | Path | FinishedStudy) -> Figure:
    """Regrowth or relocation (weights mode, unfrozen): what the regrown pruned units carry, per round.

    Args:
        out_dir: A finished study's folder run with ``prune_mode="weights"`` and ``freeze=False``.

    Returns:
        Two panels over the rounds: the share of the concept's saliency on regrown pruned units;
        the concept's F1 as retrained and with the pruned units masked again (means over seeds).
    """
    run = finished(out_dir)
    summary = run.summary
    section = run.section(RegrowthSummary)
    rounds = list(section.rounds)
    regrowth = [section.rounds[r] for r in rounds]
    positions = np.arange(1, len(rounds) + 1)
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    share_axis, f1_axis = figure.subplots(1, 2)
    share_axis.bar(positions, [number_or_nan(r.pruned_saliency_share) for r in regrowth], color=CONCEPT_COLOUR)
    share_axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    share_axis.set_ylim(0, 1)
    share_axis.set_xlabel("retraining round")
    share_axis.set_ylabel(f"share of {run.concept} saliency on regrown units")
    share_axis.set_title("saliency carried by the regrown pruned units")
    f1_axis.plot(positions, summary.concept_f1.rounds, marker="o", color=CONCEPT_COLOUR, label="as retrained")
    f1_axis.plot(
        positions,
        [number_or_nan(r.concept_f1_remasked) for r in regrowth],
        marker="s",
        linestyle="--",
        color="black",
        label="pruned units masked again",
    )
    f1_axis.axhline(summary.concept_f1.base, color="tab:gray", linestyle=":", label="base")
    f1_axis.set_ylim(0, 1)
    f1_axis.set_xlabel("retraining round")
    f1_axis.set_ylabel(f"{run.concept} F1 (test)")
    f1_axis.set_title("without the regrown units")
    f1_axis.legend(fontsize=8)
    for axis in (share_axis, f1_axis):
        axis.set_xticks(positions, rounds)
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(f"{run.config.model}: regrowth or relocation? ({summary.pruned.count} units, weights mode)")
    return figure


SECTION = ReportSection(
    "regrowth", "Regrowth or relocation", lambda run, seed: figure_html(plot_regrowth(run), CAPTION)
)
