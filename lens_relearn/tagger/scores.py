"""Entity-level precision, recall and F1 (conlleval / seqeval semantics) and scoring a tagger."""

from __future__ import annotations

from collections.abc import Sequence

from lens_relearn.data.alignment import INFERENCE_BATCH
from lens_relearn.data.sentences import Sentence, entity_spans
from lens_relearn.errors import LensRelearnError
from lens_relearn.tagger.model import Tagger


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 on IOB2 tags, as conlleval and seqeval count them.

    An entity is right only if its type and both ends are right. ``I-X`` after ``O`` or after
    another type opens a new entity.

    Args:
        gold: The true tags, one list a sentence.
        pred: The predicted tags, aligned with ``gold``.

    Returns:
        ``precision``, ``recall``, ``f1``, ``support`` (true entities), ``predicted``
        (predicted entities) and ``correct`` (found with both ends and type) over all entities,
        and ``per_type``: the same for each type.

    Example:
        >>> gold = [["O", "B-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
        >>> pred = [["B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
        >>> scores = entity_scores(gold, pred)
        >>> scores["f1"], scores["per_type"]["PER"]["f1"], scores["per_type"]["MISC"]["recall"]
        (0.5, 1.0, 0.0)
    """
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred, strict=True)):
        raise LensRelearnError("Gold and predicted tags must have the same sentences and lengths.")
    true_spans, pred_spans = set(), set()
    for index, (g, p) in enumerate(zip(gold, pred, strict=True)):
        true_spans |= {(index, *span) for span in entity_spans(g)}
        pred_spans |= {(index, *span) for span in entity_spans(p)}
    types = sorted({span[1] for span in true_spans | pred_spans})

    overall = _spans_scores(true_spans, pred_spans)
    overall["per_type"] = {
        kind: _spans_scores({s for s in true_spans if s[1] == kind}, {s for s in pred_spans if s[1] == kind})
        for kind in types
    }
    return overall


def _spans_scores(true: set, predicted: set) -> dict:
    return _scores(len(true), len(predicted), len(true & predicted))


def _scores(support: int, predicted: int, hits: int) -> dict:
    """Precision, recall and F1 of ``predicted`` entities of which ``hits`` are among ``support`` true ones."""
    precision = hits / predicted if predicted else 0.0
    recall = hits / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
        "correct": hits,
    }


def concept_scores(scores: dict, members: Sequence[str]) -> dict:
    """Precision, recall and F1 of the entities of some types taken together (micro-averaged).

    An entity of the concept counts as right only with its own type: for ``GPE,LOC``, a
    ``GPE`` tagged ``LOC`` is wrong, as it is for the tagger.

    Args:
        scores: ``entity_scores`` (or ``evaluate_tagger``) output.
        members: The concept's entity types.

    Example:
        >>> gold = [["B-GPE", "O", "B-LOC", "B-ORG"]]
        >>> pred = [["B-GPE", "O", "B-GPE", "B-ORG"]]
        >>> concept_scores(entity_scores(gold, pred), ["GPE", "LOC"])
        {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2, 'predicted': 2, 'correct': 1}
    """
    found = [scores["per_type"][member] for member in members if member in scores["per_type"]]
    support, predicted, hits = (sum(s[key] for s in found) for key in ("support", "predicted", "correct"))
    return _scores(support, predicted, hits)


def evaluate_tagger(tagger: Tagger, sentences: Sequence[Sentence], *, batch_size: int = INFERENCE_BATCH) -> dict:
    """Score a tagger on labelled sentences.

    Returns:
        ``entity_scores`` of its predictions plus ``token_accuracy`` (share of words tagged
        right) and ``sentences``.
    """
    if not sentences:
        raise LensRelearnError("No sentences to evaluate on.")
    return score_predictions(sentences, tagger.predict(sentences, batch_size=batch_size))


def score_predictions(sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> dict:
    """``evaluate_tagger``'s scores of predicted tags against the sentences' own.

    Example:
        >>> scores = score_predictions([Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])], [["O", "O", "O"]])
        >>> scores["f1"], round(scores["token_accuracy"], 3), scores["sentences"]
        (0.0, 0.667, 1)
    """
    gold = [s.tags for s in sentences]
    scores = entity_scores(gold, predicted)
    words = sum(len(g) for g in gold)
    scores["token_accuracy"] = (
        sum(a == b for g, p in zip(gold, predicted, strict=True) for a, b in zip(g, p, strict=True)) / words
    )
    scores["sentences"] = len(sentences)
    return scores


def concept_scores_by_form(
    sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]], members: Sequence[str], known: Sequence[Sentence]
) -> dict[str, dict]:
    """``concept_scores`` apart for the entities whose surface form occurs in ``known`` sentences and the others.

    An entity's form is its words; it is ``seen`` if those words occur in a row in a sentence of
    ``known`` (whatever their tags there), ``unseen`` otherwise. A gold entity and a predicted one
    each count where their own form falls, so a right prediction counts in the part of its gold
    entity.

    Example:
        >>> known = [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])]
        >>> test = [Sentence(["Oslo", "and", "Lima"], ["B-LOC", "O", "B-LOC"])]
        >>> parts = concept_scores_by_form(test, [["B-LOC", "O", "O"]], ["LOC"], known)
        >>> parts["seen"]["f1"], parts["unseen"]["recall"], parts["unseen"]["support"]
        (1.0, 0.0, 1)
    """
    names = [  # (side, span, form) of every name of the concept, gold and predicted
        (side, (index, kind, start, end), tuple(sentence.words[start:end]))
        for index, (sentence, tags) in enumerate(zip(sentences, predicted, strict=True))
        for side, side_tags in (("gold", sentence.tags), ("predicted", tags))
        for kind, start, end in entity_spans(side_tags)
        if kind in members
    ]
    lengths = {len(form) for _, _, form in names}
    runs = {tuple(s.words[i : i + n]) for s in known for n in lengths for i in range(len(s.words) - n + 1)}
    parts: dict[str, dict[str, set]] = {part: {"gold": set(), "predicted": set()} for part in ("seen", "unseen")}
    for side, span, form in names:
        parts["seen" if form in runs else "unseen"][side].add(span)
    return {part: _spans_scores(spans["gold"], spans["predicted"]) for part, spans in parts.items()}
