"""Token-level NER sentences in IOB2, the NER data splits, and concepts (an entity type or a label)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from lens_relearn.errors import LensRelearnError

CONLL_TAGS: tuple[str, ...] = (
    "O",
    "B-PER",
    "I-PER",
    "B-ORG",
    "I-ORG",
    "B-LOC",
    "I-LOC",
    "B-MISC",
    "I-MISC",
)


ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "MISC")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its words and one tag a word.

    Example:
        >>> Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"]).entities()
        [('LOC', 2, 3)]
    """

    words: list[str]
    tags: list[str]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise LensRelearnError(f"A sentence has {len(self.words)} words but {len(self.tags)} tags: {self.words!r}")

    def __len__(self) -> int:
        return len(self.words)

    def entities(self) -> list[tuple[str, int, int]]:
        """The IOB2 entity spans as ``(type, start, end)``, end exclusive."""
        return entity_spans(self.tags)


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entity spans of IOB2 tags as ``(type, start, end)``, end exclusive.

    ``I-X`` after ``O`` or after another type opens a new entity, as in conlleval.

    Example:
        >>> entity_spans(["B-LOC", "I-LOC", "O", "I-PER", "I-ORG"])
        [('LOC', 0, 2), ('PER', 3, 4), ('ORG', 4, 5)]
    """
    spans: list[tuple[str, int, int]] = []
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and spans and spans[-1][2] == index and spans[-1][0] == kind:
            spans[-1] = (kind, spans[-1][1], index + 1)
        elif prefix in ("B", "I"):
            spans.append((kind, index, index + 1))
    return spans


@dataclass(frozen=True)
class NerData:
    """A labelled corpus split three ways.

    Attributes:
        train, validation, test: The splits.
        labels: Every tag the corpus may use, in a fixed order (``CONLL_TAGS`` for NER).
        source: Where it came from (``"synthetic"``, a path, ``"conll2003"``, ``"hf:ID"``).
        novel_test: Test sentences whose location names are invented (synthetic only).
    """

    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence]
    labels: tuple[str, ...] = CONLL_TAGS
    source: str = ""
    novel_test: list[Sentence] = field(default_factory=list)

    def splits(self) -> dict[str, list[Sentence]]:
        """The non-empty splits by name."""
        named = {"train": self.train, "validation": self.validation, "test": self.test, "novel_test": self.novel_test}
        return {name: split for name, split in named.items() if split}


def entity_class(tag: str) -> str:
    """The class a tag belongs to: its entity type for IOB tags, else the tag itself.

    Example:
        >>> [entity_class(tag) for tag in ("B-LOC", "I-LOC", "O", "N/A")]
        ['LOC', 'LOC', 'O', 'N/A']
    """
    return tag[2:] if tag[:2] in ("B-", "I-") else tag


def to_iob2(tags: list[str]) -> list[str]:
    """Convert IOB1 tags (I- opens an entity, B- only splits two adjacent ones) to IOB2.

    Example:
        >>> to_iob2(["I-LOC", "I-LOC", "O", "I-PER", "B-PER"])
        ['B-LOC', 'I-LOC', 'O', 'B-PER', 'B-PER']
    """
    converted = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and (index == 0 or entity_class(tags[index - 1]) != tag[2:]):
            converted.append("B-" + tag[2:])
        else:
            converted.append(tag)
    return converted


@dataclass(frozen=True)
class Concept:
    """A concept to remove: the classes of tags it covers, and the contrast classes beside it.

    A concept is one class (``LOC``) or several taken together (``GPE,LOC``: OntoNotes splits
    places into geopolitical entities and other locations).

    Attributes:
        name: The concept as named (``"LOC"``, ``"GPE,LOC"``; any label for token/label files).
        members: The classes that form it (``("GPE", "LOC")``).
        tags: The tags that are the concept (``("B-GPE", "I-GPE", "B-LOC", "I-LOC")``).
        classes: Every class of the data, the concept's included, in label order.

    Example:
        >>> loc = find_concept("LOC", CONLL_TAGS)
        >>> loc.tags, loc.contrast
        (('B-LOC', 'I-LOC'), ('O', 'PER', 'ORG', 'MISC'))
        >>> find_concept("LOC,ORG", CONLL_TAGS).contrast
        ('O', 'PER', 'MISC')
    """

    name: str
    members: tuple[str, ...]
    tags: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def contrast(self) -> tuple[str, ...]:
        """The classes that are not the concept."""
        return tuple(c for c in self.classes if c not in self.members)

    def covers(self, tag: str) -> bool:
        """Whether a tag (``B-LOC``) or class (``LOC``) belongs to the concept."""
        return entity_class(tag) in self.members

    def words(self, sentences: Sequence[Sentence]) -> list[str]:
        """The distinct words the concept tags in some sentences, sorted.

        Example:
            >>> find_concept("LOC", CONLL_TAGS).words([Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])])
            ['Oslo']
        """
        return sorted({w for s in sentences for w, t in zip(s.words, s.tags, strict=True) if self.covers(t)})


def labels_of(sentences: list[Sentence]) -> tuple[str, ...]:
    """The tags used in some sentences, in ``CONLL_TAGS`` order where they are CoNLL tags.

    Example:
        >>> labels_of([Sentence(["Oslo", "rain"], ["LOC", "N/A"])])
        ('LOC', 'N/A')
    """
    used = {tag for sentence in sentences for tag in sentence.tags}
    return tuple(t for t in CONLL_TAGS if t in used) + tuple(sorted(used - set(CONLL_TAGS)))


def tag_set(sentences: Sequence[Sentence]) -> tuple[str, ...]:
    """The IOB2 tags a tagger of some sentences predicts: ``CONLL_TAGS`` if their tags are
    CoNLL-2003's, else ``O`` then ``B-`` and ``I-`` of each entity type in sorted order.

    Example:
        >>> tag_set([Sentence(["Oslo", "rain"], ["B-location", "O"]), Sentence(["Ada"], ["B-person"])])
        ('O', 'B-location', 'I-location', 'B-person', 'I-person')
        >>> tag_set([Sentence(["Oslo"], ["B-LOC"])]) == CONLL_TAGS
        True
    """
    used = {tag for sentence in sentences for tag in sentence.tags}
    if used <= set(CONLL_TAGS):
        return CONLL_TAGS
    types = sorted({entity_class(tag) for tag in used} - {"O"})
    return ("O", *(f"{prefix}-{kind}" for kind in types for prefix in "BI"))


def find_concept(concept: str | Concept, labels: Sequence[str]) -> Concept:
    """Resolve a concept by name against the labels of some data.

    Args:
        concept: A class name (``"LOC"``), several joined by commas (``"GPE,LOC"``), or a
            ``Concept`` (checked against ``labels``).
        labels: The tags (or classes) the data uses.

    Raises:
        LensRelearnError: A class of the concept has no tag in ``labels`` (the message lists the
            classes present).
    """
    name = concept.name if isinstance(concept, Concept) else concept
    members = tuple(dict.fromkeys(part.strip() for part in name.split(",") if part.strip()))
    classes = tuple(dict.fromkeys(entity_class(tag) for tag in labels))
    missing = [member for member in members if member not in classes]
    if missing or not members:
        which = f": no {', '.join(missing)}" if len(members) > 1 else ""
        raise LensRelearnError(
            f"The concept {name!r} is not in the data{which}; the classes present are {', '.join(classes) or 'none'}."
        )
    tags = tuple(tag for tag in labels if entity_class(tag) in members)
    return Concept(name, members, tags, classes)


RetrainData = Literal["full", "without_concept", "concept_as_o"]
RETRAIN_DATA: tuple[RetrainData, ...] = get_args(RetrainData)
FEW = "few:"  # few:N, a condition of its own: N training sentences with the concept, and every one without it


def few_count(condition: str) -> int | None:
    """The ``N`` of a ``few:N`` retraining condition (written without a sign or leading zeros); None otherwise.

    Example:
        >>> few_count("few:32"), few_count("few:0"), few_count("few:032"), few_count("full")
        (32, 0, None, None)
    """
    count = condition.removeprefix(FEW)
    return int(count) if condition.startswith(FEW) and count.isdecimal() and str(int(count)) == count else None


def is_retraining_condition(condition: str) -> bool:
    """Whether ``condition`` names retraining data: one of ``RETRAIN_DATA``, or ``few:N``."""
    return condition in RETRAIN_DATA or few_count(condition) is not None


def retraining_sentences(
    sentences: Sequence[Sentence], concept: Concept, condition: str, *, seed: int = 0
) -> list[Sentence]:
    """The training sentences a retraining condition shows the tagger, in their order.

    ``full``: all of them. ``without_concept``: only those with no word of the concept, so any
    recovery of it comes from what the model kept, not from being taught again.
    ``concept_as_o``: all of them, the concept's tags relabelled ``O``, so the tagger is taught
    to ignore the concept. ``few:N``: ``N`` of the sentences with the concept, drawn by ``seed``,
    and every sentence without it, so the task is still taught and only the amount of the concept
    varies (``few:0`` is ``without_concept``; a seed's ``N`` sentences are the first ``N`` of one
    shuffle, so they hold the smaller draws).

    Raises:
        LensRelearnError: An unknown condition, or ``few:N`` with more than the sentences holding the concept.

    Example:
        >>> loc = find_concept("LOC", CONLL_TAGS)
        >>> data = [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"]), Sentence(["Ada", "ran"], ["B-PER", "O"])]
        >>> [s.words for s in retraining_sentences(data, loc, "without_concept")]
        [['Ada', 'ran']]
        >>> retraining_sentences(data, loc, "concept_as_o")[0].tags
        ['O', 'O', 'O']
        >>> [s.words[0] for s in retraining_sentences(data, loc, "few:1")]
        ['Rain', 'Ada']
    """
    if condition == "full":
        return list(sentences)
    if condition == "without_concept":
        return [s for s in sentences if not any(concept.covers(t) for t in s.tags)]
    if condition == "concept_as_o":
        return [Sentence(s.words, ["O" if concept.covers(t) else t for t in s.tags]) for s in sentences]
    count = few_count(condition)
    if count is not None:
        holding = [i for i, s in enumerate(sentences) if any(concept.covers(t) for t in s.tags)]
        if count > len(holding):
            raise LensRelearnError(
                f"The retraining condition {condition!r} asks for {count} training sentences with {concept.name}; "
                f"the training split has {len(holding)}."
            )
        left_out = set(random.Random(seed).sample(holding, len(holding))[count:])
        return [s for i, s in enumerate(sentences) if i not in left_out]
    raise LensRelearnError(
        f"Unknown retraining condition {condition!r}; choose one of {', '.join(RETRAIN_DATA)} or {FEW}N."
    )
