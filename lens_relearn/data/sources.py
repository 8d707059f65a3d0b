"""Where NER data comes from: the synthetic corpus, a folder of CoNLL files, or Hugging Face ``datasets``."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import TypeVar

from lens_relearn.data.conll import _read_conll_folder
from lens_relearn.data.hub import load_conll2003, load_hub, load_saved
from lens_relearn.data.sentences import NerData
from lens_relearn.data.synthetic import generate_synthetic
from lens_relearn.errors import LensRelearnError


def load_ner(
    source: str | Path,
    *,
    seed: int = 0,
    # The sizes are objects, not ints: they are checked below, with advice.
    n_train: object = None,
    n_validation: object = None,
    n_test: object = None,
    n_novel: object = None,
    tag_column: str = "ner_tags",
) -> NerData:
    """Load NER data with train, validation and test splits.

    Args:
        source: One of

            - ``"synthetic"``: the synthetic corpus, generated offline;
            - a folder of CoNLL files of any IOB tag set (``eng.train``/``eng.testa``/``eng.testb``,
              ``train.txt``/``dev.txt``/``test.txt``, ...);
            - a folder written by ``DatasetDict.save_to_disk`` (read offline);
            - ``"hf:ID"`` or ``"hf:ID:CONFIG"``: a Hugging Face dataset (``"hf:unimelb-nlp/wikiann:en"``),
              online only;
            - ``"conll2003"``: CoNLL-2003 from the Hugging Face Hub, online only.
        seed: The seed of the synthetic corpus, and of the subsamples of the other sources.
        n_train, n_validation, n_test: For the synthetic corpus, the sentences to generate
            (None: ``generate_synthetic``'s default). For the other sources, at most this many
            sentences of the split: a subsample drawn by ``seed``, in file order (None: all).
        n_novel: Sentences with invented place names (the synthetic corpus only).
        tag_column: The column of tags of a Hugging Face dataset (words come from ``tokens``).

    Raises:
        LensRelearnError: An unknown source, a size that is not a whole number >= 0, ``n_novel``
            or ``tag_column`` for a source without them, or data the reader rejects.

    Example:
        >>> data = load_ner("synthetic", n_train=20, n_validation=5, n_test=5, n_novel=5)
        >>> len(data.train), len(data.test), data.labels[:3]
        (20, 5, ('O', 'B-PER', 'I-PER'))
        >>> import tempfile, pathlib
        >>> from lens_relearn.data.conll import write_conll
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for name, split in zip(("train.txt", "dev.txt", "test.txt"), (data.train, data.validation, data.test)):
        ...     write_conll(split, folder / name)
        >>> sample = load_ner(folder, n_train=8, seed=1)
        >>> len(sample.train), len(sample.test), all(s in data.train for s in sample.train)
        (8, 5, True)
    """
    given = {"n_train": n_train, "n_validation": n_validation, "n_test": n_test, "n_novel": n_novel}
    sizes = {argument: _size(argument, size) for argument, size in given.items()}
    hugging_face = str(source).startswith("hf:") or _saved_dataset(Path(source))
    if tag_column != "ner_tags" and not hugging_face:
        raise LensRelearnError(
            f"tag_column={tag_column!r} names a column of a Hugging Face dataset ('hf:ID' or a folder saved by "
            f"DatasetDict.save_to_disk); {str(source)!r} has no columns: leave tag_column out."
        )
    if source == "synthetic":
        return generate_synthetic(seed=seed, **{argument: size for argument, size in sizes.items() if size is not None})
    if n_novel is not None:
        raise LensRelearnError(
            f"n_novel={n_novel}: the split of invented place names exists in the synthetic corpus only, "
            f"not in {str(source)!r}; leave n_novel out."
        )
    data = _load(source, tag_column)
    return dataclasses.replace(
        data,
        train=subsample(data.train, sizes["n_train"], seed, "train"),
        validation=subsample(data.validation, sizes["n_validation"], seed, "validation"),
        test=subsample(data.test, sizes["n_test"], seed, "test"),
    )


def _size(argument: str, size: object) -> int | None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise LensRelearnError(f"{argument}={size!r} is not a size: give a whole number >= 0 (or None for all).")
    return size


def _saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _load(source: str | Path, tag_column: str) -> NerData:
    if str(source).startswith("hf:"):
        return load_hub(str(source), tag_column)
    if _saved_dataset(Path(source)):
        return load_saved(Path(source), tag_column)
    if source == "conll2003":
        return load_conll2003()
    if Path(source).is_dir():
        return _read_conll_folder(Path(source))
    raise LensRelearnError(
        f"Unknown NER source {str(source)!r}: use 'synthetic'; a folder of CoNLL files (train.txt, dev.txt, "
        "test.txt or eng.train, eng.testa, eng.testb; a single file: read_conll(path)); a folder saved by "
        "DatasetDict.save_to_disk; 'hf:ID' or 'hf:ID:CONFIG' (a Hugging Face dataset, online); or 'conll2003' "
        "(online)."
    )


Item = TypeVar("Item")


def subsample(sentences: list[Item], size: int | None, seed: int, split: str) -> list[Item]:
    """At most ``size`` sentences (or other items) drawn by ``seed``, in their order; all of them if ``size`` is None
    or larger.

    Growing ``size`` keeps the sentences drawn before: ``size`` 50 takes the 40 of ``size`` 40 and 10 more.

    Example:
        >>> from lens_relearn.data.sentences import Sentence
        >>> sentences = [Sentence([word], ["O"]) for word in "abcdefgh"]
        >>> [["".join(s.words[0] for s in subsample(sentences, n, 0, "train")) for n in (3, 5, 9)]]
        [['afh', 'adefh', 'abcdefgh']]
    """
    if size is None:
        return sentences
    order = list(range(len(sentences)))
    random.Random(f"{split}/{seed}").shuffle(order)
    return [sentences[index] for index in sorted(order[:size])]
