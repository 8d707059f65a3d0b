"""Reading and writing NER files: CoNLL columns and NeuroX token/label files, with file and line in every error."""

from __future__ import annotations

from pathlib import Path

from lens_relearn.data.sentences import CONLL_TAGS, NerData, Sentence, to_iob2
from lens_relearn.errors import LensRelearnError


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
        >>> sample = "-DOCSTART- -X- O O\\n\\nRain NN I-NP O\\nin IN I-PP O\\n"
        >>> sample += "New NNP I-NP I-LOC\\nYork NNP I-NP I-LOC\\n"
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
                f"{path}, line {number}: expected 2 or 4 columns (token ... NER tag), found {len(columns)}: {line!r}"
            )
        if columns[-1] not in CONLL_TAGS:
            raise LensRelearnError(
                f"{path}, line {number}: unknown tag {columns[-1]!r}; the tags are {', '.join(CONLL_TAGS)}."
            )
        words.append(columns[0])
        tags.append(columns[-1])
    close_sentence()
    if not sentences:
        raise LensRelearnError(f"{path} holds no sentence (only -DOCSTART- lines).")
    return sentences


def write_conll(sentences: list[Sentence], path: str | Path) -> None:
    """Write sentences as a 2-column CoNLL file (token and tag), blank lines between sentences."""
    blocks = ("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags, strict=True)) for s in sentences)
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
    for number, (token_line, label_line) in enumerate(zip(token_lines, label_lines, strict=True), start=1):
        words, labels = token_line.split(), label_line.split()
        if len(words) != len(labels):
            raise LensRelearnError(
                f"{labels_path}, line {number}: {len(labels)} labels for the {len(words)} "
                f"tokens of {tokens_path}, line {number}."
            )
        if words:
            sentences.append(Sentence(words, labels))
    return sentences


SPLIT_FILE_NAMES = {
    "train": ("eng.train", "train.txt", "train.conll", "train"),
    "validation": ("eng.testa", "valid.txt", "validation.txt", "dev.txt", "valid.conll", "dev.conll", "valid", "dev"),
    "test": ("eng.testb", "test.txt", "test.conll", "test"),
}


def _read_conll_folder(folder: Path) -> NerData:
    splits: dict[str, list[Sentence]] = {}
    for split, names in SPLIT_FILE_NAMES.items():
        found = [folder / name for name in names if (folder / name).is_file()]
        if not found:
            raise LensRelearnError(f"{folder} has no {split} file; expected one of {', '.join(names)}.")
        splits[split] = read_conll(found[0])
    return NerData(splits["train"], splits["validation"], splits["test"], source=str(folder))
