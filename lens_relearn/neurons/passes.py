"""One pass over a set of sentences for everything a stage needs from them.

Describing a stage needs, from the concept corpus, activation statistics at the neuron site
and the residual stream's word vectors for the layer probes, and from every evaluation split
the tagger's predictions (from the test split, residual vectors too: the probes are scored
there). ``shared_pass`` streams the sentences once, with hooks at both sites and the tagger's
head on the final hidden states, and hands each batch to what was asked for. The batches are
those of every other pass (``length_batches``), so the statistics equal ``collect_stats``'s,
the vectors ``layer_vectors``'s and the predictions ``Tagger.predict``'s, number for number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float

from lens_relearn.data.alignment import INFERENCE_BATCH, pool_words
from lens_relearn.data.sentences import Sentence
from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.activations import (
    ActivationStats,
    ActivationStore,
    SentenceWords,
    StatsSums,
    _stream,
)
from lens_relearn.neurons.probes import WordVectors
from lens_relearn.parallel import gather
from lens_relearn.tagger.model import Tagger

VECTOR_SITE = "resid"  # where the layer probes read words


@dataclass(frozen=True)
class PassResult:
    """What one pass over some sentences gave.

    Attributes:
        stats: Activation statistics at the neuron site (None unless asked for).
        vectors: Each residual layer's word vectors, in ``tags`` order (empty unless asked for; a sample
            when ``vector_words`` asked for one).
        tags: The gold tags of the words kept, in the pass's word order (with ``vectors``).
        predictions: The tagger's tags for each sentence, in the sentences' order (empty unless asked for).
        activations: Each batch with its sentence indices and its words' activations at the
            neuron site (``[words, layers, units]``, for ``top_tokens``; None unless asked for). Close
            it once read: what did not fit in memory lies in a temporary file.
        words: The pooled activations of the words of the sentences asked for (``word_sentences``), at the
            neuron site and the residual stream, each site's layers, in the sentences' order (empty unless asked).
    """

    stats: ActivationStats | None
    vectors: list[Float[np.ndarray, "words units"]]
    tags: list[str]
    predictions: list[list[str]]
    activations: ActivationStore | None
    words: dict[str, list[Float[torch.Tensor, "_words _units"]]]


def shared_pass(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    *,
    site: str = "mlp",
    aggregation: str = "first",
    statistics: bool = False,
    vectors: bool = False,
    vector_words: int | None = None,
    vector_seed: int = 0,
    predictions: bool = False,
    keep_activations: bool = False,
    word_sentences: Sequence[int] = (),
    memory_bytes: int | None = None,
    batch_size: int = INFERENCE_BATCH,
    description: str = "stage",
    progress: bool = False,
) -> PassResult:
    """Statistics, probe vectors and predictions from one forward pass over ``sentences``.

    Args:
        tagger: The tagger (its model's pruning hooks act first).
        sentences: Labelled sentences.
        site: The neuron site of the statistics.
        aggregation: How sub-token activations make a word's (statistics and vectors).
        statistics: Sum activations per class at ``site`` (``collect_stats``).
        vectors: Keep every word's residual vectors (``layer_vectors``).
        vector_words: Keep the vectors of at most this many words, a sample drawn by ``vector_seed``
            (``sample_words``: the words ``probe_layers(..., max_train=vector_words, seed=vector_seed)``
            would train on); None keeps every word's.
        vector_seed: The sample's seed.
        predictions: Tag the sentences (``Tagger.predict``).
        keep_activations: Keep every word's activations at ``site`` (words x neurons floats, in
            memory up to ``memory_bytes``, the rest in a temporary file) for ``top_tokens``, which
            then needs no pass of its own.
        word_sentences: Keep the words of these sentences (indices) at ``site`` and the residual stream.
        memory_bytes: How much of the kept activations stays in memory (default ``ACTIVATION_MEMORY_BYTES``).
        batch_size: Sentences a forward pass.
        description: The progress bar's label.
        progress: Show a progress bar.

    Example:
        >>> from lens_relearn import Tagger, load_model
        >>> tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
        >>> done = shared_pass(tagger, [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])],
        ...                    statistics=True, vectors=True, predictions=True)
        >>> done.stats.count.tolist(), len(done.vectors), done.vectors[0].shape, len(done.predictions[0])
        ([2, 1], 3, (3, 64), 3)
    """
    model = tagger.model
    sites = [site] * (statistics or keep_activations or bool(word_sentences))
    sites += [VECTOR_SITE] * (vectors or bool(word_sentences))
    shape = neuron_site(model, site)
    sums = StatsSums(sentences, site, aggregation, shape.n_layers, shape.units) if statistics else None
    kept = WordVectors()
    found: dict[int, list[str]] = {}  # this rank's sentences' tags
    predicted: list[list[str]] = []
    kept_activations = ActivationStore(memory_bytes) if keep_activations else None
    kept_words = SentenceWords(word_sentences, [site, VECTOR_SITE]) if word_sentences else None
    stream = _stream(model, sentences, sites, aggregation, batch_size, description, progress)
    for batch, indices, words, hidden in stream:
        if sums is not None:
            sums.add(batch.tags, words[site])
        if vectors:
            kept.add(batch.tags, words[VECTOR_SITE])
        if kept_activations is not None:
            kept_activations.add(batch, indices, words[site])
        if kept_words is not None:
            kept_words.add(batch, indices, words)
        if predictions:
            chunk = [sentences[i] for i in indices]
            with torch.no_grad():
                scores = tagger.head(pool_words(hidden, batch.token_word, batch.n_words, tagger.aggregation))
            found.update(zip(indices, tagger.decode(scores, chunk, batch), strict=True))
    if predictions:  # every rank tagged its share of the sentences
        tagged = {index: tags for part in gather(found) for index, tags in part.items()}
        predicted = [tagged[index] for index in range(len(sentences))]
    layers, tags = kept.result(vector_words, vector_seed) if vectors else ([], [])
    stats = sums.result() if sums is not None else None
    words = kept_words.result() if kept_words is not None else {}
    return PassResult(stats, layers, tags, predicted if predictions else [], kept_activations, words)
