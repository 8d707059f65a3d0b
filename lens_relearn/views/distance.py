"""Distance from the base model, seen: CKA per layer at the site and the residual stream, and weight distance."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lens_relearn.analyses.distance import DistanceSummary
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import arm_style
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "How far each stage moved from the base model (means over seeds): linear CKA between the base model's and the "
    "stage's representations of the same test-split words, a layer of the study's site and of the residual stream "
    "(1: the same up to rotation and scale), at the last stage of each arm (solid) and right after its removal "
    "(dotted); and the relative distance of the weights from the base tagger's at every stage."
)


def plot_distance(out_dir: str | Path | FinishedStudy) -> Figure:
    """CKA with the base model per layer (site and residual stream) and the weights' distance, every arm.

    Args:
        out_dir: A finished study's folder in which the ``distance`` analysis ran.

    Returns:
        Three panels: CKA per layer of the site and of the residual stream after the removal (dotted) and at
        the last stage (solid); the relative weight distance at every stage. One colour a removal.
    """
    run = finished(out_dir)
    section = run.section(DistanceSummary)
    last = run.stages[-1]
    figure = Figure(figsize=(14, 4.5), layout="constrained")
    site_axis, resid_axis, weight_axis = figure.subplots(1, 3)
    for arm, stages in section.arms.items():
        label, colour, line = arm_style(arm)
        for axis, values in ((site_axis, "cka_site"), (resid_axis, "cka_resid")):
            axis.plot(getattr(stages[last], values), marker="o", color=colour, linestyle=line, label=label)
            axis.plot(getattr(stages["pruned"], values), color=colour, linestyle=":", alpha=0.7)
        weight_axis.plot(run.stages, [stages[s].weights for s in run.stages], marker="o", color=colour, linestyle=line)
    site_axis.set_xlabel(f"{section.site} layer")
    resid_axis.set_xlabel("residual layer (0: embeddings)")
    for axis in (site_axis, resid_axis):
        axis.set_ylabel("linear CKA with the base model")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    site_axis.set_title(f"{section.site}: {last} (solid), pruned (dotted)")
    resid_axis.set_title(f"residual stream: {last} (solid), pruned (dotted)")
    weight_axis.set_ylabel("‖θ − θ_base‖ / ‖θ_base‖")
    weight_axis.set_title("weights")
    weight_axis.grid(alpha=0.3)
    figure.legend(*site_axis.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    figure.suptitle(f"{run.config.model}: how far each stage moved from the base model")
    return figure


def distance_rows(section: DistanceSummary) -> tuple[list[str], list[tuple]]:
    """The distance table: a row an arm and stage, the last layer's CKA at the site and the residual stream
    and the weight distance."""
    header = ["arm", "stage", f"CKA, last {section.site} layer", "CKA, last residual layer", "weight distance"]
    rows = [
        (arm, stage, f"{d.cka_site[-1]:.3f}", f"{d.cka_resid[-1]:.3f}", f"{d.weights:.4f}")
        for arm, stages in section.arms.items()
        for stage, d in stages.items()
    ]
    return header, rows


def _section(run: FinishedStudy, seed: int) -> str:
    return figure_html(plot_distance(run), CAPTION) + html_table(*distance_rows(run.section(DistanceSummary)))


SECTION = ReportSection("distance", "How far from the base model", _section)
