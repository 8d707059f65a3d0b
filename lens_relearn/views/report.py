"""One self-contained HTML report of a finished relearning study.

``write_report(out_dir)`` writes ``out_dir/report.html``: the study in one paragraph (with what
pruning did to the other entity types), F1 per stage and arm, the plots (inline PNG), the primed
neurons with their neuron views, and the config. The page carries the circuitsvis bundle once
and loads nothing from outside itself, so it opens offline from ``file://``; everything taken
from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from lens_relearn.files import replace_file
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.run_folder import RunFolder, finished_run
from lens_relearn.views.neuron_views import neuron_views
from lens_relearn.views.page import html_page
from lens_relearn.views.plots import (
    RELOCATION_ROWS,
    f1_table,
    plot_collateral,
    plot_f1,
    plot_layer_saliency,
    plot_probes,
    plot_redistribution,
    plot_relocation,
    plot_saliency_heatmap,
    plot_similarity,
)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; floats get three decimals (NaN a dash), everything is escaped."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f'<td class="number">{"–" if math.isnan(value) else f"{value:.3f}"}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(figure: Figure, caption: str) -> str:
    """A figure as an inline PNG with its caption."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode()
    text = html.escape(caption)
    return f'<figure><img alt="{text}" src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>'


def _overview(summary: dict, config: ExperimentConfig) -> str:
    pruned = summary["pruned"]
    rho = summary["saliency_similarity_spearman"]
    return (
        f"<p>The {pruned['count']} of {pruned['of']} {html.escape(summary['site'])} neurons "
        f"({pruned['count'] / pruned['of']:.0%}) that carry {html.escape(summary['concept'])} most "
        f"({html.escape(summary['ranking'])} ranking) were pruned ({html.escape(pruned['mode'])}, "
        f"set to {html.escape(pruned['value'])}) in the {html.escape(pruned['arm'])} arm, then the tagger "
        f"was retrained for {config.rounds} round(s) of {config.round_epochs} epoch(s). Arms: "
        f"{html.escape(', '.join(config.arms))}; seeds: {html.escape(', '.join(map(str, summary['seeds'])))}. "
        f"{_collateral(summary)}"
        f"{summary['primed_neurons']} primed neuron(s); Spearman correlation of saliency and top-token "
        f"similarity to the base model after the last round: {rho['mean']:.2f}. "
        f"Computed in {summary['seconds'] / 60:.1f} min.</p>" + _data(summary)
    )


def _collateral(summary: dict) -> str:
    """How much of the concept's F1 and of the other types' mean F1 pruning kept on the test split, per arm run.

    Example:
        >>> def arm(concept, others, chosen):
        ...     return {"concept_f1": {"base": 0.8, "pruned": concept}, "other_f1": {"base": 0.8, "pruned": others},
        ...             "selectivity": {"pruned": chosen}}
        >>> _collateral({"concept": "LOC", "collateral": {"concept": arm(0.096, 0.44, 0.43), "none": arm(0.8, 0.8, 0)}})
        "Pruning kept 12% of LOC's F1 and 55% of the other types' mean F1 (selectivity 0.43 after pruning). "
        >>> _collateral({"concept": "LOC", "collateral": {"random": arm(0.76, None, None)}})[:60]
        "Random pruning kept 95% of LOC's F1 and an unknown share of "
    """
    parts: list[str] = []
    for arm, pruning in (("concept", "pruning"), ("random", "random pruning")):
        if arm not in summary["collateral"]:
            continue
        values = summary["collateral"][arm]
        concept, others = _kept(values["concept_f1"]), _kept(values["other_f1"])
        chosen = values["selectivity"]["pruned"]
        shown = "undefined" if chosen is None else f"{chosen:.2f}"
        if parts:
            parts.append(f"{pruning} kept {concept} and {others} (selectivity {shown})")
        else:
            parts.append(
                f"{pruning} kept {concept} of {html.escape(summary['concept'])}'s F1 and {others} of the other "
                f"types' mean F1 (selectivity {shown} after pruning)"
            )
    sentence = "; ".join(parts)
    return f"{sentence[:1].upper()}{sentence[1:]}. " if parts else ""


def _relocation(summary: dict) -> str:
    """The causal test of relocation as a section: F1 under each ablation (means over seeds)."""
    if "relocation" not in summary:
        return ""
    relocation = summary["relocation"]
    rows = [
        (label, *(_number(relocation["conditions"][key][m]) for m in ("concept_f1", "other_f1", "f1")))
        for key, label in RELOCATION_ROWS.items()
    ]
    concept = summary["concept"]
    intro = (
        f"<p>The carriers are the {relocation['count']} best-ranked unpruned neurons for {html.escape(concept)} "
        "after the last round. Ablating them on top of the pruning tests whether the concept moved into them; "
        "as many random survivors, and the carriers in the base model, are the controls (test split).</p>"
    )
    header = ["condition", f"{concept} F1", "other types F1", "F1"]
    return f"<h2>Where the concept went</h2>{intro}{_table(header, rows)}"


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _kept(f1: dict) -> str:
    """The share of its base F1 an arm kept after pruning, as a percentage.

    Example:
        >>> _kept({"base": 0.8, "pruned": 0.2}), _kept({"base": 0.0, "pruned": 0.0}), _kept({"base": None, "pruned": 1})
        ('25%', 'an unknown share', 'an unknown share')
    """
    base, pruned = f1["base"], f1["pruned"]
    if not base or pruned is None or math.isnan(base) or math.isnan(pruned):
        return "an unknown share"
    return f"{pruned / base:.0%}"


def _data(summary: dict) -> str:
    """Where the sentences came from: the NER data and the concept corpus neurons were ranked on."""
    data, corpus = summary["data"], summary["concept_corpus"]
    splits = ", ".join(f"{count} {split}" for split, count in data.items() if split != "source")
    classes = summary["concept_classes"]
    concept = html.escape(summary["concept"]) + (
        f" (the classes {html.escape(', '.join(classes))})" * (len(classes) > 1)
    )
    return (
        f'<p class="data">NER data: {html.escape(data["source"])} ({splits} sentences); concept: {concept}. '
        f"Neurons were ranked on the concept corpus <code>{html.escape(corpus['source'])}</code>: "
        f"{corpus['sentences']} sentences, {corpus['words']} words, {corpus['concept_words']} of them "
        f"labelled {html.escape(corpus['concept'])}.</p>"
    )


def _f1_tables(out: RunFolder) -> str:
    splits = out.table("performance").split.unique()
    parts = []
    for split in [s for s in ("test", "novel_test") if s in splits]:
        table = f1_table(out, split=split)
        rows = [
            (arm, metric, *values) for (arm, metric), values in zip(table.index, table.to_numpy().tolist(), strict=True)
        ]
        parts.append(f"<h3>{html.escape(split)} split</h3>" + _table(["arm", "metric", *table.columns], rows))
    return "".join(parts)


def _primed(out: RunFolder, seed: int, count: int, top: int) -> str:
    primed = out.table("primed")
    primed = primed[primed.seed == seed]
    intro = (
        f"<p>Neurons among the top {top} of the last round's ranking that were neither among the "
        f"top {top} at the base model nor pruned: the concept moved into them.</p>"
    )
    if primed.empty:
        return intro + f"<p>No primed neurons for seed {seed}.</p>"
    primed = primed.head(count)
    intro += f"<p>The first {len(primed)} by final rank (seed {seed}):</p>"
    rows = [
        (
            f"L{r.layer}.{r['index']}",
            f"{r.position_before + 1} → {r.position_after + 1}",
            r.saliency_before,
            r.saliency_after,
            r.concept_similarity_before,
            r.concept_similarity_after,
            r.similarity_to_base,
            r.top_tokens_before,
            r.top_tokens_after,
        )
        for _, r in primed.iterrows()
    ]
    header = [
        "neuron",
        "rank: base → final",
        "saliency before",
        "saliency after",
        "concept similarity before",
        "concept similarity after",
        "similarity to base",
        "top tokens before",
        "top tokens after",
    ]
    views = neuron_views(out, list(zip(primed.layer, primed["index"], strict=True)), seed=seed)
    return intro + _table(header, rows) + "".join(view.body for view in views)


def write_report(out_dir: str | Path | RunFolder, *, seed: int = 0, case_studies: int = 3) -> Path:
    """Write ``report.html`` into a finished study's folder.

    Args:
        out_dir: The folder ``lens-relearn run`` (or ``run_experiment``) wrote.
        seed: Whose models the neuron views and per-neuron plots show.
        case_studies: How many primed neurons get a view (their stage models are loaded once).

    Returns:
        The report's path (written atomically).

    Raises:
        LensRelearnError: ``out_dir`` holds no finished study.
    """
    out = finished_run(out_dir)
    captions = {
        "f1": "F1 on the test split after pruning and after each retraining round, per arm.",
        "collateral": "F1 of every entity type on the test split at every stage, one panel an arm: the concept's "
        "classes thick and red, the other types thin. Selectivity is the share of the other types' mean F1 a stage "
        "kept minus the share of the concept's F1 it kept: 1 when only the concept was lost, 0 when both lost "
        "the same share.",
        "relocation": "The causal test of relocation: concept F1 and the other types' mean F1 on the test split "
        "with the last round's carriers ablated, as many random survivors ablated, and the carriers ablated in "
        "the base model (means over seeds).",
        "probes": "Accuracy of a logistic-regression probe for the concept on each residual layer at each stage, "
        "trained on the concept corpus and scored on the test split; dashed: the majority class. A probe above "
        "the floor after pruning means the information survived and only its use broke.",
        "layers": "Mean normalised concept saliency of each layer at each stage, with 95% intervals over "
        "the layer's neurons.",
        "heatmap": "Saliency of every neuron at the base model and after the last round; pruned neurons grey.",
        "similarity": "Top-token similarity to the base model against saliency after the last round, for "
        "the neurons that survived pruning.",
        "redistribution": "Share of each layer's surviving neurons with saliency above 0.5, at the base model "
        "and after the last round.",
    }
    figures = [  # the first plot checks that out_dir holds a finished study
        (plot_f1(out), captions["f1"]),
        (plot_collateral(out), captions["collateral"]),
        (plot_layer_saliency(out), captions["layers"]),
        (plot_probes(out), captions["probes"]),
        *([(plot_relocation(out), captions["relocation"])] if "relocation" in out.summary else []),
        (plot_saliency_heatmap(out, seed=seed), captions["heatmap"]),
        (plot_similarity(out, seed=seed), captions["similarity"]),
        (plot_redistribution(out), captions["redistribution"]),
    ]
    config, summary = out.config, out.summary
    fields = json.loads(config.to_json())
    title = f"Relearning {summary['concept']} in {summary['model']}"
    body = (
        f"<h1>{html.escape(title)}</h1>{_overview(summary, config)}"
        f"<h2>F1 per stage</h2>{_f1_tables(out)}"
        f"<h2>Figures</h2>{''.join(_figure(figure, caption) for figure, caption in figures)}"
        f"<h2>Primed neurons</h2>{_primed(out, seed, case_studies, config.primed_top)}"
        f"{_relocation(summary)}"
        f"<h2>Config</h2>{_table(['field', 'value'], [(k, json.dumps(v)) for k, v in fields.items()])}"
    )
    path = out.report_path
    replace_file(path, lambda staging: staging.write_text(html_page(title, body), encoding="utf-8"))
    return path
