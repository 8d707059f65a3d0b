"""Neuron views: one neuron's activations and top tokens at the base model and after each round."""

from __future__ import annotations

import functools
import html
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from lens_relearn.data.sentences import Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.activations import composition_entropy, word_activations
from lens_relearn.neurons.ranking import OUTSIDE
from lens_relearn.study.inputs import load_concept_corpus
from lens_relearn.study.runner import load_stage
from lens_relearn.study.tables import SHARE
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.page import View, _mount

CONCEPT_CLASS_COLOUR = "#ff7f0e"
OUTSIDE_COLOUR = "#c7c7c7"
OTHER_CLASS_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _token_list(words: Sequence[str], concept_words: Collection[str], before: Collection[str]) -> str:
    """Words as escaped spans; the concept's own words and words absent ``before`` are marked."""

    def classes(word: str) -> str:
        return "token" + " concept" * (word in concept_words) + " new" * (word not in before)

    return "".join(f'<span class="{classes(word)}">{html.escape(word)}</span>' for word in words)


def class_colours(classes: Sequence[str], concept: Collection[str]) -> dict[str, str]:
    """A colour a class for composition bars: the concept's classes orange, ``O``/``N/A`` grey, the rest in turn.

    Example:
        >>> class_colours(["O", "PER", "LOC"], {"LOC"})
        {'O': '#c7c7c7', 'PER': '#1f77b4', 'LOC': '#ff7f0e'}
    """
    others = itertools.cycle(OTHER_CLASS_COLOURS)
    return {
        kind: CONCEPT_CLASS_COLOUR if kind in concept else OUTSIDE_COLOUR if kind in OUTSIDE else next(others)
        for kind in classes
    }


def composition_bar(shares: Mapping[str, float], colours: Mapping[str, str]) -> str:
    """A stacked bar of class shares (one segment a class, widths in percent), with their values on hover.

    Example:
        >>> composition_bar({"O": 0.25, "LOC": 0.75, "PER": 0.0}, {"O": "#ccc", "LOC": "#f80", "PER": "#00f"})[:63]
        '<div class="composition"><span class="share" data-class="O" sty'
    """
    segments = "".join(
        f'<span class="share" data-class="{html.escape(kind)}" style="width:{100 * share:.2f}%;'
        f'background:{colours[kind]}" title="{html.escape(kind)}: {share:.0%}"></span>'
        for kind, share in shares.items()
        if share > 0
    )
    return f'<div class="composition">{segments}</div>'


def _composition_rows(composition: Mapping[str, Mapping[str, float]], concept: Collection[str]) -> str:
    """The composition table of a view: a bar and the entropy a stage, and a legend."""
    classes = list(dict.fromkeys(kind for shares in composition.values() for kind in shares))
    colours = class_colours(classes, concept)
    rows = "".join(
        f"<tr><th>{html.escape(stage)}</th><td>{composition_bar(shares, colours)}</td>"
        f'<td class="number">{float(composition_entropy(torch.tensor(list(shares.values())))):.2f}</td></tr>'
        for stage, shares in composition.items()
    )
    legend = " ".join(
        f'<span class="swatch" style="background:{colour}"></span>{html.escape(kind)}'
        for kind, colour in colours.items()
    )
    return (
        '<table class="composition-table"><tr><th>stage</th><th>classes of its top-activating words</th>'
        f'<th>entropy (bits)</th></tr>{rows}</table><p class="note">{legend}</p>'
    )


def neuron_view(
    neuron: tuple[int, int],
    sentences: Sequence[Sequence[str]],
    activations: Mapping[str, Sequence[Sequence[float]]],
    top_tokens: Mapping[str, Sequence[str]],
    *,
    notes: Sequence[str] | None = None,
    concept_words: Collection[str] = (),
    composition: Mapping[str, Mapping[str, float]] | None = None,
    concept_classes: Collection[str] = (),
) -> View:
    """One neuron's activations on example sentences at several stages, side by side.

    Each sentence is a row, each stage a column (a circuitsvis ``ColoredTokens``); all cells
    share one colour scale (blue positive, red negative), so growth and fading compare across
    stages. Above, the neuron's top tokens at each stage, the concept's words highlighted and
    words that were not top tokens at the first stage outlined, and the class composition of
    its top-activating words as a stacked bar a stage: blending of an old and a new concept
    shows in all three.

    Args:
        neuron: ``(layer, index)``.
        sentences: The example sentences, as words.
        activations: For each stage, the neuron's activation on each word of each sentence.
        top_tokens: For each stage, the neuron's top tokens.
        notes: Why each sentence was chosen (one a sentence).
        concept_words: Words to highlight among the top tokens.
        composition: For each stage, the share of each class among the neuron's top-activating
            words (none: no bars).
        concept_classes: The concept's classes, coloured apart in the bars.

    Returns:
        The view.

    Example:
        >>> view = neuron_view((3, 7), [["Rain", "in", "Oslo"]],
        ...                    {"base": [[0.1, 0.0, 2.0]], "round1": [[0.0, 0.1, 1.5]]},
        ...                    {"base": ["Oslo"], "round1": ["Oslo", "Anna"]}, concept_words={"Oslo"},
        ...                    composition={"base": {"O": 0.5, "LOC": 0.5}, "round1": {"O": 0.2, "LOC": 0.8}})
        >>> view.title, view.body.count("CircuitsVis.render("), view.body.count('class="composition"')
        ('Neuron L3.7', 2, 2)
    """
    stages = list(activations)
    layer, index = neuron
    peak = max((abs(float(v)) for stage in stages for row in activations[stage] for v in row), default=0.0)
    scale = peak or 1.0
    header = "".join(f"<th>{html.escape(stage)}</th>" for stage in stages)
    first = top_tokens.get(stages[0], ())
    tokens = "".join(
        f"<tr><th>{html.escape(stage)}</th><td>{_token_list(top_tokens.get(stage, ()), concept_words, first)}</td></tr>"
        for stage in stages
    )
    rows = []
    for number, words in enumerate(sentences):
        cells = []
        for stage in stages:
            values = [round(float(v), 4) for v in activations[stage][number]]
            props = {
                "tokens": [html.escape(w) + " " for w in words[: len(values)]],
                "values": values,
                "minValue": -scale,
                "maxValue": scale,
            }
            cells.append(f"<td>{_mount('ColoredTokens', props)}</td>")
        note = html.escape(notes[number]) if notes else str(number + 1)
        rows.append(f'<tr><td class="note">{note}</td>{"".join(cells)}</tr>')
    title = f"Neuron L{layer}.{index}"
    body = (
        f'<section class="neuron-view"><h3>{title}</h3>'
        f'<table class="top-tokens"><tr><th>stage</th><th>top tokens</th></tr>{tokens}</table>'
        f"{_composition_rows(composition, concept_classes) if composition else ''}"
        f'<p class="note">Top tokens: <span class="token concept">concept word</span> '
        f'<span class="token new">not a top token at {html.escape(stages[0])}</span>. '
        f"Activations on example sentences share one colour scale (|max| = {peak:.3g}); "
        "hover a word for its value.</p>"
        f'<table class="examples"><tr><th>example</th>{header}</tr>{"".join(rows)}</table></section>'
    )
    return View(title, body)


TRAJECTORY_COLUMNS = (
    "stage",
    "position",
    "saliency",
    "pruned",
    "concept_similarity",
    "similarity_to_base",
    "entropy",
    "top_tokens",
)


def neuron_trajectory(rows: pd.DataFrame, stages: Sequence[str]) -> pd.DataFrame:
    """One neuron's rows of a study's neuron table (one a stage), in stage order, with the columns a reader follows.

    ``entropy`` (of its class composition) is left out for studies that did not record it.

    Example:
        >>> rows = pd.DataFrame({"stage": ["round1", "base"], "position": [0, 9], "saliency": [1.0, 0.9],
        ...     "pruned": [False, False], "concept_similarity": [0.5, 0.1], "similarity_to_base": [0.2, 1.0],
        ...     "top_tokens": ["Oslo", "Ada"], "score": [2.0, 1.0]})
        >>> neuron_trajectory(rows, ["base", "pruned", "round1"]).stage.tolist()
        ['base', 'round1']
    """
    order = {stage: i for i, stage in enumerate(stages)}
    columns = [c for c in TRAJECTORY_COLUMNS if c in rows.columns]
    return rows.sort_values("stage", key=lambda s: s.map(order))[columns].reset_index(drop=True)


def _examples(
    corpus: Sequence[Sentence], first: tuple[str, Sequence[str]], last: tuple[str, Sequence[str]], count: int
) -> list[tuple[int, str]]:
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
    out_dir: str | Path | FinishedStudy,
    neurons: Sequence[tuple[int, int]],
    *,
    seed: int | None = None,
    arm: str | None = None,
    stages: Sequence[str] | None = None,
    n_sentences: int = 4,
) -> list[View]:
    """Views of some neurons of a finished study, at the base model and after each round.

    Example sentences come from the concept corpus (``ExperimentConfig.concept_corpus``): sentences holding
    the neuron's top tokens at the first and the last stage shown, taken in turn. Each stage's
    model is loaded once (``load_stage``, pruning applied) for all the neurons; the base model serves the corpus too.
    A ``FinishedStudy`` keeps what its views were made of (``FinishedStudy.view_makers``): asked again, a view
    reads no model again (and gets page ids of its own, so that one page can show it twice).

    Args:
        out_dir: A finished study's folder.
        neurons: ``(layer, index)`` pairs.
        seed: Which seed's models (default: the study's first).
        arm: Which arm (default: the study's first).
        stages: Which stages (default: ``base`` and every round).
        n_sentences: Example sentences a neuron.

    Returns:
        One view a neuron, in order.

    Raises:
        LensRelearnError: An arm, stage, seed or neuron the study does not have.
    """
    run = finished(out_dir)
    arm, seed = run.arm(arm), run.seed(seed)
    stages = list(stages or ["base", *run.stages[2:]])
    if unknown := [stage for stage in stages if stage not in run.stages]:
        raise LensRelearnError(f"Unknown stages {unknown}; {run.path} has {', '.join(run.stages)}.")
    neurons = [(int(layer), int(index)) for layer, index in neurons]
    key = (seed, arm, tuple(stages), n_sentences)
    if missing := [n for n in dict.fromkeys(neurons) if (*key, n) not in run.view_makers]:
        made = _view_makers(run, missing, seed=seed, arm=arm, stages=stages, n_sentences=n_sentences)
        run.view_makers.update({(*key, neuron): maker for neuron, maker in zip(missing, made, strict=True)})
    return [run.view_makers[(*key, neuron)]() for neuron in neurons]


def _view_makers(
    run: FinishedStudy, neurons: list[tuple[int, int]], *, seed: int, arm: str, stages: list[str], n_sentences: int
) -> Sequence[Callable[[], View]]:
    """What makes each neuron's view (its sentences and activations, read with each stage's model loaded once)."""
    table = run.table("neurons")
    table = table[(table.arm == arm) & (table.seed == seed)]
    indexed = table.set_index(["stage", "layer", "index"]).sort_index()
    top_tokens = indexed.top_tokens
    shares = indexed[[c for c in table.columns if c.startswith(SHARE)]].rename(columns=lambda c: c[len(SHARE) :])
    if missing := [n for n in neurons if (stages[0], *n) not in top_tokens.index]:
        raise LensRelearnError(
            f"{run.path} has no neurons {missing} for seed {seed} (layers "
            f"0..{table.layer.max()}, indices 0..{table['index'].max()})."
        )
    base = load_stage(run.path, "base", seed=seed)
    corpus, concept = load_concept_corpus(run.config, base.model)
    compositions = [
        {stage: shares.loc[(stage, *neuron)].to_dict() for stage in stages} if len(shares.columns) else None
        for neuron in neurons
    ]
    concept_words = set(concept.words(corpus))
    tops = [{stage: top_tokens.loc[(stage, *neuron)].split() for stage in stages} for neuron in neurons]
    examples = [
        _examples(corpus, (stages[0], top[stages[0]]), (stages[-1], top[stages[-1]]), n_sentences) for top in tops
    ]
    used = sorted({i for chosen in examples for i, _ in chosen})
    row_of = {sentence: row for row, sentence in enumerate(used)}
    values = {}
    for stage in stages if used else ():
        tagger = base if stage == "base" else load_stage(run.path, stage, seed=seed, arm=arm)
        values[stage] = word_activations(
            tagger.model, [corpus[i] for i in used], neurons, site=run.config.site, aggregation=run.config.aggregation
        )
        del tagger
    del base
    makers = []
    for column, (neuron, top, chosen, composition) in enumerate(
        zip(neurons, tops, examples, compositions, strict=True)
    ):
        activations = {stage: [values[stage][row_of[i]][:, column].tolist() for i, _ in chosen] for stage in stages}
        makers.append(
            functools.partial(
                neuron_view,
                neuron,
                [corpus[i].words for i, _ in chosen],
                activations,
                top,
                notes=[note for _, note in chosen],
                concept_words=concept_words,
                composition=composition,
                concept_classes=concept.members,
            )
        )
    return makers
