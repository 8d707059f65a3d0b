"""Where NER data comes from: the synthetic corpus, CoNLL-2003 through ``datasets``, or a folder of CoNLL files."""

from __future__ import annotations

from pathlib import Path

from lens_relearn.data.conll import _read_conll_folder
from lens_relearn.data.sentences import CONLL_TAGS, NerData, Sentence, to_iob2
from lens_relearn.data.synthetic import generate_synthetic
from lens_relearn.errors import LensRelearnError

CONLL2003_HUB = (
    ("eriktks/conll2003", "refs/convert/parquet"),
    ("lhoestq/conll2003", None),
    ("tomaarsen/conll2003", None),
)


def _load_conll2003() -> NerData:
    """CoNLL-2003 through ``datasets`` (online only: its text may not be redistributed)."""
    import datasets

    failures = []
    for repo, revision in CONLL2003_HUB:
        try:
            dataset = datasets.load_dataset(repo, revision=revision)
            break
        except Exception as error:  # any failure: try the next mirror
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
