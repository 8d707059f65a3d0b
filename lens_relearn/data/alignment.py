"""Words to model tokens and back: tokenise labelled sentences, pool sub-tokens into words.

A word may become several tokens (WordPiece ``##`` pieces, byte-level BPE pieces). Every
token is mapped to the word it came from, through character offsets, so the same code serves
BERT-style WordPiece tokenizers and GPT-2/SmolLM2-style byte-level BPE. Byte-level BPE
tokenizers see each word with a leading space (the first word too), so a word type is
tokenised the same way wherever it stands. Special tokens, padding and tokens that are white
space alone (SmolLM2 gives the space before a number a token of its own) belong to no word.

Sentences longer than the context are cut at a word boundary, with a ``TruncationWarning``: a
word that does not fit whole is dropped with its label, never labelled through a fragment.
``check_sentences`` looks at a whole corpus once, before any training: it counts the sentences
that will be cut and feeds a word that the tokenizer gives no token (a zero-width space, a
control character) as the unknown token, keeping its label.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from lens_relearn.data.sentences import Sentence
from lens_relearn.errors import LensRelearnError

Aggregation = Literal["first", "last", "average"]
AGGREGATIONS: tuple[Aggregation, ...] = ("first", "last", "average")


class TruncationWarning(UserWarning):
    """Some sentences are longer than the model's context: their words past it are dropped with their labels."""


@dataclass(frozen=True)
class EncodedBatch:
    """Labelled sentences as model input, with each token's word.

    Attributes:
        input_ids, attention_mask: What the model takes.
        token_word: For every token, the index of its word among all words kept in the batch
            (sentence by sentence, in order), or -1 for special tokens and padding.
        words_kept: How many words of each sentence fit in the context.
        tags: The tags of the kept words, in the same order as ``token_word`` counts them.
    """

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    token_word: Int[Tensor, "batch pos"]
    words_kept: list[int]
    tags: list[str]

    @property
    def n_words(self) -> int:
        """Words kept in the whole batch."""
        return len(self.tags)

    def to(self, device: str | torch.device) -> EncodedBatch:
        """The same batch with its tensors on ``device``."""
        return EncodedBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.token_word.to(device),
            self.words_kept,
            self.tags,
        )


def is_byte_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether a fast tokenizer is byte-level BPE (GPT-2 family) rather than WordPiece.

    Example:
        >>> from lens_relearn.models.loading import _minilm_folder
        >>> from transformers import AutoTokenizer
        >>> is_byte_level(AutoTokenizer.from_pretrained(_minilm_folder()))
        False
    """
    return type(tokenizer.backend_tokenizer.model).__name__ != "WordPiece"


def encode(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sentence],
    *,
    max_length: int = 512,
) -> EncodedBatch:
    """Tokenise sentences and map every token to its word.

    Args:
        tokenizer: A fast Hugging Face tokenizer (WordPiece or byte-level BPE).
        sentences: Labelled sentences; their words must not contain white space.
        max_length: The context length in tokens, special tokens included.

    Returns:
        The padded batch (right padding) with its token-to-word map.

    Example:
        >>> from lens_relearn.models.loading import _minilm_folder
        >>> from transformers import AutoTokenizer
        >>> tokenizer = AutoTokenizer.from_pretrained(_minilm_folder())
        >>> batch = encode(tokenizer, [Sentence(["Visit", "Zürich", "!"], ["O", "B-LOC", "O"])])
        >>> tokenizer.convert_ids_to_tokens(batch.input_ids[0])
        ['[CLS]', 'visit', 'zurich', '!', '[SEP]']
        >>> batch.token_word.tolist()
        [[-1, 0, 1, 2, -1]]
    """
    if not sentences:
        raise LensRelearnError("Nothing to encode: the list of sentences is empty.")
    prefix = " " if is_byte_level(tokenizer) else ""
    texts, starts = [], []
    for sentence in sentences:
        if any(not word or any(ch.isspace() for ch in word) for word in sentence.words):
            raise LensRelearnError(f"Words must be non-empty and contain no white space: {sentence.words!r}")
        word_starts, position = [], len(prefix)
        for word in sentence.words:
            word_starts.append(position)
            position += len(word) + 1
        texts.append(prefix + " ".join(sentence.words))
        starts.append(word_starts)
    if tokenizer.pad_token is None:
        raise LensRelearnError("The tokenizer has no padding token; set tokenizer.pad_token first.")
    encoded = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    token_word = torch.full_like(encoded["input_ids"], -1)
    words_kept: list[int] = []
    tags: list[str] = []
    truncated = 0
    for row, (sentence, text, word_starts) in enumerate(zip(sentences, texts, starts, strict=True)):
        words_of_tokens, ends = _token_words(
            encoded["offset_mapping"][row].tolist(),
            encoded["special_tokens_mask"][row].tolist(),
            encoded["attention_mask"][row].tolist(),
            text,
            word_starts,
        )
        kept = _whole_words(sentence, word_starts, words_of_tokens, ends)
        truncated += kept < len(sentence)
        for position, word_index in enumerate(words_of_tokens):
            if 0 <= word_index < kept:
                token_word[row, position] = len(tags) + word_index
        words_kept.append(kept)
        tags.extend(sentence.tags[:kept])
    if truncated:
        warnings.warn(
            f"{truncated} of {len(sentences)} sentences are longer than {max_length} tokens; "
            "their words past the limit were dropped with their labels.",
            TruncationWarning,
            stacklevel=2,
        )
    return EncodedBatch(encoded["input_ids"], encoded["attention_mask"], token_word, words_kept, tags)


@dataclass(frozen=True)
class CheckedSentences:
    """A corpus as the model will read it (``check_sentences``).

    Attributes:
        sentences: The sentences, each word the tokenizer gives no token replaced by its unknown token.
        replaced: The words replaced, in order of appearance.
        truncated: How many sentences are longer than the context (their last words will be dropped).
    """

    sentences: list[Sentence]
    replaced: list[str]
    truncated: int


def check_sentences(
    tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sentence], *, max_length: int = 512, where: str = "corpus"
) -> CheckedSentences:
    """Look at a corpus once before anything trains: words the tokenizer drops, sentences past the context.

    A word the tokenizer gives no token of its own (a zero-width space or a control character, as
    found in scraped text) could not be labelled through any token; it is fed as the tokenizer's
    unknown token and keeps its label.

    Args:
        tokenizer: The model's fast tokenizer.
        sentences: The corpus.
        max_length: The context length in tokens, special tokens included.
        where: The corpus's name for errors (``"the test split of data/ner"``).

    Raises:
        LensRelearnError: A word has white space in it, or is dropped by a tokenizer without an
            unknown token (the message names ``where``, the sentence and the word).

    Example:
        >>> from lens_relearn.models.loading import _minilm_folder
        >>> from transformers import AutoTokenizer
        >>> tokenizer = AutoTokenizer.from_pretrained(_minilm_folder())
        >>> checked = check_sentences(tokenizer, [Sentence(["Rain", "\u200b", "Oslo"], ["O", "O", "B-LOC"])])
        >>> checked.sentences[0].words, checked.replaced, checked.truncated
        (['Rain', '[UNK]', 'Oslo'], ['\u200b'], 0)
    """
    prefix = " " if is_byte_level(tokenizer) else ""
    dropped = {}
    for word in dict.fromkeys(w for s in sentences for w in s.words):
        if not word or any(ch.isspace() for ch in word):
            number = next(i for i, s in enumerate(sentences) if word in s.words) + 1
            raise LensRelearnError(f"Sentence {number} of {where} has a word with white space in it: {word!r}.")
        found = tokenizer(prefix + word, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        dropped[word] = not any(not (prefix + word)[start:end].isspace() for start, end in found if end > start)
    replaced = [w for s in sentences for w in s.words if dropped[w]]
    if replaced and tokenizer.unk_token is None:
        number, sentence = next((i + 1, s) for i, s in enumerate(sentences) if any(dropped[w] for w in s.words))
        raise LensRelearnError(
            f"Sentence {number} of {where} ({' '.join(sentence.words)!r}) has a word the tokenizer gives no token, "
            f"{next(w for w in sentence.words if dropped[w])!r}, and it has no unknown token to stand for it; "
            "remove or replace the word."
        )
    checked = [
        Sentence([tokenizer.unk_token if dropped[w] else w for w in s.words], s.tags)
        if any(dropped[w] for w in s.words)
        else s
        for s in sentences
    ]
    lengths = tokenizer([prefix + " ".join(s.words) for s in checked], verbose=False)["input_ids"] if checked else []
    return CheckedSentences(checked, replaced, sum(len(ids) > max_length for ids in lengths))


def _token_words(
    offsets: list[list[int]],
    special: list[int],
    attention: list[int],
    text: str,
    word_starts: list[int],
) -> tuple[list[int], list[int]]:
    """Each token's word index (-1 for special tokens and padding) and its end offset."""
    words, ends = [], []
    for (offset, end), is_special, attended in zip(offsets, special, attention, strict=True):
        start = offset
        while start < end and text[start].isspace():  # byte-level tokens carry their space
            start += 1
        if is_special or not attended or start >= end:
            words.append(-1)
        else:
            words.append(bisect.bisect_right(word_starts, start) - 1)
        ends.append(end)
    return words, ends


def _whole_words(sentence: Sentence, word_starts: list[int], words_of_tokens: list[int], ends: list[int]) -> int:
    """How many leading words have all their tokens inside the (possibly cut) context."""
    last_end: dict[int, int] = {}
    for word, end in zip(words_of_tokens, ends, strict=True):
        if word >= 0:
            last_end[word] = max(end, last_end.get(word, 0))
    kept = 0
    while kept in last_end and last_end[kept] >= word_starts[kept] + len(sentence.words[kept]):
        kept += 1
    if kept < len(sentence) and kept + 1 in last_end:
        raise LensRelearnError(
            f"The tokenizer's tokens do not cover the word {sentence.words[kept]!r} "
            f"in {' '.join(sentence.words)!r}; remove or replace it."
        )
    return kept


class WordPooler:
    """Pools token vectors into word vectors for one batch; build once, apply to many layers.

    Args:
        token_word: The token-to-word map of an ``EncodedBatch``.
        n_words: The number of words in the batch.
        aggregation: ``first`` or ``last`` sub-token of each word, or their ``average``.
    """

    # aggregation is a str, not an Aggregation: it is checked here, with advice.
    def __init__(self, token_word: Int[Tensor, "batch pos"], n_words: int, aggregation: str) -> None:
        if aggregation not in AGGREGATIONS:
            raise LensRelearnError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}.")
        flat_words = token_word.reshape(-1)
        self.tokens = (flat_words >= 0).nonzero().squeeze(-1)  # flat positions of word tokens
        self.words = flat_words[self.tokens]
        self.n_words = n_words
        self.aggregation = aggregation
        if aggregation == "average":
            counts = torch.bincount(self.words, minlength=n_words).clamp(min=1)
            self.counts = counts.unsqueeze(-1)
        else:
            # Tokens follow word order, so a word's first (last) token is where the word index
            # changes from (to) another value.
            boundary = torch.ones_like(self.words, dtype=torch.bool)
            if aggregation == "first":
                boundary[1:] = self.words[1:] != self.words[:-1]
            else:
                boundary[:-1] = self.words[:-1] != self.words[1:]
            self.tokens = self.tokens[boundary]

    def __call__(self, hidden: Float[Tensor, "batch pos d"]) -> Float[Tensor, "words d"]:
        """One row a word, in the batch's word order."""
        vectors = hidden.reshape(-1, hidden.shape[-1]).index_select(0, self.tokens)
        if self.aggregation != "average":
            return vectors
        sums = vectors.new_zeros(self.n_words, vectors.shape[-1]).index_add_(0, self.words, vectors)
        return sums / self.counts.to(sums.dtype)


def pool_words(
    hidden: Float[Tensor, "batch pos d"],
    token_word: Int[Tensor, "batch pos"],
    n_words: int,
    aggregation: str = "first",  # str, not Aggregation: WordPooler checks it, with advice
) -> Float[Tensor, "words d"]:
    """Pool token vectors into one vector per word.

    Args:
        hidden: Token vectors (hidden states or activations).
        token_word: The token-to-word map of an ``EncodedBatch``.
        n_words: The number of words in the batch.
        aggregation: ``first`` or ``last`` sub-token of each word, or their ``average``.

    Returns:
        One row a word, in the batch's word order.

    Example:
        >>> hidden = torch.arange(5.0).reshape(1, 5, 1)
        >>> token_word = torch.tensor([[-1, 0, 0, 1, -1]])
        >>> [pool_words(hidden, token_word, 2, how).flatten().tolist() for how in AGGREGATIONS]
        [[1.0, 3.0], [2.0, 3.0], [1.5, 3.0]]
    """
    return WordPooler(token_word.to(hidden.device), n_words, aggregation)(hidden)


WORD_SLOTS = 24  # words a sentence of a batch may take on average: the token budget of ``length_batches``
INFERENCE_BATCH = 64  # sentences a forward pass without gradients takes: every such pass, so all see the same batches


def length_batches(sentences: Sequence[Sentence], batch_size: int) -> list[list[int]]:
    """Indices of sentences in batches of similar length, to spend little compute on padding.

    A batch holds at most ``batch_size`` sentences and at most ``batch_size * 24`` word slots
    (sentences x longest sentence), so the largest batch, and with it peak memory, does not
    grow with the corpus. Every pass over sentences (statistics, top tokens, predictions)
    batches them this way, so they all see the same batches and compute the same numbers.

    Example:
        >>> sentences = [Sentence(["w"] * n, ["O"] * n) for n in (5, 1, 3, 2)]
        >>> length_batches(sentences, 2)
        [[1, 3], [2, 0]]
    """
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    budget = batch_size * WORD_SLOTS
    batches: list[list[int]] = [[]]
    for index in order:
        batch = batches[-1]
        if batch and (len(batch) == batch_size or (len(batch) + 1) * len(sentences[index]) > budget):
            batches.append(batch := [])
        batch.append(index)
    return batches
