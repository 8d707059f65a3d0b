"""Ranking neurons by how much they carry a concept, and the paper's normalised saliency.

With mu_c a neuron's mean activation over the words of class c and C the concept:

- ``probeless`` (the default, the paper's): Antverg & Belinkov's probe-free score as NeuroX
  computes it (``probeless.get_neuron_ordering_for_tag``): sum over classes c other than C of
  |mu_C - mu_c|. ``O`` is one of those classes, so a neuron that tells any entity from ``O``
  scores high too: pruning by it removes other entity types with the concept (docs/design.md §17).
- ``binary``: the concept against all other words pooled, |mu_C - mu_rest|.
- ``entity_contrast``: the concept against the other entity classes only, sum over entity
  classes c other than C of |mu_C - mu_c|; the outside classes (``O``, NeuroX's ``N/A``) are
  left out, so a neuron firing on every entity alike scores 0.
- ``importance_ratio``: selective pruning's importance ratio (Pochinkov & Schoots, 2024,
  "Dissecting language models: machine unlearning via selective pruning"): the mean |activation|
  on the concept's words (the forget set) over the mean |activation| on the rest (the retain
  set). Here the retain set weighs each other class equally (the mean of their class means), as
  ``O`` would otherwise be nearly all of it.
- ``attribution``: needs the tagger, so it is ``rank_by_attribution``
  (``lens_relearn.neurons.attribution``), not ``rank_neurons``.

A concept of several classes (OntoNotes' ``GPE,LOC``) is one class here: mu_C is the mean over
the words of all its classes. Neurons are ranked by score, descending, globally across layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from einops import rearrange, repeat
from jaxtyping import Float, Int
from torch import Tensor

from lens_relearn.data.sentences import Concept
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import ActivationStats
from lens_relearn.stats import interval

Method = Literal["probeless", "binary", "entity_contrast", "importance_ratio", "attribution"]
METHODS: tuple[Method, ...] = get_args(Method)
OUTSIDE = ("O", "N/A")  # the classes of words outside every entity: IOB's and NeuroX's
RATIO_FLOOR = 1e-6  # keeps importance_ratio finite for a neuron silent on the retain set
BUCKET = 100  # the paper's rank bucket: the top 100 neurons share saliency 1.0


def normalised_saliency(n: int) -> Float[Tensor, " n"]:
    """Normalised saliency of ranking positions 0 .. n-1: 1.0 for the top 100, falling to 0.

    The paper's formula: ``rank = idx // 100 + 1``, ``min_rank = n / 100``,
    ``saliency = |(rank - min_rank) / (1 - min_rank)|``. It is used as it is wherever it falls
    with rank, that is for ``rank <= min_rank``; two places where it does not are defined here:

    - The last bucket, when ``n`` is not a multiple of 100, lies past ``min_rank`` and the
      absolute value reflects it upwards (n = 9,216: 0.0092 after 0.0018; n = 512: 0.21 after
      0.029; n = 150: 1.0 for every neuron). Here it is 0. In the paper's own setting
      (n = 5,376) that turns its last bucket's 0.0045 into 0, which moves a layer's mean
      saliency by less than 0.001.
    - ``n <= 100``: every neuron is in the top 100 and gets 1.0 (the formula's own value for
      n < 100; at n = 100 it is 0 / 0).

    The result is finite, in [0, 1] and non-increasing in rank for every ``n``.

    Example:
        >>> s = normalised_saliency(5376)
        >>> float(s[0]), float(s[99]), round(float(s[100]), 4), float(s[-1])
        (1.0, 1.0, 0.981, 0.0)
        >>> [round(v, 3) for v in normalised_saliency(512)[::100].tolist()]
        [1.0, 0.757, 0.515, 0.272, 0.029, 0.0]
    """
    if n <= BUCKET:
        return torch.ones(n, dtype=torch.float64)
    rank = torch.arange(n, dtype=torch.float64) // BUCKET + 1
    min_rank = n / BUCKET
    return ((min_rank - rank) / (min_rank - 1)).clamp(0, 1)


@dataclass(frozen=True)
class Ranking:
    """Neurons of one site ordered by their score for a concept, best first.

    Attributes:
        concept: The concept's class name.
        method: The ranking method (``METHODS``).
        site: The neuron site.
        scores: The raw score of every neuron, by layer and unit.
    """

    concept: str
    method: str
    site: str
    scores: Float[Tensor, "layers units"]

    @property
    def order(self) -> Int[Tensor, " neurons"]:
        """Flat neuron indices (``layer * units + unit``), best first; ties keep index order."""
        return torch.argsort(-rearrange(self.scores, "layers units -> (layers units)"), stable=True)

    @property
    def n_neurons(self) -> int:
        """Neurons ranked."""
        return self.scores.numel()

    def neurons(self) -> list[Neuron]:
        """All neurons, best first."""
        layers, units = self.scores.shape
        layer_of = repeat(torch.arange(layers), "layers -> (layers units)", units=units)
        unit_of = repeat(torch.arange(units), "units -> (layers units)", layers=layers)
        order = self.order
        return [
            Neuron(layer, unit) for layer, unit in zip(layer_of[order].tolist(), unit_of[order].tolist(), strict=True)
        ]

    def top(self, k: int) -> list[Neuron]:
        """The ``k`` best neurons."""
        if not 0 <= k <= self.n_neurons:
            raise LensRelearnError(f"k={k} is out of range: the site {self.site!r} has {self.n_neurons} neurons.")
        return self.neurons()[:k]

    def top_fraction(self, fraction: float) -> list[Neuron]:
        """The best ``fraction`` of all neurons (rounded to the nearest count)."""
        if not 0 <= fraction <= 1:
            raise LensRelearnError(f"A fraction of neurons must lie in [0, 1], got {fraction}.")
        return self.top(round(fraction * self.n_neurons))

    def counts_per_layer(self, neurons: Sequence[tuple[int, int]]) -> list[int]:
        """How many of some neurons lie in each layer."""
        counts = [0] * self.scores.shape[0]
        for layer, _ in neurons:
            counts[layer] += 1
        return counts

    def positions(self) -> Int[Tensor, "layers units"]:
        """Each neuron's 0-based position in the ranking."""
        positions = torch.empty(self.n_neurons, dtype=torch.long)
        positions[self.order] = torch.arange(self.n_neurons)
        return rearrange(positions, "(layers units) -> layers units", units=self.scores.shape[1])

    def saliency(self) -> Float[Tensor, "layers units"]:
        """The paper's normalised saliency of every neuron (see ``normalised_saliency``)."""
        return normalised_saliency(self.n_neurons)[self.positions()]

    def layer_saliency(self, exclude: Sequence[tuple[int, int]] = ()) -> list[dict]:
        """Mean normalised saliency per layer with a 95% confidence interval (``lens_relearn.stats.interval``).

        Args:
            exclude: Neurons to leave out (e.g. pruned ones, to look at the survivors).

        Returns:
            One dict a layer: ``layer``, ``mean``, ``low``, ``high``, ``n`` (Student's t
            interval; zero width for a layer of one neuron, NaN for a layer with none left).
        """
        saliency = self.saliency()
        keep = torch.ones_like(saliency, dtype=torch.bool)
        for layer, index in exclude:
            keep[layer, index] = False
        return [
            {"layer": layer, **interval(saliency[layer][keep[layer]].tolist())} for layer in range(saliency.shape[0])
        ]


def rank_neurons(
    stats: ActivationStats,
    concept: str | Concept,
    *,
    method: str = "probeless",  # str, not Method: checked below, with advice
) -> Ranking:
    """Rank a site's neurons by how much they carry a concept.

    Args:
        stats: Activation statistics from ``collect_stats``.
        concept: The concept's class name (``"LOC"``), several joined by commas (``"GPE,LOC"``:
            their words are pooled into one class), or a ``Concept``.
        method: ``probeless``, ``binary``, ``entity_contrast`` or ``importance_ratio`` (see the
            module docstring).

    Returns:
        The ranking, with every neuron's raw score.

    Raises:
        LensRelearnError: The concept has no word in the corpus (the message lists the classes
            present), no other class has any word, or the method is unknown.

    Example:
        >>> import torch
        >>> from lens_relearn.neurons.activations import ActivationStats
        >>> total = torch.tensor([[[0.0, 5.0]], [[1.0, 1.0]]], dtype=torch.float64)  # O, LOC
        >>> stats = ActivationStats("mlp", "first", ("O", "LOC"), torch.tensor([1, 1]), total, total ** 2, total.abs())
        >>> rank_neurons(stats, "LOC").top(2)
        [Neuron(layer=0, index=1), Neuron(layer=0, index=0)]
    """
    if method not in METHODS:
        raise LensRelearnError(f"Unknown ranking method {method!r}; choose one of {', '.join(METHODS)}.")
    if method == "attribution":
        raise LensRelearnError(
            "The attribution ranking needs the tagger and its loss: use "
            "lens_relearn.neurons.attribution.rank_by_attribution(tagger, sentences, concept)."
        )
    name = concept.name if isinstance(concept, Concept) else concept
    members = concept.members if isinstance(concept, Concept) else tuple(c.strip() for c in name.split(","))
    present = [c for c, n in zip(stats.classes, stats.count.tolist(), strict=True) if n > 0]
    if missing := [member for member in members if member not in present]:
        raise LensRelearnError(
            f"The concept {name!r} has no word in the corpus (no {', '.join(missing)}); "
            f"the classes present are {', '.join(present) or 'none'}."
        )
    concept_rows = [stats.classes.index(member) for member in members]
    others = [i for i, c in enumerate(stats.classes) if c not in members and stats.count[i] > 0]
    if method == "entity_contrast":
        others = [i for i in others if stats.classes[i] not in OUTSIDE]
    if not others:
        kind = "entity class" if method == "entity_contrast" else "class"
        raise LensRelearnError(
            f"The {method} ranking needs words of another {kind} than {name!r}; "
            f"the classes present are {', '.join(present)}."
        )
    in_concept = stats.count[concept_rows].sum().to(stats.total.dtype)
    concept_mean = stats.total[concept_rows].sum(0) / in_concept
    if method in ("probeless", "entity_contrast"):
        scores = (concept_mean - stats.class_means()[others]).abs().sum(0)
    elif method == "binary":
        rest = stats.total[others].sum(0) / stats.count[others].sum()
        scores = (concept_mean - rest).abs()
    else:
        forget = stats.total_abs[concept_rows].sum(0) / in_concept
        retain = (stats.total_abs[others] / stats.count[others].view(-1, 1, 1).to(stats.total.dtype)).mean(0)
        scores = forget / (retain + RATIO_FLOOR)
    return Ranking(name, method, stats.site, scores.float())
