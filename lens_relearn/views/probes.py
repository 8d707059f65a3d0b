"""Layer probes, seen: is the concept still linearly readable from each residual layer at each stage?"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "Accuracy of a logistic-regression probe for the concept on each residual layer at each stage, trained on the "
    "concept corpus and scored on the test split; dashed: the majority class. A probe above the floor after pruning "
    "means the information survived and only its use broke."
)


def plot_probes(out_dir: str | Path | FinishedStudy, *, arm: str | None = None) -> Figure:
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
    run = finished(out_dir)
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


SECTION = ReportSection(
    "probes", "Is the concept still readable?", lambda run, seed: figure_html(plot_probes(run), CAPTION)
)
