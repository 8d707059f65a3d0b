"""Neuron views: one neuron's activations and top tokens at the base model and after each round."""

from __future__ import annotations

import html
import itertools
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from lens_relearn.data.sentences import Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.activations import word_activations
from lens_relearn.study.run_folder import RunFolder, finished_run
from lens_relearn.study.runner import load_stage
from lens_relearn.views.page import View, _mount


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
        f'<p class="note">Top tokens: <span class="token concept">concept word</span> '
        f'<span class="token new">not a top token at {html.escape(stages[0])}</span>. '
        f"Activations on example sentences share one colour scale (|max| = {peak:.3g}); "
        "hover a word for its value.</p>"
        f'<table class="examples"><tr><th>example</th>{header}</tr>{"".join(rows)}</table></section>'
    )
    return View(title, body)


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
    out_dir: str | Path | RunFolder,
    neurons: Sequence[tuple[int, int]],
    *,
    seed: int = 0,
    arm: str | None = None,
    stages: Sequence[str] | None = None,
    n_sentences: int = 4,
) -> list[View]:
    """Views of some neurons of a finished study, at the base model and after each round.

    Example sentences come from the concept corpus (``ExperimentConfig.concept_corpus``): sentences holding
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
    run = finished_run(out_dir)
    arm = run.arm(arm)
    stages = list(stages or ["base", *run.stages[2:]])
    if unknown := [stage for stage in stages if stage not in run.stages]:
        raise LensRelearnError(f"Unknown stages {unknown}; {run.path} has {', '.join(run.stages)}.")
    neurons = [(int(layer), int(index)) for layer, index in neurons]
    table = run.table("neurons")
    table = table[(table.arm == arm) & (table.seed == seed)]
    top_tokens = table.set_index(["stage", "layer", "index"]).sort_index().top_tokens
    if missing := [n for n in neurons if (stages[0], *n) not in top_tokens.index]:
        raise LensRelearnError(
            f"{run.path} has no neurons {missing} for seed {seed} (layers "
            f"0..{table.layer.max()}, indices 0..{table['index'].max()})."
        )
    corpus, concept = run.config.load_concept_corpus()
    concept_words = set(concept.words(corpus))
    tops = [{stage: top_tokens.loc[(stage, *neuron)].split() for stage in stages} for neuron in neurons]
    examples = [
        _examples(corpus, (stages[0], top[stages[0]]), (stages[-1], top[stages[-1]]), n_sentences) for top in tops
    ]
    used = sorted({i for chosen in examples for i, _ in chosen})
    row_of = {sentence: row for row, sentence in enumerate(used)}
    values = {}
    for stage in stages if used else ():
        tagger = load_stage(run.path, stage, seed=seed, arm=arm)
        values[stage] = word_activations(
            tagger.model, [corpus[i] for i in used], neurons, site=run.config.site, aggregation=run.config.aggregation
        )
        del tagger
    views = []
    for column, (neuron, top, chosen) in enumerate(zip(neurons, tops, examples, strict=True)):
        activations = {stage: [values[stage][row_of[i]][:, column].tolist() for i, _ in chosen] for stage in stages}
        views.append(
            neuron_view(
                neuron,
                [corpus[i].words for i, _ in chosen],
                activations,
                top,
                notes=[note for _, note in chosen],
                concept_words=concept_words,
            )
        )
    return views
