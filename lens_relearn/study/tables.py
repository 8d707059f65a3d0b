"""Reading a relearning study: token similarity, per-neuron and per-layer tables, primed neurons.

Similarity (docs/design.md §7): a neuron's top tokens at two stages are compared as the
cosine between the mean embedding vectors of the two token lists. The default embedder is the
base model's own input embedding matrix (a word is the mean of its sub-token embeddings), which
works offline for any model; any ``Embedder`` (e.g. FastText vectors) can replace it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.data.alignment import is_byte_level
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import wrapped_model
from lens_relearn.neurons.activations import TopTokens, composition_entropy
from lens_relearn.neurons.ranking import OUTSIDE, Ranking

Embedder = Callable[[Sequence[str]], Float[Tensor, "words dim"]]


SALIENT = 0.5  # the paper's threshold on normalised saliency
SHARE = "share_"  # a neuron table's class-composition columns: share_O, share_LOC, ...


class InputEmbedder:
    """Word vectors from a model's input embedding matrix (mean over a word's sub-tokens).

    Example:
        >>> from lens_relearn import load_model
        >>> embed = InputEmbedder(load_model("tiny-bert"))
        >>> tuple(embed(["Oslo", "Bergen"]).shape)
        (2, 64)
    """

    def __init__(self, model: TransformerBridge) -> None:
        self.tokenizer = model.tokenizer
        weight = wrapped_model(model).get_input_embeddings().weight
        if not isinstance(weight, Tensor):
            raise LensRelearnError(f"{type(model).__name__}'s input embedding has no weight matrix.")
        self.matrix = weight.detach().float().cpu().clone()
        self.prefix = " " if is_byte_level(self.tokenizer) else ""
        self.rows: dict[str, int] = {}  # every word seen: its row in ``vectors``
        self.vectors = torch.zeros(0, self.matrix.shape[1])

    def __call__(self, words: Sequence[str]) -> Float[Tensor, "words dim"]:
        new = list(dict.fromkeys(word for word in words if word not in self.rows))
        if new:  # one call of the tokenizer for every word not seen yet
            tokenized = self.tokenizer([self.prefix + word for word in new], add_special_tokens=False)["input_ids"]
            added = [self.matrix[ids].mean(0) if ids else torch.zeros(self.matrix.shape[1]) for ids in tokenized]
            self.rows.update(zip(new, range(len(self.rows), len(self.rows) + len(new)), strict=True))
            self.vectors = torch.cat([self.vectors, torch.stack(added)])
        return self.vectors[torch.tensor([self.rows[word] for word in words], dtype=torch.long)]


def token_vector(embedder: Embedder, tokens: Sequence[tuple[str, float]] | Sequence[str]) -> Tensor:
    """The mean embedding of a list of top tokens (``(word, score)`` pairs or words)."""
    return embedder(_words(tokens)).mean(0)


def _words(tokens: Sequence[tuple[str, float]] | Sequence[str]) -> list[str]:
    return [t[0] if isinstance(t, tuple) else t for t in tokens]


def token_vectors(
    embedder: Embedder, tokens: Sequence[Sequence[tuple[str, float]] | Sequence[str]]
) -> Float[Tensor, "neurons dim"]:
    """``token_vector`` of each neuron's top tokens, stacked (the embedder is called once, with every word)."""
    words = [_words(neuron_tokens) for neuron_tokens in tokens]
    vectors = embedder([word for neuron_words in words for word in neuron_words])
    lengths = [len(neuron_words) for neuron_words in words]
    if len(set(lengths)) == 1:  # as many tokens for every neuron: one mean, the same numbers
        return vectors.reshape(len(lengths), lengths[0], -1).mean(1)
    return torch.stack([part.mean(0) for part in vectors.split(lengths)])


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity along the last dimension (0 where a vector is zero)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)


def neuron_table(
    ranking: Ranking,
    described: TopTokens,
    vectors: Float[Tensor, "neurons dim"],
    *,
    base_vectors: Float[Tensor, "neurons dim"] | None,
    concept_vector: Tensor,
    pruned: Sequence[tuple[int, int]] = (),
) -> pd.DataFrame:
    """One row a neuron: score, ranking position, saliency, top tokens and their similarities.

    Args:
        ranking: The stage's ranking.
        described: The stage's top tokens (for every neuron of the ranking).
        vectors: Their ``token_vectors``, for the similarities.
        base_vectors: The base model's, for ``similarity_to_base`` (None at the base stage: the
            column is then 1.0).
        concept_vector: The mean vector of the concept's words, for ``concept_similarity``.
        pruned: The pruned neurons, flagged in ``pruned``.

    Returns:
        One row a neuron; with the class composition of its top-activating words when
        ``described`` has it: a ``share_{class}`` column a class and their ``entropy`` in bits.
    """
    to_base = torch.ones(len(vectors)) if base_vectors is None else cosine(vectors, base_vectors)
    layers = [n.layer for n in described.neurons]
    indices = [n.index for n in described.neurons]
    at = (torch.tensor(layers), torch.tensor(indices))
    pruned_set = {tuple(n) for n in pruned}
    table = pd.DataFrame(
        {
            "layer": layers,
            "index": indices,
            "score": ranking.scores[at].tolist(),
            "position": ranking.positions()[at].tolist(),
            "saliency": ranking.saliency()[at].tolist(),
            "pruned": [(l, i) in pruned_set for l, i in zip(layers, indices, strict=True)],
            "top_tokens": [" ".join(word for word, _ in tokens) for tokens in described.tokens],
            "similarity_to_base": to_base.tolist(),
            "concept_similarity": cosine(vectors, concept_vector.expand_as(vectors)).tolist(),
        }
    )
    if described.composition is not None:
        for column, kind in enumerate(described.classes):
            table[SHARE + kind] = described.composition[:, column].tolist()
        table["entropy"] = composition_entropy(described.composition).tolist()
    return table


def layer_table(ranking: Ranking, pruned: Sequence[tuple[int, int]] = ()) -> pd.DataFrame:
    """Per layer: mean saliency with its 95% interval, and the share of salient survivors.

    ``salient_share`` is the share of the layer's surviving (unpruned) neurons with saliency
    above 0.5: the paper's redistribution table.
    """
    saliency = ranking.saliency()
    survivors = torch.ones_like(saliency, dtype=torch.bool)
    for layer, index in pruned:
        survivors[layer, index] = False
    rows = ranking.layer_saliency()
    for row in rows:
        alive = saliency[row["layer"]][survivors[row["layer"]]]
        row["salient_share"] = float((alive > SALIENT).float().mean()) if alive.numel() else math.nan
        row["survivors"] = int(alive.numel())
    return pd.DataFrame(rows)


def primed_neurons(base: pd.DataFrame, final: pd.DataFrame, *, top: int, concept: Sequence[str]) -> pd.DataFrame:
    """Neurons that carry the concept after retraining but did not before pruning, and how they blend.

    A primed neuron is among the ``top`` of the final ranking, was not among the ``top`` of the
    base ranking, and was not pruned. Each row shows what it encoded before (its base top tokens,
    saliency and concept similarity) and after, and its blend (docs/design.md §19): its old
    class, the entity class other than the concept (and other than ``O``/``N/A``) with the
    largest share of its top-activating words at base (none if it had no such word), and the
    shares of that class and of the concept before and after. The blend score is twice the
    smaller of the two shares after: 1 when the neuron's top words split evenly between its
    old class and the concept, 0 when either is gone.

    Args:
        base: The base stage's ``neuron_table``.
        final: The last round's ``neuron_table`` (same neurons).
        top: How many best-ranked neurons count as carrying the concept.
        concept: The concept's classes as the tables' ``share_`` columns name them.

    Example:
        >>> base = pd.DataFrame({"layer": [0, 0], "index": [0, 1], "position": [5, 0], "saliency": [0.2, 1.0],
        ...     "pruned": [False, False], "top_tokens": ["Ada", "Oslo"], "concept_similarity": [0.1, 0.9],
        ...     "similarity_to_base": [1.0, 1.0], "share_O": [0.2, 0.0], "share_PER": [0.8, 0.0],
        ...     "share_LOC": [0.0, 1.0], "entropy": [0.72, 0.0]})
        >>> final = base.assign(position=[0, 5], share_PER=[0.4, 0.0], share_LOC=[0.4, 1.0], share_O=[0.2, 0.0])
        >>> primed_neurons(base, final, top=1, concept=["LOC"])[["old_class", "old_share_after", "blend"]]
          old_class  old_share_after  blend
        0       PER              0.4    0.8
    """
    merged = final.merge(base, on=["layer", "index"], suffixes=("", "_base"))
    chosen = merged[(merged.position < top) & (merged.position_base >= top) & ~merged.pruned]
    columns = {
        "layer": "layer",
        "index": "index",
        "position_base": "position_before",
        "position": "position_after",
        "saliency_base": "saliency_before",
        "saliency": "saliency_after",
        "top_tokens_base": "top_tokens_before",
        "top_tokens": "top_tokens_after",
        "concept_similarity_base": "concept_similarity_before",
        "concept_similarity": "concept_similarity_after",
        "similarity_to_base": "similarity_to_base",
    }
    primed = chosen.sort_values("position")[list(columns)].rename(columns=columns).reset_index(drop=True)
    classes = [c[len(SHARE) :] for c in final.columns if c.startswith(SHARE)]
    if not classes:
        return primed
    rows = chosen.sort_values("position").reset_index(drop=True)
    concept_share = [SHARE + c for c in concept]
    others = [SHARE + c for c in classes if c not in concept and c not in OUTSIDE]
    before = rows[[c + "_base" for c in others]].set_axis(others, axis=1)
    has_old = before.sum(axis=1) > 0
    old = before.idxmax(axis=1).where(has_old) if others else pd.Series(None, index=rows.index, dtype=object)
    primed["old_class"] = old.str.removeprefix(SHARE)
    primed["old_share_before"] = [rows.at[i, c + "_base"] if isinstance(c, str) else math.nan for i, c in old.items()]
    primed["old_share_after"] = [rows.at[i, c] if isinstance(c, str) else math.nan for i, c in old.items()]
    primed["concept_share_before"] = rows[[c + "_base" for c in concept_share]].sum(axis=1)
    primed["concept_share_after"] = rows[concept_share].sum(axis=1)
    primed["blend"] = 2 * primed[["old_share_after", "concept_share_after"]].min(axis=1, skipna=False)
    primed["entropy_before"] = rows.entropy_base
    primed["entropy_after"] = rows.entropy
    return primed


RECOVERY_SHARES = (0.5, 0.9)  # the shares of the base concept F1 whose first crossing a recovery curve reports


def recovery_measures(curve: pd.DataFrame, base: float) -> dict:
    """How fast a concept came back: steps and sentences to reach shares of its base F1, and the area under the curve.

    Args:
        curve: One arm's points since pruning (``step`` 0 is the pruned model), with ``step``,
            ``examples`` and ``concept_f1``.
        base: The base model's concept F1 on the same sentences.

    Returns:
        ``steps_to_50``/``steps_to_90`` and ``examples_to_50``/``examples_to_90``: the first point
        at or above that share of ``base`` (None if never reached); ``auc``: the mean share of
        ``base`` over the steps, by trapezoids (1.0: at base F1 throughout); ``steps``: the last step.

    Example:
        >>> curve = pd.DataFrame({"step": [0, 10, 20, 30], "examples": [0, 160, 320, 480],
        ...                       "concept_f1": [0.0, 0.5, 0.8, 0.9]})
        >>> measures = recovery_measures(curve, 0.9)
        >>> measures["steps_to_50"], measures["examples_to_90"], round(measures["auc"], 3), measures["steps"]
        (10, 480, 0.648, 30)
    """
    curve = curve.sort_values("step")
    share = curve.concept_f1.to_numpy() / base if base > 0 else np.full(len(curve), np.nan)
    measures: dict = {}
    for fraction in RECOVERY_SHARES:
        reached = curve[share >= fraction]
        percent = round(100 * fraction)
        measures[f"steps_to_{percent}"] = int(reached.step.iloc[0]) if len(reached) else None
        measures[f"examples_to_{percent}"] = int(reached.examples.iloc[0]) if len(reached) else None
    steps = curve.step.to_numpy(dtype=float)
    span = steps[-1] - steps[0]
    measures["auc"] = float(np.trapezoid(share, steps) / span) if span > 0 and base > 0 else None
    measures["steps"] = int(steps[-1])
    return measures
