"""NER data through Hugging Face ``datasets``: Hub datasets (online) and folders saved by ``DatasetDict.save_to_disk``.

``datasets`` is imported inside the functions: it is slow to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lens_relearn.data.conll import check_iob_tag
from lens_relearn.data.sentences import CONLL_TAGS, NerData, Sentence, tag_set, to_iob2
from lens_relearn.errors import LensRelearnError

CONLL2003_HUB = (
    ("eriktks/conll2003", "refs/convert/parquet"),
    ("lhoestq/conll2003", None),
    ("tomaarsen/conll2003", None),
)
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:120]}"


def load_conll2003() -> NerData:
    """CoNLL-2003 through ``datasets`` (online only: its text may not be redistributed)."""
    import datasets

    failures = []
    for repo, revision in CONLL2003_HUB:
        try:
            dataset = datasets.load_dataset(repo, revision=revision)
            break
        except Exception as error:  # any failure: try the next mirror
            failures.append(f"{repo}: {_first_line(error)}")
    else:
        raise LensRelearnError(
            "CoNLL-2003 could not be loaded from the Hugging Face Hub (it needs the network; "
            "HF_DATASETS_OFFLINE may be set):\n  " + "\n  ".join(failures) + "\n"
            "Offline, use load_ner('synthetic'), or a folder of CoNLL files you have."
        )
    names = dataset["train"].features["ner_tags"].feature.names
    if set(names) != set(CONLL_TAGS):
        raise LensRelearnError(f"{repo} has unexpected NER labels {names}; expected {CONLL_TAGS}.")
    return ner_data(dataset, "conll2003")


def load_hub(source: str, tag_column: str = "ner_tags") -> NerData:
    """A Hub dataset named ``hf:ID`` or ``hf:ID:CONFIG``, through ``datasets.load_dataset`` (online only).

    Raises:
        LensRelearnError: The dataset could not be loaded (the message says how to save it on a
            machine with the network and read the folder offline), or as ``ner_data``.
    """
    name, _, config = source.removeprefix("hf:").partition(":")
    arguments = ", ".join(f'"{part}"' for part in (name, config) if part)
    import datasets

    try:
        dataset = datasets.load_dataset(name, config or None)
    except Exception as error:  # offline, an unknown id or config, a loading script...: one message
        raise LensRelearnError(
            f"The Hugging Face dataset {name!r} could not be loaded ({_first_line(error)}). {source} needs the "
            "network (HF_DATASETS_OFFLINE may be set). On a machine with the network, save it with "
            f'datasets.load_dataset({arguments}).save_to_disk("FOLDER"); then load_ner("FOLDER") reads it offline.'
        ) from error
    return ner_data(dataset, source, tag_column)


def load_saved(folder: Path, tag_column: str = "ner_tags") -> NerData:
    """A folder written by ``DatasetDict.save_to_disk``, through ``datasets.load_from_disk`` (offline).

    Raises:
        LensRelearnError: The folder holds a single split (``Dataset.save_to_disk``) or cannot be
            read, or as ``ner_data``.

    Example:
        >>> import tempfile, pathlib, datasets
        >>> tags = datasets.Sequence(datasets.ClassLabel(names=["O", "B-location", "I-location"]))
        >>> features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": tags})
        >>> split = datasets.Dataset.from_dict({"tokens": [["Rain", "in", "Oslo"]], "ner_tags": [[0, 0, 1]]}, features)
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "tiny"
        >>> datasets.DatasetDict(train=split, dev=split, test=split).save_to_disk(folder)
        >>> data = load_saved(folder)
        >>> data.validation, data.labels
        ([Sentence(words=['Rain', 'in', 'Oslo'], tags=['O', 'O', 'B-location'])], ('O', 'B-location', 'I-location'))
    """
    if not (folder / "dataset_dict.json").is_file() and (folder / "state.json").is_file():
        raise LensRelearnError(
            f"{folder} holds a single split, written by Dataset.save_to_disk; NER data needs train, validation "
            "and test splits: save a DatasetDict instead, e.g. "
            f'datasets.DatasetDict(train=..., validation=..., test=...).save_to_disk("{folder}").'
        )
    import datasets

    try:
        dataset = datasets.load_from_disk(str(folder))
    except Exception as error:  # a damaged or partly copied folder
        raise LensRelearnError(
            f"{folder} could not be read by datasets.load_from_disk ({_first_line(error)}); "
            "write it again with DatasetDict.save_to_disk."
        ) from error
    return ner_data(dataset, str(folder), tag_column)


def ner_data(dataset: Any, source: str, tag_column: str = "ner_tags") -> NerData:
    """NER data from a ``DatasetDict`` with words in ``tokens`` and tags in ``tag_column``.

    The splits are ``train``, ``validation`` (or ``valid``, ``dev``) and ``test``. Tags are
    names from a ``Sequence(ClassLabel)`` or strings, of any IOB tag set in IOB1 or IOB2; they
    are converted to IOB2. Rows with no token are skipped.

    Raises:
        LensRelearnError: A split or column is missing (the message lists those present), the
            tag column holds neither class labels nor strings, or a tag is not IOB (split and row).

    Example:
        >>> import datasets
        >>> rows = {"tokens": [["Ada", "Lovelace"], []], "tags": [["I-person", "I-person"], []]}
        >>> split = datasets.Dataset.from_dict(rows)
        >>> data = ner_data(datasets.DatasetDict(train=split, valid=split, test=split), "sample", "tags")
        >>> data.test, data.labels
        ([Sentence(words=['Ada', 'Lovelace'], tags=['B-person', 'I-person'])], ('O', 'B-person', 'I-person'))
    """
    splits = {split: _sentences(dataset, source, names, tag_column) for split, names in SPLIT_NAMES.items()}
    labels = tag_set(splits["train"] + splits["validation"] + splits["test"])
    return NerData(splits["train"], splits["validation"], splits["test"], labels=labels, source=source)


def _sentences(dataset: Any, source: str, names: tuple[str, ...], tag_column: str) -> list[Sentence]:
    found = [name for name in names if name in dataset]
    if not found:
        raise LensRelearnError(
            f"{source} has no {' or '.join(names)} split; its splits are {', '.join(dataset) or 'none'}. "
            "Save a DatasetDict with train, validation and test splits (Dataset.train_test_split can make one)."
        )
    split = dataset[found[0]]
    for column in ("tokens", tag_column):
        if column not in split.column_names:
            raise LensRelearnError(
                f"{source}: the {found[0]} split has no {column!r} column; its columns are "
                f"{', '.join(split.column_names)}. Words are read from 'tokens', tags from tag_column "
                "(default 'ner_tags'): name the tag column with load_ner(..., tag_column=NAME)."
            )
    feature = getattr(split.features[tag_column], "feature", None)
    class_names = getattr(feature, "names", None)
    if class_names is None and getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise LensRelearnError(
            f"{source}: the {tag_column!r} column is {split.features[tag_column]}, not tags: it must be a "
            "sequence of class labels (Sequence(ClassLabel(names=[...]))) or of strings; name another "
            "column with tag_column=NAME."
        )
    sentences = []
    for row, (words, values) in enumerate(zip(split["tokens"], split[tag_column], strict=True)):
        if not words:
            continue
        where = f"{source}, {found[0]} row {row}"
        tags = [class_names[value] for value in values] if class_names is not None else list(values)
        if len(tags) != len(words):
            raise LensRelearnError(f"{where}: {len(words)} tokens but {len(tags)} tags; each token needs one tag.")
        for tag in tags:
            check_iob_tag(tag, where)
        sentences.append(Sentence(list(words), to_iob2(tags)))
    return sentences
