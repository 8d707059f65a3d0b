"""The concept corpus: the sentences neurons are ranked on, when they are not the NER validation split.

Lo et al. rank neurons on a corpus of their own (BERT-ConceptNet sentences in NeuroX token/label
files, labels ``SEM:named_entity:location`` and ``N/A``), apart from the NER data the tagger
learns from.
"""

from __future__ import annotations

from pathlib import Path

from lens_relearn.data.conll import read_conll, read_token_label_files
from lens_relearn.data.sentences import Sentence
from lens_relearn.data.sources import load_ner
from lens_relearn.errors import LensRelearnError

TOKEN_LABEL_FILES = ("tokens.txt", "labels.txt")


def read_concept_corpus(spec: str) -> list[Sentence]:
    """Read a concept corpus named by a spec.

    Args:
        spec: ``TOKENS,LABELS`` (two NeuroX files: one sentence a line, aligned), a CoNLL file,
            a folder holding ``tokens.txt`` and ``labels.txt``, or an NER source of
            ``load_ner`` (a CoNLL folder, a saved ``DatasetDict``, ``hf:ID``), whose validation
            split is taken: its test split never is.

    Raises:
        LensRelearnError: The spec names nothing readable (the message lists the forms).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tokens.txt").write_text("Rain in Oslo\\n")
        >>> _ = (folder / "labels.txt").write_text("N/A N/A SEM:named_entity:location\\n")
        >>> read_concept_corpus(str(folder))[0].tags
        ['N/A', 'N/A', 'SEM:named_entity:location']
    """
    if "," in spec:
        tokens, labels = (part.strip() for part in spec.split(",", 1))
        return read_token_label_files(tokens, labels)
    path = Path(spec)
    if path.is_file():
        return read_conll(path)
    if all((path / name).is_file() for name in TOKEN_LABEL_FILES):
        return read_token_label_files(*(path / name for name in TOKEN_LABEL_FILES))
    if path.is_dir() or spec.startswith("hf:") or spec == "conll2003":
        return load_ner(spec).validation
    raise LensRelearnError(
        f"No concept corpus at {spec!r}: give TOKENS,LABELS (two token/label files), a CoNLL file, "
        "a folder with tokens.txt and labels.txt, or an NER folder or hf:ID (its validation split)."
    )
