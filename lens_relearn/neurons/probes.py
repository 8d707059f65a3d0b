"""Layer probes: is the concept still linearly readable from the residual stream?

Pruning can break the use of a concept while the information survives: a linear probe per
layer on the residual stream's word vectors (concept against the rest, scikit-learn's logistic
regression on standardised features), trained on the concept corpus and scored on held-out
sentences, tells the two apart. Beside each probe's accuracy stands the majority-class accuracy
of the same test words, the floor a probe must beat.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.data.alignment import INFERENCE_BATCH
from lens_relearn.data.sentences import Concept, Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.activations import _stream
from lens_relearn.parallel import in_batch_order


def layer_vectors(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    *,
    site: str = "resid",
    aggregation: str = "first",
    progress: bool = False,
) -> tuple[list[Float[np.ndarray, "words units"]], list[str]]:
    """Every word's vector at each layer of a site, and the words' tags, in one (streamed) order.

    Example:
        >>> from lens_relearn import load_model
        >>> vectors, tags = layer_vectors(load_model("tiny-bert"), [Sentence(["Hi", "Oslo"], ["O", "B-LOC"])])
        >>> len(vectors), vectors[0].shape, tags
        (3, (2, 64), ['O', 'B-LOC'])
    """
    kept = WordVectors()
    for batch, _, words, _ in _stream(
        model, sentences, [site], aggregation, INFERENCE_BATCH, "probe vectors", progress
    ):
        kept.add(batch.tags, words[site])
    return kept.result()


class WordVectors:
    """Every word's vectors at each layer of a site, batch by batch, with the words' tags (``layer_vectors``'s core)."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[np.ndarray], list[str]]] = []  # per batch: each layer's vectors, the tags

    def add(self, tags: Sequence[str], layers: Sequence[Tensor]) -> None:
        """Keep one batch: its words' tags and their vectors at every layer."""
        self.batches.append(([layer.float().cpu().numpy() for layer in layers], list(tags)))

    def result(
        self, max_words: int | None = None, seed: int = 0
    ) -> tuple[list[Float[np.ndarray, "words units"]], list[str]]:
        """Each layer's ``[words, units]`` array and the tags, in the order one process adds them
        (under ``torchrun``: every rank's batches, gathered); with ``max_words``, only the words of
        ``sample_words``'s sample (the rest are never copied)."""
        batches = in_batch_order(self.batches)
        tags = [tag for _, batch_tags in batches for tag in batch_tags]
        kept = sample_words(len(tags), max_words, seed)
        per_layer = list(zip(*(vectors for vectors, _ in batches), strict=True))
        if kept is None:
            return [np.concatenate(chunks) for chunks in per_layer], tags
        starts = np.cumsum([0] + [len(batch_tags) for _, batch_tags in batches])
        rows = [kept[(kept >= start) & (kept < end)] - start for start, end in itertools.pairwise(starts)]
        layers = [np.concatenate([chunk[at] for chunk, at in zip(chunks, rows, strict=True)]) for chunks in per_layer]
        return layers, [tags[i] for i in kept]


def sample_words(n: int, max_words: int | None, seed: int) -> np.ndarray | None:
    """The positions, in order, of a seeded sample of ``max_words`` of ``n`` words (None: keep every word).

    Example:
        >>> sample_words(10, 3, seed=0).tolist(), sample_words(10, 20, seed=0)
        ([5, 6, 9], None)
    """
    if max_words is None or n <= max_words:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_words, replace=False))


def fit_probe(
    train: Float[np.ndarray, "words units"],
    train_labels: Bool[np.ndarray, " words"],
    test: Float[np.ndarray, "test_words units"],
    test_labels: Bool[np.ndarray, " test_words"],
    *,
    seed: int = 0,
) -> dict:
    """Train a logistic-regression probe and score it: ``accuracy``, ``f1`` (of the concept class),
    ``majority`` (the accuracy of always answering the test words' commoner class).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 5)); y = x[:, 0] > 0
        >>> round(fit_probe(x[:100], y[:100], x[100:], y[100:])["accuracy"], 2) >= 0.95
        True
    """
    if train_labels.all() or not train_labels.any():
        raise LensRelearnError("A probe needs training words of the concept and of the rest.")
    from sklearn.linear_model import LogisticRegression  # scikit-learn takes about a second to import: not at start-up
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cg", max_iter=1000, random_state=seed))
    probe.fit(train, train_labels)
    predicted = probe.predict(test)
    share = float(test_labels.mean())
    return {
        "accuracy": float((predicted == test_labels).mean()),
        "f1": float(f1_score(test_labels, predicted, zero_division=0.0)),
        "majority": max(share, 1 - share),
    }


def layer_probes(
    model: TransformerBridge,
    train: Sequence[Sentence],
    train_concept: Concept,
    test: Sequence[Sentence],
    test_concept: Concept,
    *,
    aggregation: str = "first",
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """One probe a layer of the residual stream: trained on ``train``, scored on ``test``.

    Args:
        model: A bridge (pruning hooks on it act first).
        train: The concept corpus.
        train_concept: The concept as ``train`` labels it.
        test: Held-out sentences (the NER test split).
        test_concept: The concept as ``test`` labels it.
        aggregation: How sub-token vectors make a word's vector.
        seed: The probes' seed.
        progress: Show progress bars.

    Returns:
        One row a residual layer: ``layer``, ``accuracy``, ``f1``, ``majority``.
    """
    train_vectors, train_tags = layer_vectors(model, train, aggregation=aggregation, progress=progress)
    test_vectors, test_tags = layer_vectors(model, test, aggregation=aggregation, progress=progress)
    return probe_layers(train_vectors, train_tags, train_concept, test_vectors, test_tags, test_concept, seed=seed)


def probe_layers(
    train_vectors: Sequence[Float[np.ndarray, "words units"]],
    train_tags: Sequence[str],
    train_concept: Concept,
    test_vectors: Sequence[Float[np.ndarray, "test_words units"]],
    test_tags: Sequence[str],
    test_concept: Concept,
    *,
    seed: int = 0,
    max_train: int | None = None,
) -> pd.DataFrame:
    """``layer_probes`` on word vectors at hand (``layer_vectors``, or a shared pass's): one probe a layer.

    Args:
        max_train: Train on at most this many words, a subsample drawn by ``seed`` (None: every word). A
            probe's accuracy settles long before a large corpus is used up, while its fitting time grows
            with the words.

    Returns:
        One row a layer: ``layer``, ``accuracy``, ``f1``, ``majority``.

    Example:
        >>> from lens_relearn.data.sentences import CONLL_TAGS, find_concept
        >>> loc, rng = find_concept("LOC", CONLL_TAGS), np.random.default_rng(0)
        >>> tags = ["B-LOC", "O"] * 50
        >>> vectors = [np.where(np.array(tags)[:, None] == "O", -5.0, 5.0) + rng.normal(size=(100, 3))]
        >>> probe_layers(vectors, tags, loc, vectors, tags, loc, max_train=40).accuracy.tolist()
        [1.0]
    """
    train_labels = np.array([train_concept.covers(tag) for tag in train_tags])
    test_labels = np.array([test_concept.covers(tag) for tag in test_tags])
    sample = sample_words(len(train_labels), max_train, seed)
    kept = np.arange(len(train_labels)) if sample is None else sample
    rows = []
    for layer, (fit_on, score_on) in enumerate(zip(train_vectors, test_vectors, strict=True)):
        probe = fit_probe(fit_on[kept], train_labels[kept], score_on, test_labels, seed=seed)
        rows.append({"layer": layer, **probe})
    return pd.DataFrame(rows)
