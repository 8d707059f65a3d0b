"""One self-contained HTML report of a finished run.

``write_report(out_dir)`` writes ``out_dir/report.html``. For a study: the study in one
paragraph, where its sentences came from, F1 per stage and arm, the core's figures (F1, layer
saliency, the saliency heatmap), the section of every analysis that ran (``SECTIONS``, in the
order the analyses are registered), which analyses did not run and why, a neuron browser and the
config. For an iterative removal, ``write_removal_report``. The page carries the circuitsvis
bundle once and loads nothing from outside itself, so it opens offline from ``file://``;
everything taken from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.folders import RemovalFolder, RunFolder, StudyFolder
from lens_relearn.study.summary import StudySummary
from lens_relearn.views.blend import BLEND_HEADER, blend_cells
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.neuron_views import neuron_trajectory, neuron_views
from lens_relearn.views.page import figure_html, html_page, html_table
from lens_relearn.views.plots import f1_table, plot_f1, plot_layer_saliency, plot_saliency_heatmap
from lens_relearn.views.removal import write_removal_report
from lens_relearn.views.sections import SECTIONS

CAPTIONS = {
    "f1": "F1 on the test split after pruning and after each retraining round, per arm.",
    "layers": "Mean normalised concept saliency of each layer at each stage, with 95% intervals over the layer's "
    "neurons.",
    "heatmap": "Saliency of every neuron at the base model and after the last round; pruned neurons grey.",
}


def _overview(summary: StudySummary, out: FinishedStudy) -> str:
    pruned, config = summary.pruned, out.config
    return (
        f"<p>The {pruned.count} of {pruned.of} {html.escape(summary.site)} neurons "
        f"({pruned.count / pruned.of:.0%}) that carry {html.escape(summary.concept)} most "
        f"({html.escape(summary.ranking)} ranking) were removed ({html.escape(pruned.mode)}, "
        f"set to {html.escape(pruned.value)}) in the {html.escape(pruned.arm)} arm, then the tagger "
        f"was retrained for {config.rounds} round(s) of {config.round_epochs} epoch(s). Arms: "
        f"{html.escape(', '.join(config.arms))}; seeds: {html.escape(', '.join(map(str, summary.seeds)))}. "
        f"Computed in {summary.seconds / 60:.1f} min.</p>" + _data(summary)
    )


def _data(summary: StudySummary) -> str:
    """Where the sentences came from: the NER data and the concept corpus neurons were ranked on."""
    data, corpus = summary.data, summary.concept_corpus
    splits = ", ".join(f"{count} {split}" for split, count in data.splits.items())
    classes = summary.concept_classes
    concept = html.escape(summary.concept) + (f" (the classes {html.escape(', '.join(classes))})" * (len(classes) > 1))
    return (
        f'<p class="data">NER data: {html.escape(data.source)} ({splits} sentences); concept: {concept}. '
        f"Neurons were ranked on the concept corpus <code>{html.escape(corpus.source)}</code>: "
        f"{corpus.sentences} sentences, {corpus.words} words, {corpus.concept_words} of them "
        f"labelled {html.escape(corpus.concept)}.</p>"
    )


def _f1_tables(out: FinishedStudy) -> str:
    splits = out.table("performance").split.unique()
    parts = []
    for split in [s for s in ("test", "novel_test") if s in splits]:
        table = f1_table(out, split=split)
        rows = [
            (arm, metric, *values) for (arm, metric), values in zip(table.index, table.to_numpy().tolist(), strict=True)
        ]
        parts.append(f"<h3>{html.escape(split)} split</h3>" + html_table(["arm", "metric", *table.columns], rows))
    return "".join(parts)


def _sections(out: FinishedStudy, seed: int) -> str:
    """The section of every analysis that ran, in registry order; then the ones that did not, and why."""
    ran = out.summary.analyses.ran
    order = [name for name in ANALYSES.names() if name in ran] + [name for name in ran if name not in ANALYSES]
    parts = [
        f'<h2 id="analysis-{name}">{html.escape(SECTIONS.get(name).title)}</h2>{SECTIONS.get(name).render(out, seed)}'
        for name in order
        if name in SECTIONS
    ]
    skipped = out.summary.analyses.skipped
    if skipped:
        rows = [(name, reason) for name, reason in skipped.items()]
        parts.append(f'<h2 id="skipped">Analyses not run</h2>{html_table(["analysis", "why not"], rows)}')
    return "".join(parts)


BROWSER_SCRIPT = """
(function () {
  const select = document.getElementById("neuron-browser-select");
  const filter = document.getElementById("neuron-browser-filter");
  const shown = document.getElementById("neuron-browser-view");
  function show() {
    const template = document.getElementById(select.value);
    if (template) shown.replaceChildren(document.importNode(template.content, true));
  }
  filter.addEventListener("input", function () {
    const wanted = filter.value.trim().toLowerCase();
    for (const option of select.options) option.hidden = !option.textContent.toLowerCase().includes(wanted);
    const first = [...select.options].find(option => !option.hidden);
    if (first && select.selectedOptions[0].hidden) { select.value = first.value; show(); }
  });
  select.addEventListener("change", show);
  show();
})();
"""


def _browser(out: FinishedStudy, seed: int, top: int = 100) -> str:
    """Every one of the last round's top ``top`` neurons and every primed neuron, one pick away.

    Each neuron's view, class composition, blend and trajectory is kept in a ``<template>``,
    inert until picked; picking one copies it into the page, where its circuitsvis components
    render. The page stays one file and asks for nothing outside it.
    """
    arm = out.arm(None)
    final = out.neurons_at(seed, arm, out.final)
    primed = out.table("primed") if out.ran("blend") else pd.DataFrame(columns=["seed", "layer", "index"])
    primed = primed[primed.seed == seed].set_index(["layer", "index"])
    chosen = final[(final.position < top) | final.set_index(["layer", "index"]).index.isin(primed.index)]
    chosen = chosen.sort_values("position")
    neurons = [(int(layer), int(index)) for layer, index in zip(chosen.layer, chosen["index"], strict=True)]
    if not neurons:
        return ""
    views = neuron_views(out, neurons, seed=seed, arm=arm)
    table = out.table("neurons")
    table = table[(table.arm == arm) & (table.seed == seed)]
    options, templates = [], []
    for (layer, index), position, view in zip(neurons, chosen.position, views, strict=True):
        key = f"neuron-L{layer}-{index}"
        is_primed = (layer, index) in primed.index
        label = f"L{layer}.{index}: rank {position + 1} at {out.final}{', primed' if is_primed else ''}"
        options.append(f'<option value="{key}">{html.escape(label)}</option>')
        rows = neuron_trajectory(table[(table.layer == layer) & (table["index"] == index)], out.stages)
        rows = rows.drop(columns="top_tokens").assign(position=rows.position + 1)
        trajectory = html_table([c.replace("_", " ") for c in rows.columns], rows.itertuples(index=False))
        if not out.ran("blend"):
            blend = "<p>The blend analysis did not run in this study.</p>"
        elif is_primed:
            blend = html_table(BLEND_HEADER, [blend_cells(primed.loc[(layer, index)])])
        else:
            blend = "<p>Not a primed neuron (it was among the base model's top neurons, or pruned).</p>"
        templates.append(
            f'<template id="{key}">{view.body}<h4>Blend</h4>{blend}<h4>Trajectory</h4>{trajectory}</template>'
        )
    return (
        f"<h2>Neuron browser</h2><p>The {int((chosen.position < top).sum())} best-ranked neurons after the last round "
        f"and every primed neuron (seed {seed}, {html.escape(arm)} arm): pick one to see its view, class composition, "
        'blend and trajectory.</p><p class="neuron-browser">'
        '<label>filter <input id="neuron-browser-filter" type="search" placeholder="L5. or primed"></label> '
        f'<label>neuron <select id="neuron-browser-select">{"".join(options)}</select></label></p>'
        f'<div id="neuron-browser-view"></div>{"".join(templates)}<script>{BROWSER_SCRIPT}</script>'
    )


def write_report(out_dir: str | Path | RunFolder, *, seed: int | None = None) -> Path:
    """Write ``report.html`` into a finished study's folder (or an iterative removal's: ``write_removal_report``).

    Args:
        out_dir: The folder ``lens-relearn run`` (or ``run_experiment``) wrote.
        seed: Whose models the neuron views and per-neuron plots show (default: the study's first seed).

    Returns:
        The report's path (written atomically).

    Raises:
        LensRelearnError: ``out_dir`` holds no finished study or removal.
    """
    if isinstance(out_dir, FinishedStudy):
        out = out_dir
    else:
        where = out_dir.path if isinstance(out_dir, RunFolder) else Path(out_dir)
        held = RunFolder(where).holds()
        if held == RemovalFolder.KIND:
            return write_removal_report(RemovalFolder(where))
        if held not in (None, StudyFolder.KIND):
            raise LensRelearnError(f"{where} holds a {held}, which has no report; its figure is in the folder.")
        out = finished(where)
    summary, config, seed = out.summary, out.config, out.seed(seed)
    figures = [
        (plot_f1(out), CAPTIONS["f1"]),
        (plot_layer_saliency(out), CAPTIONS["layers"]),
        (plot_saliency_heatmap(out, seed=seed), CAPTIONS["heatmap"]),
    ]
    browser = _browser(out, seed)  # first: its neuron views hold the blend section's, which then reads them
    fields = json.loads(config.to_json())
    title = f"Relearning {summary.concept} in {summary.model}"
    body = (
        f"<h1>{html.escape(title)}</h1>{_overview(summary, out)}"
        f"<h2>F1 per stage</h2>{_f1_tables(out)}"
        f"<h2>Figures</h2>{''.join(figure_html(figure, caption) for figure, caption in figures)}"
        f"{_sections(out, seed)}"
        f"{browser}"
        f"<h2>Config</h2>{html_table(['field', 'value'], [(k, json.dumps(v)) for k, v in fields.items()])}"
    )
    path = out.report_path
    replace_file(path, lambda staging: staging.write_text(html_page(title, body), encoding="utf-8"))
    return path
