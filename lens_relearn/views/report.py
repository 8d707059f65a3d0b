"""One self-contained HTML report of a finished relearning study.

``write_report(out_dir)`` writes ``out_dir/report.html``: the study in one paragraph (with what
pruning did to the other entity types), F1 per stage and arm, the plots (inline PNG), the primed
neurons with their neuron views, and the config. The page carries the circuitsvis bundle once
and loads nothing from outside itself, so it opens offline from ``file://``; everything taken
from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

from lens_relearn.files import replace_file
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.run_folder import RunFolder, finished_run, is_removal_run
from lens_relearn.views.neuron_views import neuron_trajectory, neuron_views
from lens_relearn.views.page import figure_html, html_page, html_table
from lens_relearn.views.plots import (
    RELOCATION_ROWS,
    f1_table,
    number_or_nan,
    plot_blend,
    plot_collateral,
    plot_f1,
    plot_layer_saliency,
    plot_probes,
    plot_recovery,
    plot_redistribution,
    plot_regrowth,
    plot_relocation,
    plot_saliency_heatmap,
    plot_similarity,
)
from lens_relearn.views.removal import write_removal_report


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
        (label, *(number_or_nan(relocation["conditions"][key][m]) for m in ("concept_f1", "other_f1", "f1")))
        for key, label in RELOCATION_ROWS.items()
    ]
    concept = summary["concept"]
    intro = (
        f"<p>The carriers are the {relocation['count']} best-ranked unpruned neurons for {html.escape(concept)} "
        "after the last round. Ablating them on top of the pruning tests whether the concept moved into them; "
        "as many random survivors, and the carriers in the base model, are the controls (test split).</p>"
    )
    header = ["condition", f"{concept} F1", "other types F1", "F1"]
    return f"<h2>Where the concept went</h2>{intro}{html_table(header, rows)}"


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
        parts.append(f"<h3>{html.escape(split)} split</h3>" + html_table(["arm", "metric", *table.columns], rows))
    return "".join(parts)


def _recovery(summary: dict, final: str) -> str:
    """Every arm's recovery and retraining data side by side: what it retrained on, the concept's F1 after
    pruning and after the last round (test split), how fast it came back (monitor sentences), the last layer's probe."""
    retraining, recovery = summary["retraining"], summary.get("recovery", {}).get("arms", {})

    def reached(arm: str, key: str) -> str:
        if arm not in recovery:
            return "–"
        value = recovery[arm][key]
        seeds = len(recovery[arm]["per_seed"])
        mean = "never" if value["mean"] is None else f"{value['mean']:.0f}"
        return mean if value["n"] in (0, seeds) else f"{mean} ({value['n']} of {seeds} seeds)"

    def with_interval(value: dict) -> str:
        return f"{value['mean']:.3f}" + (f" [{value['low']:.3f}, {value['high']:.3f}]" if value["n"] > 1 else "")

    rows = [
        (
            arm,
            f"{r['data']} ({r['sentences']} sentences)",
            with_interval(r["concept_f1_intervals"]["pruned"]),
            with_interval(r["concept_f1_intervals"][final]),
            number_or_nan(r["other_f1"][final]),
            reached(arm, "steps_to_50"),
            reached(arm, "steps_to_90"),
            number_or_nan(recovery[arm]["auc"]["mean"]) if arm in recovery else math.nan,
            r["probe_accuracy_last_layer"]["pruned"],
            r["probe_accuracy_last_layer"][final],
        )
        for arm, r in retraining.items()
    ]
    concept = summary["concept"]
    header = [
        "arm",
        "retrained on",
        f"{concept} F1 pruned",
        f"{concept} F1 {final}",
        f"others F1 {final}",
        "steps to 50%",
        "steps to 90%",
        "recovery AUC",
        "probe accuracy pruned",
        f"probe accuracy {final}",
    ]
    intro = (
        f"<p>Each arm's {html.escape(concept)} F1 on the test split (95% intervals over seeds when there are several), "
        "how many training steps after pruning it took to reach 50% and 90% of the base model's F1 on the monitor "
        "sentences, the area under that recovery curve (1: at base F1 throughout), and the accuracy of the last "
        "layer's probe. An arm retrained without the concept's sentences shows what comes back untaught; one "
        "retrained with the concept tagged O, whether the representation survives being taught to ignore it.</p>"
    )
    return f"<h2>How fast and from what the concept returns</h2>{intro}{html_table(header, rows)}"


BLEND_HEADER = ["old class", "old class share: base → final", "concept share: base → final", "blend"]


def _blend_cells(row: pd.Series) -> tuple[str, str, str, float]:
    """A primed neuron's old class, the shares of it and of the concept before and after, and its blend."""
    if "blend" not in row:
        return ("–", "–", "–", math.nan)
    old = row.old_class if isinstance(row.old_class, str) else "none"
    old_shares = "–" if old == "none" else f"{row.old_share_before:.2f} → {row.old_share_after:.2f}"
    return (old, old_shares, f"{row.concept_share_before:.2f} → {row.concept_share_after:.2f}", float(row.blend))


def _primed(out: RunFolder, seed: int, count: int, top: int) -> str:
    primed = out.table("primed")
    primed = primed[primed.seed == seed]
    intro = (
        f"<p>Neurons among the top {top} of the last round's ranking that were neither among the "
        f"top {top} at the base model nor pruned: the concept moved into them. A neuron's old class is "
        "the entity class other than the concept with the largest share of its top-activating words at the "
        "base model; its blend is twice the smaller of that class's and the concept's shares after the last "
        "round (1: an even mix of old and new, 0: one of them gone).</p>"
    )
    if primed.empty:
        return intro + f"<p>No primed neurons for seed {seed}.</p>"
    intro += _blend_sentence(out.summary.get("blend"))
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
            *_blend_cells(r),
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
        *BLEND_HEADER,
        "top tokens before",
        "top tokens after",
    ]
    views = neuron_views(out, list(zip(primed.layer, primed["index"], strict=True)), seed=seed)
    return intro + html_table(header, rows) + "".join(view.body for view in views)


def _blend_sentence(blend: dict | None) -> str:
    """The primed neurons' blend in one sentence (means over the primed neurons of every seed).

    Example:
        >>> text = _blend_sentence({"occurrences": 50, "neurons": 4, "with_old_class": 3,
        ...     "old_classes": {"PER": 2, "ORG": 1}, "primed": {"old_share_before": 0.3, "old_share_after": 0.1,
        ...     "concept_share_before": 0.1, "concept_share_after": 0.5, "blend": 0.2, "entropy_before": 1.0,
        ...     "entropy_after": 1.2}, "survivors": {"neurons": 90, "entropy_before": 0.9, "entropy_after": 0.95}})
        >>> text[text.index("3 of") : text.index(" and the concept")]
        "3 of the 4 primed neurons had an old class (PER 2, ORG 1). On average the old class's share went 0.30 → 0.10"
    """
    if not blend or not blend["neurons"]:
        return ""
    primed, survivors = blend["primed"], blend["survivors"]
    classes = ", ".join(f"{html.escape(kind)} {count}" for kind, count in blend["old_classes"].items()) or "none"
    return (
        f"<p>Class composition counts each neuron's {blend['occurrences']} top-activating words. "
        f"{blend['with_old_class']} of the {blend['neurons']} primed neurons had an old class ({classes}). "
        f"On average the old class's share went {_share(primed['old_share_before'])} → "
        f"{_share(primed['old_share_after'])} and the concept's {_share(primed['concept_share_before'])} → "
        f"{_share(primed['concept_share_after'])} (blend {_share(primed['blend'])}); the entropy of their "
        f"composition went {_share(primed['entropy_before'])} → {_share(primed['entropy_after'])} bits, against "
        f"{_share(survivors['entropy_before'])} → {_share(survivors['entropy_after'])} for all "
        f"{survivors['neurons']} surviving neurons.</p>"
    )


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


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


def _browser(out: RunFolder, seed: int, top: int = 100) -> str:
    """Every one of the last round's top ``top`` neurons and every primed neuron, one pick away.

    Each neuron's view, class composition, blend and trajectory is kept in a ``<template>``,
    inert until picked; picking one copies it into the page, where its circuitsvis components
    render. The page stays one file and asks for nothing outside it.
    """
    arm = out.arm(None)
    final = out.neurons_at(seed, arm, out.final)
    primed = out.table("primed")
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
        blend = (
            html_table(BLEND_HEADER, [_blend_cells(primed.loc[(layer, index)])])
            if is_primed
            else "<p>Not a primed neuron (it was among the base model's top neurons, or pruned).</p>"
        )
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


def write_report(out_dir: str | Path | RunFolder, *, seed: int = 0, case_studies: int = 3) -> Path:
    """Write ``report.html`` into a finished study's folder (or a removal run's: ``write_removal_report``).

    Args:
        out_dir: The folder ``lens-relearn run`` (or ``run_experiment``) wrote.
        seed: Whose models the neuron views and per-neuron plots show.
        case_studies: How many primed neurons get a view (their stage models are loaded once).

    Returns:
        The report's path (written atomically).

    Raises:
        LensRelearnError: ``out_dir`` holds no finished study.
    """
    if not isinstance(out_dir, RunFolder) and is_removal_run(out_dir):
        return write_removal_report(out_dir)
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
        "blend": "Entropy of the class composition of each surviving neuron's top-activating words, at the base "
        "model and after the last round; primed neurons in red. Above the diagonal: a neuron mixes more classes "
        "than before.",
        "recovery": "Recovery curves: the concept's F1 and the other types' mean F1 on the monitor sentences (a fixed "
        "subset of the validation split) every few training steps after pruning, one line an arm; dots end a round, "
        "the dashed line is the base model, the dotted ones 50% and 90% of it.",
        "regrowth": "Regrowth or relocation: the share of the concept's saliency on the pruned units that grew "
        "back, and the concept's F1 with them masked again, per round (means over seeds).",
    }
    figures = [  # the first plot checks that out_dir holds a finished study
        (plot_f1(out), captions["f1"]),
        *([(plot_recovery(out), captions["recovery"])] if "recovery" in out.summary else []),
        (plot_collateral(out), captions["collateral"]),
        (plot_layer_saliency(out), captions["layers"]),
        (plot_probes(out), captions["probes"]),
        *([(plot_relocation(out), captions["relocation"])] if "relocation" in out.summary else []),
        (plot_saliency_heatmap(out, seed=seed), captions["heatmap"]),
        (plot_similarity(out, seed=seed), captions["similarity"]),
        (plot_redistribution(out), captions["redistribution"]),
        (plot_blend(out, seed=seed), captions["blend"]),
        *([(plot_regrowth(out), captions["regrowth"])] if "regrowth" in out.summary else []),
    ]
    config, summary = out.config, out.summary
    fields = json.loads(config.to_json())
    title = f"Relearning {summary['concept']} in {summary['model']}"
    body = (
        f"<h1>{html.escape(title)}</h1>{_overview(summary, config)}"
        f"<h2>F1 per stage</h2>{_f1_tables(out)}"
        f"<h2>Figures</h2>{''.join(figure_html(figure, caption) for figure, caption in figures)}"
        f"<h2>Primed neurons</h2>{_primed(out, seed, case_studies, config.primed_top)}"
        f"{_recovery(summary, config.stages()[-1]) if 'retraining' in summary else ''}"
        f"{_relocation(summary)}"
        f"{_browser(out, seed)}"
        f"<h2>Config</h2>{html_table(['field', 'value'], [(k, json.dumps(v)) for k, v in fields.items()])}"
    )
    path = out.report_path
    replace_file(path, lambda staging: staging.write_text(html_page(title, body), encoding="utf-8"))
    return path
