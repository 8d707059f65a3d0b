"""Token-level NER data: sentences, readers for CoNLL and token/label files, sources, concepts.

Tags are IOB2 over CoNLL-2003's nine labels (``CONLL_TAGS``). Token/label files (the NeuroX
format) may carry any label strings; they are kept as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lens_relearn.errors import LensRelearnError

CONLL_TAGS: tuple[str, ...] = (
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
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
            raise LensRelearnError(
                f"A sentence has {len(self.words)} words but {len(self.tags)} tags: {self.words!r}"
            )

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
        source: Where it came from (``"synthetic"``, a path, ``"conll2003"``).
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
        named = {"train": self.train, "validation": self.validation, "test": self.test,
                 "novel_test": self.novel_test}
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
            tag = "B-" + tag[2:]
        converted.append(tag)
    return converted


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise LensRelearnError(f"No such file: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not any(line.strip() for line in lines):
        raise LensRelearnError(f"{path} is empty: it holds no sentence.")
    return lines


def read_conll(path: str | Path) -> list[Sentence]:
    """Read a CoNLL file: one token a line, its NER tag in the last column.

    Lines have 2 or 4 columns separated by spaces or tabs, sentences are separated by blank
    lines, ``-DOCSTART-`` lines are skipped and IOB1 tags are converted to IOB2.

    Args:
        path: The file.

    Returns:
        The sentences, in file order.

    Raises:
        LensRelearnError: A line with no tag or an unknown tag (file and line number), or a
            file with no sentence.

    Example:
        >>> import tempfile, pathlib
        >>> sample = "-DOCSTART- -X- O O\\n\\nRain NN I-NP O\\nin IN I-PP O\\nNew NNP I-NP I-LOC\\nYork NNP I-NP I-LOC\\n"
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sample.conll"
        >>> _ = path.write_text(sample)
        >>> read_conll(path)
        [Sentence(words=['Rain', 'in', 'New', 'York'], tags=['O', 'O', 'B-LOC', 'I-LOC'])]
    """
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []

    def close_sentence() -> None:
        if words:
            sentences.append(Sentence(list(words), to_iob2(tags)))
            words.clear()
            tags.clear()

    for number, line in enumerate(_read_lines(path), start=1):
        columns = line.split()
        if not columns:
            close_sentence()
            continue
        if columns[0] == "-DOCSTART-":
            close_sentence()
            continue
        if len(columns) not in (2, 4):
            raise LensRelearnError(
                f"{path}, line {number}: expected 2 or 4 columns (token ... NER tag), "
                f"found {len(columns)}: {line!r}"
            )
        if columns[-1] not in CONLL_TAGS:
            raise LensRelearnError(
                f"{path}, line {number}: unknown tag {columns[-1]!r}; "
                f"the tags are {', '.join(CONLL_TAGS)}."
            )
        words.append(columns[0])
        tags.append(columns[-1])
    close_sentence()
    if not sentences:
        raise LensRelearnError(f"{path} holds no sentence (only -DOCSTART- lines).")
    return sentences


def write_conll(sentences: list[Sentence], path: str | Path) -> None:
    """Write sentences as a 2-column CoNLL file (token and tag), blank lines between sentences."""
    blocks = ("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags)) for s in sentences)
    Path(path).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def read_token_label_files(tokens_path: str | Path, labels_path: str | Path) -> list[Sentence]:
    """Read a NeuroX-style corpus: one sentence a line in each file, space-separated, aligned.

    Labels are kept as given (any strings, e.g. ``LOC`` and ``N/A``).

    Raises:
        LensRelearnError: The files differ in line count, a line has a different number of
            tokens and labels (file and line number), or a file is empty.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tokens.txt").write_text("Rain in Oslo\\n")
        >>> _ = (folder / "labels.txt").write_text("N/A N/A LOC\\n")
        >>> read_token_label_files(folder / "tokens.txt", folder / "labels.txt")
        [Sentence(words=['Rain', 'in', 'Oslo'], tags=['N/A', 'N/A', 'LOC'])]
    """
    token_lines, label_lines = _read_lines(tokens_path), _read_lines(labels_path)
    if len(token_lines) != len(label_lines):
        raise LensRelearnError(
            f"{tokens_path} has {len(token_lines)} lines but {labels_path} has "
            f"{len(label_lines)}; the two files must be line-aligned."
        )
    sentences = []
    for number, (token_line, label_line) in enumerate(zip(token_lines, label_lines), start=1):
        words, labels = token_line.split(), label_line.split()
        if len(words) != len(labels):
            raise LensRelearnError(
                f"{labels_path}, line {number}: {len(labels)} labels for the {len(words)} "
                f"tokens of {tokens_path}, line {number}."
            )
        if words:
            sentences.append(Sentence(words, labels))
    return sentences


@dataclass(frozen=True)
class Concept:
    """A concept to remove: the class of tags it covers, and the contrast classes beside it.

    Attributes:
        name: The class name (``"LOC"``; any label for token/label files).
        tags: The tags that are the concept (``("B-LOC", "I-LOC")``).
        classes: Every class of the data, the concept's included, in label order.

    Example:
        >>> loc = find_concept("LOC", CONLL_TAGS)
        >>> loc.tags, loc.contrast
        (('B-LOC', 'I-LOC'), ('O', 'PER', 'ORG', 'MISC'))
    """

    name: str
    tags: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def contrast(self) -> tuple[str, ...]:
        """The classes that are not the concept."""
        return tuple(c for c in self.classes if c != self.name)


def labels_of(sentences: list[Sentence]) -> tuple[str, ...]:
    """The tags used in some sentences, in ``CONLL_TAGS`` order where they are CoNLL tags.

    Example:
        >>> labels_of([Sentence(["Oslo", "rain"], ["LOC", "N/A"])])
        ('LOC', 'N/A')
    """
    used = {tag for sentence in sentences for tag in sentence.tags}
    return tuple(t for t in CONLL_TAGS if t in used) + tuple(sorted(used - set(CONLL_TAGS)))


def find_concept(concept: str | Concept, labels: Sequence[str]) -> Concept:
    """Resolve a concept by name against the labels of some data.

    Args:
        concept: A class name (``"LOC"``) or a ``Concept`` (checked against ``labels``).
        labels: The tags the data uses.

    Raises:
        LensRelearnError: No tag of ``labels`` belongs to the concept (the message lists the
            classes present).
    """
    name = concept.name if isinstance(concept, Concept) else concept
    classes = tuple(dict.fromkeys(entity_class(tag) for tag in labels))
    tags = tuple(tag for tag in labels if entity_class(tag) == name)
    if not tags:
        raise LensRelearnError(
            f"The concept {name!r} is not in the data; the classes present are "
            f"{', '.join(classes) or 'none'}."
        )
    return Concept(name, tags, classes)


CONLL2003_HUB = (
    ("eriktks/conll2003", "refs/convert/parquet"),
    ("lhoestq/conll2003", None),
    ("tomaarsen/conll2003", None),
)
SPLIT_FILE_NAMES = {
    "train": ("eng.train", "train.txt", "train.conll", "train"),
    "validation": ("eng.testa", "valid.txt", "validation.txt", "dev.txt", "valid.conll", "dev.conll", "valid", "dev"),
    "test": ("eng.testb", "test.txt", "test.conll", "test"),
}


def _read_conll_folder(folder: Path) -> NerData:
    splits = {}
    for split, names in SPLIT_FILE_NAMES.items():
        found = [folder / name for name in names if (folder / name).is_file()]
        if not found:
            raise LensRelearnError(
                f"{folder} has no {split} file; expected one of {', '.join(names)}."
            )
        splits[split] = read_conll(found[0])
    return NerData(**splits, source=str(folder))


def _load_conll2003() -> NerData:
    """CoNLL-2003 through ``datasets`` (online only: its text may not be redistributed)."""
    import datasets

    failures = []
    for repo, revision in CONLL2003_HUB:
        try:
            dataset = datasets.load_dataset(repo, revision=revision)
            break
        except Exception as error:  # noqa: BLE001  (any failure: try the next mirror)
            failures.append(f"{repo}: {type(error).__name__}: {str(error).splitlines()[0][:120]}")
    else:
        raise LensRelearnError(
            "CoNLL-2003 could not be loaded from the Hugging Face Hub (it needs the network; "
            "HF_DATASETS_OFFLINE may be set):\n  " + "\n  ".join(failures) + "\n"
            "Offline, use load_ner('synthetic'), or a folder of CoNLL files you have."
        )
    names = dataset["train"].features["ner_tags"].feature.names
    if set(names) != set(CONLL_TAGS):
        raise LensRelearnError(f"{repo} has unexpected NER labels {names}; expected {CONLL_TAGS}.")

    def sentences(split: str) -> list[Sentence]:
        return [
            Sentence(list(row["tokens"]), to_iob2([names[i] for i in row["ner_tags"]]))
            for row in dataset[split]
            if row["tokens"]
        ]

    return NerData(sentences("train"), sentences("validation"), sentences("test"), source="conll2003")


def load_ner(source: str | Path, *, seed: int = 0, **synthetic_sizes: int) -> NerData:
    """Load NER data with train, validation and test splits.

    Args:
        source: ``"synthetic"`` (offline, generated), ``"conll2003"`` (through ``datasets``,
            online only), or a folder of CoNLL files (``eng.train``/``eng.testa``/``eng.testb``,
            ``train.txt``/``valid.txt``/``test.txt``, ...).
        seed: The seed of the synthetic corpus.
        **synthetic_sizes: ``n_train``, ``n_validation``, ``n_test``, ``n_novel`` for the
            synthetic corpus.

    Example:
        >>> data = load_ner("synthetic", n_train=20, n_validation=5, n_test=5, n_novel=5)
        >>> len(data.train), len(data.test), data.labels[:3]
        (20, 5, ('O', 'B-PER', 'I-PER'))
    """
    if source == "synthetic":
        from lens_relearn.synthetic import generate_synthetic

        return generate_synthetic(seed=seed, **synthetic_sizes)
    if synthetic_sizes:
        raise LensRelearnError(
            f"Sizes ({', '.join(synthetic_sizes)}) apply to the synthetic corpus only, not {source!r}."
        )
    if source == "conll2003":
        return _load_conll2003()
    if Path(source).is_dir():
        return _read_conll_folder(Path(source))
    raise LensRelearnError(
        f"Unknown NER source {str(source)!r}: use 'synthetic', 'conll2003' or a folder of CoNLL "
        "files (a single file: read_conll(path))."
    )
