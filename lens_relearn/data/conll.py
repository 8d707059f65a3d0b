"""Reading and writing NER files: CoNLL columns and NeuroX token/label files, with file and line in every error."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from lens_relearn.data.sentences import NerData, Sentence, tag_set, to_iob2
from lens_relearn.errors import LensRelearnError

_IOB_TAG = re.compile(r"O|[BI]-\S+")


def check_iob_tag(tag: object, where: str) -> None:
    """Raise unless ``tag`` is an IOB1 or IOB2 tag: ``O``, or ``B-X`` or ``I-X`` for any entity type X.

    Example:
        >>> check_iob_tag("B-location", "train.txt, line 3")
        >>> try:
        ...     check_iob_tag("S-LOC", "train.txt, line 3")
        ... except LensRelearnError as error:
        ...     print(str(error)[:45])
        train.txt, line 3: 'S-LOC' is not an IOB tag;
    """
    if not (isinstance(tag, str) and _IOB_TAG.fullmatch(tag)):
        raise LensRelearnError(
            f"{where}: {tag!r} is not an IOB tag; tags must be IOB1 or IOB2: O, or B-X and I-X for an entity "
            "type X (B-LOC, I-GPE, B-location). Convert other schemes first (BIOES: S-X to B-X, E-X to I-X)."
        )


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise LensRelearnError(f"No such file: {path}")
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LensRelearnError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[error.start]:02x}); convert the file to UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path} > {path}.utf8"
        ) from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        raise LensRelearnError(f"{path} is empty: it holds no sentence.")
    return lines


def read_conll(path: str | Path) -> list[Sentence]:
    """Read a CoNLL file: one token a line, its NER tag in the last column.

    Lines have 2 or 4 columns separated by spaces or tabs, sentences are separated by blank
    lines and ``-DOCSTART-`` lines are skipped. Tags may be of any IOB tag set (CoNLL-2003's
    ``B-LOC``, OntoNotes' ``B-GPE``, WNUT-17's ``B-location``), in IOB1 or IOB2; IOB1 is
    converted to IOB2. The file is UTF-8; a byte-order mark and CRLF line ends are fine.

    Args:
        path: The file.

    Returns:
        The sentences, in file order.

    Raises:
        LensRelearnError: A line with no tag or a tag that is not IOB (file and line number), a
            file that is not UTF-8 (the line of its first bad byte), or a file with no sentence.

    Example:
        >>> import tempfile, pathlib
        >>> sample = "-DOCSTART- -X- O O\\n\\nRain NN I-NP O\\nin IN I-PP O\\n"
        >>> sample += "New NNP I-NP I-LOC\\nYork NNP I-NP I-LOC\\n"
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sample.conll"
        >>> _ = path.write_text(sample)
        >>> read_conll(path)
        [Sentence(words=['Rain', 'in', 'New', 'York'], tags=['O', 'O', 'B-LOC', 'I-LOC'])]
        >>> _ = path.write_text("Snow\\tO\\nin\\tO\\nNew\\tB-location\\nYork\\tI-location\\n")
        >>> read_conll(path)[0].tags
        ['O', 'O', 'B-location', 'I-location']
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
        check_iob_tag(columns[-1], f"{path}, line {number}")
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
            tokens and labels (file and line number), or a file is empty or not UTF-8.

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
    labels = tag_set(splits["train"] + splits["validation"] + splits["test"])
    return NerData(splits["train"], splits["validation"], splits["test"], labels=labels, source=str(folder))
