"""NER data: sentences, readers, the synthetic corpus, sources, and words aligned to tokens."""

from lens_relearn.data.alignment import EncodedBatch, encode, pool_words
from lens_relearn.data.conll import read_conll, read_token_label_files, write_conll
from lens_relearn.data.sentences import CONLL_TAGS, Concept, NerData, Sentence, find_concept
from lens_relearn.data.sources import load_ner

__all__ = [
    "CONLL_TAGS",
    "Concept",
    "EncodedBatch",
    "NerData",
    "Sentence",
    "encode",
    "find_concept",
    "load_ner",
    "pool_words",
    "read_conll",
    "read_token_label_files",
    "write_conll",
]
