"""Seeing relearning: circuitsvis neuron views and matplotlib plots of a finished study.

Views never touch the network. circuitsvis's own ``render`` probes ``google.com`` to choose
between its CDN and local HTML, so it is never called here: the bundle shipped in the
circuitsvis wheel (``dist/cdn/iife.js``) is inlined as one classic ``<script>`` that defines
the global ``CircuitsVis``, and each component is mounted by a few lines that call
``CircuitsVis.render``. An HTML page (``html_page``) carries the bundle once for any number of
views; a ``View`` shown alone in Jupyter (``_repr_html_``) carries its own copy.

Words from the data end up in HTML in two ways, both escaped: as text of this module's own
tags (``html.escape``), and as circuitsvis tokens, which circuitsvis writes with
``innerHTML`` and therefore receive HTML-escaped; every JSON payload inside a ``<script>``
has ``<``, ``>`` and ``&`` written as ``\\u003c``-style escapes, so no ``</script>`` or
``<!--`` can appear in it.

Plots are ``matplotlib.figure.Figure`` objects made without pyplot, so no GUI backend is
involved; they render with Agg when saved, and inline in Jupyter after ``%matplotlib inline``.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import circuitsvis
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lens_relearn.activations import word_activations
from lens_relearn.analysis import SALIENT, interval, spearman
from lens_relearn.data import Sentence, entity_class
from lens_relearn.errors import LensRelearnError
from lens_relearn.experiment import ExperimentConfig, load_stage

ARM_STYLE = {
    "concept": ("concept pruning", "tab:red"),
    "random": ("random pruning (baseline)", "tab:blue"),
    "none": ("no pruning (control)", "tab:gray"),
}
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
       color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9rem; }
"""
VIEW_STYLE = """
.neuron-view { border-top: 2px solid #ddd; margin: 1.5rem 0; padding-top: 0.5rem; }
.neuron-view td { vertical-align: top; }
.neuron-view .examples td { min-width: 12rem; }
.neuron-view .note { color: #555; font-size: 0.85rem; }
.neuron-view .token { display: inline-block; margin: 0 0.3rem 0.2rem 0; padding: 0 0.2rem; background: #f3f3f3; }
.neuron-view .token.concept { background: #ffe0a0; font-weight: 600; }
.neuron-view .token.new { outline: 2px solid #c33; }
"""
# The page needs nothing from outside itself: the browser refuses any request it might try.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src data:")


@functools.cache
def circuitsvis_script() -> str:
    """The circuitsvis bundle from its installed wheel, as one inline ``<script>`` element.

    The bundle defines the global ``CircuitsVis`` (its components and ``render``). Its only
    ``</`` (and any ``<!--``) sequences lie inside JavaScript string literals, where ``<\\/``
    (``<\\!--``) means the same, so writing them that way keeps the element from ending early;
    the source-map comment goes.

    Returns:
        ``<script>...</script>``, about 1.3 MB.
    """
    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    if not path.is_file():
        raise LensRelearnError(f"The circuitsvis bundle {path} is missing; reinstall circuitsvis.")
    source = path.read_text(encoding="utf-8")
    source = "\n".join(line for line in source.splitlines() if not line.startswith("//# sourceMappingURL="))
    return "<script>" + source.replace("</", "<\\/").replace("<!--", "<\\!--") + "</script>"


def _script_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` characters)."""
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _mount(component: str, props: Mapping[str, object]) -> str:
    """A ``<div>`` and the script that renders a circuitsvis component into it."""
    target = f"lens-relearn-{uuid.uuid4().hex[:12]}"
    return (f'<div class="circuitsvis" id="{target}"></div>'
            f'<script>CircuitsVis.render("{target}", CircuitsVis.{component}, {_script_json(props)});</script>')


@dataclass(frozen=True, repr=False)
class View:
    """HTML holding circuitsvis components; shows itself in Jupyter through ``_repr_html_``.

    Attributes:
        title: What the view shows.
        body: The HTML, without the circuitsvis bundle (a page must carry it once).
    """

    title: str
    body: str

    def __repr__(self) -> str:
        return f"View({self.title!r}, {self.body.count('CircuitsVis.render(')} circuitsvis components)"

    def _repr_html_(self) -> str:
        return f"<style>{VIEW_STYLE}</style>{circuitsvis_script()}{self.body}"

    def save(self, path: str | Path) -> Path:
        """Write the view as a self-contained HTML page and return its path."""
        path = Path(path)
        path.write_text(html_page(self.title, self.body), encoding="utf-8")
        return path


def html_page(title: str, body: str) -> str:
    """A complete HTML page around ``body``, with the circuitsvis bundle once and no outside address.

    Args:
        title: The page title (escaped here).
        body: The page's HTML (already escaped), e.g. the ``body`` of several views.

    Returns:
        The page; it loads nothing from outside itself (its content security policy forbids it).
    """
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_POLICY}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_STYLE}{VIEW_STYLE}</style>\n"
        f"{circuitsvis_script()}\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _token_list(words: Sequence[str], concept_words: Collection[str], before: Collection[str]) -> str:
    """Words as escaped spans; the concept's own words and words absent ``before`` are marked."""
    def classes(word: str) -> str:
        return "token" + " concept" * (word in concept_words) + " new" * (word not in before)

    return "".join(f'<span class="{classes(word)}">{html.escape(word)}</span>' for word in words)


def neuron_view(
    neuron: tuple[int, int],
    sentences: Sequence[Sequence[str]],
    activations: Mapping[str, Sequence[Sequence[float]]],
    top_tokens: Mapping[str, Sequence[str]],
    *,
    notes: Sequence[str] | None = None,
    concept_words: Collection[str] = (),
) -> View:
    """One neuron's activations on example sentences at several stages, side by side.

    Each sentence is a row, each stage a column (a circuitsvis ``ColoredTokens``); all cells
    share one colour scale (blue positive, red negative), so growth and fading compare across
    stages. Above, the neuron's top tokens at each stage, the concept's words highlighted and
    words that were not top tokens at the first stage outlined: blending of an old and a new
    concept shows in both.

    Args:
        neuron: ``(layer, index)``.
        sentences: The example sentences, as words.
        activations: For each stage, the neuron's activation on each word of each sentence.
        top_tokens: For each stage, the neuron's top tokens.
        notes: Why each sentence was chosen (one a sentence).
        concept_words: Words to highlight among the top tokens.

    Returns:
        The view.

    Example:
        >>> view = neuron_view((3, 7), [["Rain", "in", "Oslo"]],
        ...                    {"base": [[0.1, 0.0, 2.0]], "round1": [[0.0, 0.1, 1.5]]},
        ...                    {"base": ["Oslo"], "round1": ["Oslo", "Anna"]}, concept_words={"Oslo"})
        >>> view.title, view.body.count("CircuitsVis.render(")
        ('Neuron L3.7', 2)
    """
    stages = list(activations)
    layer, index = neuron
    peak = max((abs(float(v)) for stage in stages for row in activations[stage] for v in row), default=0.0)
    scale = peak or 1.0
    header = "".join(f"<th>{html.escape(stage)}</th>" for stage in stages)
    first = top_tokens.get(stages[0], ())
    tokens = "".join(
        f"<tr><th>{html.escape(stage)}</th>"
        f"<td>{_token_list(top_tokens.get(stage, ()), concept_words, first)}</td></tr>"
        for stage in stages
    )
    rows = []
    for number, words in enumerate(sentences):
        cells = []
        for stage in stages:
            values = [round(float(v), 4) for v in activations[stage][number]]
            props = {"tokens": [html.escape(w) + " " for w in words[: len(values)]], "values": values,
                     "minValue": -scale, "maxValue": scale}
            cells.append(f"<td>{_mount('ColoredTokens', props)}</td>")
        note = html.escape(notes[number]) if notes else str(number + 1)
        rows.append(f'<tr><td class="note">{note}</td>{"".join(cells)}</tr>')
    title = f"Neuron L{layer}.{index}"
    body = (
        f'<section class="neuron-view"><h3>{title}</h3>'
        f'<table class="top-tokens"><tr><th>stage</th><th>top tokens</th></tr>{tokens}</table>'
        f'<p class="note">Top tokens: <span class="token concept">concept word</span> '
        f'<span class="token new">not a top token at {html.escape(stages[0])}</span>. '
        f"Activations on example sentences share one colour scale (|max| = {peak:.3g}); "
        "hover a word for its value.</p>"
        f'<table class="examples"><tr><th>example</th>{header}</tr>{"".join(rows)}</table></section>'
    )
    return View(title, body)


# Reading a finished run ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """What the plots and views need from a run's folder."""

    out: Path
    config: ExperimentConfig

    @property
    def stages(self) -> list[str]:
        return self.config.stages()

    @property
    def final(self) -> str:
        return f"round{self.config.rounds}"

    @property
    def concept(self) -> str:
        return json.loads((self.out / "summary.json").read_text())["concept"]

    def arm(self, arm: str | None) -> str:
        if arm is not None and arm not in self.config.arms:
            raise LensRelearnError(f"{self.out} has no {arm!r} arm; its arms are {', '.join(self.config.arms)}.")
        return self.config.arms[0] if arm is None else arm

    def scores(self, split: str) -> pd.DataFrame:
        performance = self.table("performance.csv")
        rows = performance[performance.split == split]
        if rows.empty:
            raise LensRelearnError(f"{self.out} has no {split!r} scores; splits: {sorted(set(performance.split))}.")
        return rows

    def table(self, name: str) -> pd.DataFrame:
        path = self.out / name
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _run(out_dir: str | Path) -> _Run:
    out = Path(out_dir)
    if not (out / "summary.json").is_file():
        raise LensRelearnError(
            f"{out} holds no finished study (summary.json is missing); "
            f"run `lens-relearn run --out {out}` first."
        )
    return _Run(out, ExperimentConfig.from_json((out / "config.json").read_text()))


def f1_table(out_dir: str | Path, *, split: str = "test") -> pd.DataFrame:
    """Overall and concept F1 at every stage of every arm (mean over seeds).

    Args:
        out_dir: A finished study's folder.
        split: ``validation``, ``test`` or ``novel_test``.

    Returns:
        One row an ``(arm, metric)`` pair, one column a stage.
    """
    run = _run(out_dir)
    means = run.scores(split).groupby(["arm", "stage"])[["f1", "concept_f1"]].mean()
    metrics = {"f1": "F1", "concept_f1": f"{run.concept} F1"}
    records = {(arm, label): [means.loc[(arm, stage), column] for stage in run.stages]
               for arm in run.config.arms for column, label in metrics.items()}
    table = pd.DataFrame.from_dict(records, orient="index", columns=run.stages)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["arm", "metric"])
    return table


def plot_f1(out_dir: str | Path, *, split: str = "test") -> Figure:
    """Overall and concept F1 per stage for every arm run (concept, random, none).

    Args:
        out_dir: A finished study's folder.
        split: Which split's scores.

    Returns:
        Two panels, overall F1 and the concept's F1, one line an arm; bars are 95% intervals
        over seeds when there are several.
    """
    run = _run(out_dir)
    rows = run.scores(split)
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(run.stages))
    for axis, (column, label) in zip(axes, (("f1", "overall entity F1"), ("concept_f1", f"{run.concept} F1"))):
        for arm in run.config.arms:
            name, colour = ARM_STYLE[arm]
            stats = [interval(rows[(rows.arm == arm) & (rows.stage == s)][column].tolist()) for s in run.stages]
            means = np.array([s["mean"] for s in stats])
            errors = np.array([[s["mean"] - s["low"] for s in stats], [s["high"] - s["mean"] for s in stats]])
            errors = errors.clip(min=0)  # the mean is rounded
            axis.errorbar(positions, means, yerr=errors, label=name, color=colour, marker="o", capsize=3)
        axis.set_xticks(positions, run.stages)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("stage")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"F1 on the {split} split")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(run.config.arms))
    figure.suptitle(f"{run.config.model}: F1 after pruning and each retraining round")
    return figure


def plot_layer_saliency(out_dir: str | Path, *, arm: str | None = None) -> Figure:
    """Mean concept saliency of each layer at each stage, with 95% intervals (Lo et al., figs. 2-5).

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first, usually ``concept``).

    Returns:
        One line a stage over the layers, its interval shaded.
    """
    run = _run(out_dir)
    arm = run.arm(arm)
    layers = run.table("layers.csv")
    layers = layers[layers.arm == arm].groupby(["stage", "layer"])[["mean", "low", "high"]].mean()
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    palette = [f"C{i}" for i in range(len(run.stages))]
    for stage, colour in zip(run.stages, palette):
        rows = layers.loc[stage]
        axis.plot(rows.index, rows["mean"], marker="o", color=colour, label=stage)
        axis.fill_between(rows.index, rows["low"], rows["high"], color=colour, alpha=0.15)
    axis.set_xlabel("layer")
    axis.set_ylabel("mean normalised saliency (0 to 1)")
    axis.set_xticks(sorted(layers.index.get_level_values("layer").unique()))
    axis.set_title(f"{run.config.model}: mean {run.concept} saliency per layer ({arm} arm)")
    figure.legend(title="stage", loc="outside right upper")
    axis.grid(alpha=0.3)
    return figure


def _stage_neurons(run: _Run, arm: str, seed: int, stage: str) -> pd.DataFrame:
    neurons = run.table("neurons.parquet")
    rows = neurons[(neurons.arm == arm) & (neurons.seed == seed) & (neurons.stage == stage)]
    if rows.empty:
        raise LensRelearnError(f"{run.out} has no neurons for seed {seed}, arm {arm!r}, stage {stage!r}.")
    return rows.sort_values(["layer", "index"])


def plot_saliency_heatmap(
    out_dir: str | Path, *, stages: Sequence[str] | None = None, arm: str | None = None, seed: int = 0
) -> Figure:
    """Saliency of every neuron, layer by neuron, at some stages (pruned neurons grey).

    Within each layer the neurons are ordered by their base saliency, the same order in every
    panel, so the panels show where saliency leaves and where it comes back.

    Args:
        out_dir: A finished study's folder.
        stages: Which stages (default: base and the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed.

    Returns:
        One panel a stage.
    """
    run = _run(out_dir)
    arm = run.arm(arm)
    stages = list(stages or ("base", run.final))
    base = _stage_neurons(run, arm, seed, "base")
    n_layers, units = base.layer.max() + 1, base["index"].max() + 1
    order = np.argsort(-base.saliency.to_numpy().reshape(n_layers, units), axis=1, kind="stable")
    figure = Figure(figsize=(10, 0.8 + len(stages) * (0.6 + 0.25 * n_layers)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(stages), 1, sharex=True))
    for axis, stage in zip(axes, stages):
        rows = _stage_neurons(run, arm, seed, stage)
        saliency = np.where(rows.pruned, np.nan, rows.saliency).reshape(n_layers, units)
        image = axis.imshow(np.take_along_axis(saliency, order, axis=1), aspect="auto", interpolation="nearest",
                            cmap=colormaps["viridis"].with_extremes(bad="lightgrey"), vmin=0, vmax=1)
        axis.set_ylabel("layer")
        axis.set_yticks(range(n_layers))
        pruned = int(rows.pruned.sum())
        axis.set_title(f"{stage} ({pruned} pruned neurons in grey)" if pruned else stage)
    axes[-1].set_xlabel("neurons of each layer, ordered by base saliency")
    figure.colorbar(image, ax=list(axes), label="normalised saliency")
    figure.suptitle(f"{run.config.model}: {run.concept} saliency per neuron ({arm} arm, seed {seed})")
    return figure


def plot_similarity(
    out_dir: str | Path, *, stage: str | None = None, arm: str | None = None, seed: int = 0
) -> Figure:
    """Each surviving neuron's top-token similarity to the base model against its saliency.

    Args:
        out_dir: A finished study's folder.
        stage: Which stage (default: the last round).
        arm: Which arm (default: the study's first).
        seed: Which seed.

    Returns:
        A scatter coloured by layer; primed neurons (``primed.csv``) ringed in black.
    """
    run = _run(out_dir)
    arm, stage = run.arm(arm), stage or run.final
    rows = _stage_neurons(run, arm, seed, stage)
    alive = rows[~rows.pruned]
    figure = Figure(figsize=(8, 5), layout="constrained")
    axis = figure.subplots()
    points = axis.scatter(alive.saliency, alive.similarity_to_base, c=alive.layer, cmap="viridis", s=8, alpha=0.5,
                          vmin=0, vmax=rows.layer.max())
    primed = run.table("primed.csv")
    primed = primed[primed.seed == seed][["layer", "index"]].merge(alive, on=["layer", "index"])
    if arm == run.arm(None) and stage == run.final and not primed.empty:
        axis.scatter(primed.saliency, primed.similarity_to_base, facecolors="none", edgecolors="black", s=40,
                     label=f"primed neurons ({len(primed)})")
        axis.legend(loc="lower left")
    rho = spearman(alive.saliency.tolist(), alive.similarity_to_base.tolist())
    figure.colorbar(points, ax=axis, label="layer")
    axis.set_xlabel(f"normalised {run.concept} saliency at {stage}")
    axis.set_ylabel("cosine similarity of top tokens to the base model's")
    axis.set_title(f"{run.config.model}: similarity vs saliency ({arm} arm, {stage}; Spearman ρ = {rho:.2f})")
    axis.grid(alpha=0.3)
    return figure


def plot_redistribution(out_dir: str | Path, *, arm: str | None = None) -> Figure:
    """Share of each layer's surviving neurons that are salient, at the base and the last round.

    Args:
        out_dir: A finished study's folder.
        arm: Which arm (default: the study's first).

    Returns:
        Grouped bars, two a layer.
    """
    run = _run(out_dir)
    arm = run.arm(arm)
    layers = run.table("layers.csv")
    shares = layers[layers.arm == arm].groupby(["stage", "layer"]).salient_share.mean()
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axis = figure.subplots()
    width = 0.4
    for offset, stage, colour in ((-width / 2, "base", "tab:gray"), (width / 2, run.final, "tab:red")):
        values = shares.loc[stage]
        axis.bar(values.index + offset, values.to_numpy(), width=width, color=colour, label=stage)
    axis.set_xticks(sorted(shares.loc["base"].index))
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_xlabel("layer")
    axis.set_ylabel(f"surviving neurons with saliency > {SALIENT}")
    axis.set_title(f"{run.config.model}: where salient {run.concept} neurons are ({arm} arm)")
    axis.legend(title="stage")
    axis.grid(alpha=0.3, axis="y")
    return figure


# Neuron views of a run ----------------------------------------------------------------------


def _examples(corpus: Sequence[Sentence], first: tuple[str, Sequence[str]], last: tuple[str, Sequence[str]],
              count: int) -> list[tuple[int, str]]:
    """Up to ``count`` sentences holding a neuron's top tokens, those of one stage only first.

    Words that are top tokens at only the first or only the last stage are taken in turn, then
    words of both, so sentences for the old and the new meaning both show.
    """
    (start, old), (end, new) = first, last
    only_old = [(w, f"at {start}, not {end}") for w in old if w not in new]
    only_new = [(w, f"at {end}, not {start}") for w in new if w not in old]
    pairs = [pair for both in itertools.zip_longest(only_old, only_new) for pair in both if pair]
    pairs += [(w, f"at {start} and {end}") for w in old if w in new]
    chosen: list[tuple[int, str]] = []
    for word, when in pairs:
        used = {i for i, _ in chosen}
        found = next((i for i, s in enumerate(corpus) if word in s.words and i not in used), None)
        if found is not None:
            chosen.append((found, f"has “{word}”, a top token {when}"))
        if len(chosen) == count:
            break
    return chosen


def neuron_views(
    out_dir: str | Path,
    neurons: Sequence[tuple[int, int]],
    *,
    seed: int = 0,
    arm: str | None = None,
    stages: Sequence[str] | None = None,
    n_sentences: int = 4,
) -> list[View]:
    """Views of some neurons of a finished study, at the base model and after each round.

    Example sentences come from the concept corpus (the validation split): sentences holding
    the neuron's top tokens at the first and the last stage shown, taken in turn. Each stage's
    model is loaded once (``load_stage``, pruning applied) for all the neurons.

    Args:
        out_dir: A finished study's folder.
        neurons: ``(layer, index)`` pairs.
        seed: Which seed's models.
        arm: Which arm (default: the study's first).
        stages: Which stages (default: ``base`` and every round).
        n_sentences: Example sentences a neuron.

    Returns:
        One view a neuron, in order.

    Raises:
        LensRelearnError: An arm, stage, seed or neuron the study does not have.
    """
    run = _run(out_dir)
    arm = run.arm(arm)
    stages = list(stages or ["base"] + run.stages[2:])
    if unknown := [stage for stage in stages if stage not in run.stages]:
        raise LensRelearnError(f"Unknown stages {unknown}; {run.out} has {', '.join(run.stages)}.")
    neurons = [(int(layer), int(index)) for layer, index in neurons]
    table = run.table("neurons.parquet")
    table = table[(table.arm == arm) & (table.seed == seed)]
    top_tokens = table.set_index(["stage", "layer", "index"]).sort_index().top_tokens
    if missing := [n for n in neurons if (stages[0], *n) not in top_tokens.index]:
        raise LensRelearnError(f"{run.out} has no neurons {missing} for seed {seed} (layers "
                               f"0..{table.layer.max()}, indices 0..{table['index'].max()}).")
    corpus = run.config.load_data().validation
    concept_words = {w for s in corpus for w, t in zip(s.words, s.tags) if entity_class(t) == run.concept}
    tops = [{stage: top_tokens.loc[(stage, *neuron)].split() for stage in stages} for neuron in neurons]
    examples = [_examples(corpus, (stages[0], top[stages[0]]), (stages[-1], top[stages[-1]]), n_sentences)
                for top in tops]
    used = sorted({i for chosen in examples for i, _ in chosen})
    row_of = {sentence: row for row, sentence in enumerate(used)}
    values = {}
    for stage in stages if used else ():
        tagger = load_stage(run.out, stage, seed=seed, arm=arm)
        values[stage] = word_activations(tagger.model, [corpus[i] for i in used], neurons,
                                         site=run.config.site, aggregation=run.config.aggregation)
        del tagger
    views = []
    for column, (neuron, top, chosen) in enumerate(zip(neurons, tops, examples)):
        activations = {stage: [values[stage][row_of[i]][:, column].tolist() for i, _ in chosen] for stage in stages}
        views.append(neuron_view(neuron, [corpus[i].words for i, _ in chosen], activations, top,
                                 notes=[note for _, note in chosen], concept_words=concept_words))
    return views
