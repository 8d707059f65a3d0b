"""Seeing an iterative removal run: the concept's F1 against the share of neurons removed, and its report."""

from __future__ import annotations

import html
import json
from pathlib import Path

from matplotlib.figure import Figure

from lens_relearn.files import replace_file
from lens_relearn.study.folders import RemovalFolder
from lens_relearn.study.iterative import RemovalSummary
from lens_relearn.study.summary import from_plain
from lens_relearn.views.page import figure_html, html_page, html_table
from lens_relearn.views.plots import arm_style


def plot_removal(out_dir: str | Path | RemovalFolder) -> Figure:
    """Does the concept stay gone? Its F1 after each retraining against the share of neurons removed so far.

    Args:
        out_dir: A finished removal run's folder (``lens-relearn remove``).

    Returns:
        One line an arm for the concept's F1 after retraining (solid; before retraining, thin
        dotted) and one for the other types' mean F1 after it (dashed), on the test split; the
        dotted grey lines are the stopping thresholds (``gone_share`` of the base concept F1,
        ``floor_share`` of the base other types' F1).
    """
    run = _finished(out_dir)
    summary, table = removal_summary(run), run.table("removal")
    config = run.config
    figure = Figure(figsize=(8.5, 5), layout="constrained")
    axis = figure.subplots()
    for arm, rows in table.groupby("arm", sort=False):
        label, colour, _ = arm_style(str(arm))
        shares = [0.0, *rows.pruned_share]
        base = summary.base["test"]
        axis.plot(shares, [base["concept_f1"], *rows.concept_f1_after], color=colour, marker="o", label=label)
        axis.plot(shares[1:], rows.concept_f1_before, color=colour, linestyle=":", linewidth=0.8)
        axis.plot(
            shares,
            [base["other_f1"], *rows.other_f1_after],
            color=colour,
            linestyle="--",
            marker="s",
            markersize=4,
            label=f"{label}: other types' F1",
        )
    base = summary.base["test"]
    if (concept := base["concept_f1"]) is not None:
        axis.axhline(config.gone_share * concept, color="gray", linestyle=":", linewidth=0.8)
    if (others := base["other_f1"]) is not None:
        axis.axhline(config.floor_share * others, color="gray", linestyle="-.", linewidth=0.8)
    axis.set_ylim(0, 1.02)
    axis.xaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axis.set_xlabel(f"share of the {summary.neurons} {summary.site} neurons removed so far")
    axis.set_ylabel(f"F1 on the test split after retraining ({summary.concept}: solid)")
    axis.set_title(f"{summary.model}: can {summary.concept} be removed for good? (stop: {summary.stop})")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return figure


def write_removal_report(out_dir: str | Path | RemovalFolder) -> Path:
    """Write ``report.html`` into a finished removal run's folder: the answer, the figure, every iteration, the config.

    Returns:
        The report's path (written atomically; it loads nothing from outside itself).
    """
    run = _finished(out_dir)
    summary, table = removal_summary(run), run.table("removal")
    concept = summary.concept
    rows = [
        (
            r.arm,
            r.iteration,
            f"{r.pruned_share:.1%}",
            r.concept_f1_before,
            r.concept_f1_after,
            r.other_f1_after,
            r.f1_after,
            r.stop if isinstance(r.stop, str) else "",
        )
        for r in table.itertuples()
    ]
    header = [
        "arm",
        "iteration",
        "removed",
        f"{concept} F1 before retraining",
        f"{concept} F1 after",
        "other types F1 after",
        "F1 after",
        "stopped: why",
    ]
    saliency = summary.arms["concept"].layer_saliency
    layers = html_table(
        ["iteration", *(f"layer {layer}" for layer in range(len(saliency[0])))],
        [(i + 1, *values) for i, values in enumerate(saliency)],
    )
    caption = (
        f"{concept} F1 (solid) and the other types' mean F1 (dashed) on the test split after each retraining, "
        f"against the share of neurons removed so far; dotted: {concept} F1 before retraining; grey: the thresholds."
    )
    fields = run.config_values()
    body = (
        f"<h1>Removing {html.escape(concept)} from {html.escape(summary.model)} for good?</h1>"
        f"{_overview(summary, run.config.gone_share)}"
        f"{figure_html(plot_removal(run), caption)}"
        f"<h2>Every iteration (test split)</h2>{html_table(header, rows)}"
        f"<h2>Where the {html.escape(concept)} neurons are</h2><p>Mean saliency of each layer's unpruned neurons in "
        f"the ranking each iteration pruned from (concept arm).</p>{layers}"
        f"<h2>Config</h2>{html_table(['field', 'value'], [(k, json.dumps(v)) for k, v in fields.items()])}"
    )
    title = f"Removing {concept} from {summary.model}"
    replace_file(run.report_path, lambda staging: staging.write_text(html_page(title, body), encoding="utf-8"))
    return run.report_path


def _overview(summary: RemovalSummary, gone_share: float) -> str:
    """What each iteration did, why the concept arm stopped, and whether the concept stayed gone."""
    concept, removed = html.escape(summary.concept), summary.gone_share_removed
    answer = (
        f"{concept} was first below {gone_share:.0%} of its base validation F1 after retraining at iteration "
        f"{summary.gone_at}, with {removed:.1%} of the neurons removed"
        if removed is not None
        else f"{concept} came back after every retraining"
    )
    site, ranking, stop = (html.escape(value) for value in (summary.site, summary.ranking, summary.stop))
    chose = (
        f"learned a mask of {summary.step} of the {summary.neurons} {site} neurons not yet pruned on the current "
        "model, pruned them"
        if summary.method == "learned_mask"
        else f"ranked the {summary.neurons} {site} neurons on the current model ({ranking}), pruned the "
        f"best-ranked {summary.step} not yet pruned"
    )
    return (
        f"<p>Each iteration {chose}, retrained and scored; a random arm pruned as "
        f"many random neurons. The concept arm stopped after {summary.iterations} iteration(s), "
        f"{summary.pruned_share:.1%} of the neurons removed: {stop}. {answer}.</p>"
    )


def removal_summary(run: RemovalFolder) -> RemovalSummary:
    """A finished removal's ``summary.json``, typed."""
    return from_plain(RemovalSummary, run.summary_values())


def _finished(out_dir: str | Path | RemovalFolder) -> RemovalFolder:
    run = out_dir if isinstance(out_dir, RemovalFolder) else RemovalFolder(out_dir)
    run.require_complete()
    return run
