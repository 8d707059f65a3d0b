"""Linear concept erasure (LEACE, Belrose et al. 2023), fitted layer after layer on the residual stream.

For vectors ``x`` and a concept indicator ``z``, LEACE is the edit of least mean squared change
after which ``x`` and ``z`` have zero covariance: ``r(x) = x - W⁺ P W (x - E[x])``, where ``W``
whitens ``x`` (``Σ_xx^-1/2`` on its support) and ``P`` projects onto the column space of
``W Σ_xz``. Zero covariance means that no linear classifier reads ``z`` from ``r(x)`` better than
a constant does, for any convex loss, on the distribution the eraser was fitted on; nothing is
said of nonlinear read-outs, nor of other distributions (docs/design.md §24).

``erase_concept`` fits one eraser at every layer of the ``resid`` site (the embeddings' output,
then each block's), on the word vectors of a corpus pooled as the study pools them, each layer's
with the earlier layers' erasers in place ("concept scrubbing"). The erasers then act in every
forward pass through permanent hooks at those hook points, on every token, like pruning masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.hook_points import HookPoint, LensHandle
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.data.alignment import INFERENCE_BATCH
from lens_relearn.data.sentences import Concept, Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron, neuron_site
from lens_relearn.neurons.activations import _stream
from lens_relearn.neurons.pruning import take_off
from lens_relearn.parallel import sum_across_ranks

SITE = "resid"


@dataclass(frozen=True)
class Eraser:
    """One layer's LEACE eraser: ``x - ((x - mean) @ down) @ up.T`` (float64; applied in the input's dtype).

    Attributes:
        mean: The fitted vectors' mean.
        down: ``W Q``: whitening, then the erased directions' coordinates.
        up: ``W⁺ Q``: those coordinates back in the vectors' space.
    """

    mean: Float[Tensor, " dim"]
    down: Float[Tensor, "dim rank"]
    up: Float[Tensor, "dim rank"]

    def __call__(self, vectors: Float[Tensor, "*rows dim"]) -> Float[Tensor, "*rows dim"]:
        mean, down, up = (t.to(vectors.device, vectors.dtype) for t in (self.mean, self.down, self.up))
        return vectors - ((vectors - mean) @ down) @ up.T

    @property
    def rank(self) -> int:
        """How many directions it erases (1 for a concept against the rest; 0 if nothing was readable)."""
        return self.down.shape[1]


class Moments:
    """Running float64 sums of vectors and of their products with themselves and a concept indicator."""

    def __init__(self, dim: int) -> None:
        self.count = torch.zeros((), dtype=torch.float64)
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.cross = torch.zeros(dim, dtype=torch.float64)
        self.positives = torch.zeros((), dtype=torch.float64)

    def add(self, vectors: Float[Tensor, "rows dim"], labels: Bool[Tensor, " rows"]) -> None:
        """Add a batch of vectors with their labels."""
        x, z = vectors.detach().double().cpu(), labels.double().cpu()
        self.count += len(x)
        self.total += x.sum(0)
        self.outer += x.T @ x
        self.cross += z @ x
        self.positives += z.sum()

    def eraser(self) -> Eraser:
        """The LEACE eraser of everything added (summed over ranks under ``torchrun``)."""
        for total in (self.count, self.total, self.outer, self.cross, self.positives):
            sum_across_ranks(total)
        n = self.count.item()
        if not 0 < self.positives.item() < n:
            raise LensRelearnError("Erasing a concept needs vectors of the concept and of the rest.")
        mean = self.total / n
        covariance = self.outer / n - torch.outer(mean, mean)
        cross = (self.cross / n - mean * (self.positives / n)).unsqueeze(1)  # dim x 1
        values, vectors = torch.linalg.eigh(covariance)
        support = values > values.max() * len(values) * torch.finfo(values.dtype).eps
        values, vectors = values[support], vectors[:, support]
        whiten = vectors @ torch.diag(values.rsqrt()) @ vectors.T
        unwhiten = vectors @ torch.diag(values.sqrt()) @ vectors.T
        direction = whiten @ cross
        norm = direction.norm()
        basis = direction / norm if norm > 0 else direction[:, :0]
        return Eraser(mean, whiten @ basis, unwhiten @ basis)


def fit_eraser(vectors: Float[Tensor, "rows dim"], labels: Bool[Tensor, " rows"]) -> Eraser:
    """The LEACE eraser of a concept indicator from vectors.

    Example:
        >>> x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
        >>> z = x[:, 0] + 0.5 * x[:, 1] > 0
        >>> erased = fit_eraser(x, z)(x.double())
        >>> bool(((erased - erased.mean(0)).T @ (z.double() - z.double().mean())).abs().max() < 1e-10)
        True
    """
    moments = Moments(vectors.shape[1])
    moments.add(vectors, labels)
    return moments.eraser()


@dataclass(frozen=True)
class ErasedConcept:
    """The erasers acting in a model (``AppliedRemoval``: it prunes no neuron), and the handle to take them off."""

    erasers: tuple[Eraser, ...]
    _hooks: tuple[tuple[HookPoint, LensHandle], ...] = field(default=(), repr=False, compare=False)

    @property
    def neurons(self) -> tuple[Neuron, ...]:
        """None: erasure edits directions, not units."""
        return ()

    def regrowth(self) -> dict:
        """Nothing to regrow: no weight was zeroed."""
        return {"norm": 0.0, "per_layer": {}}

    def remove(self) -> None:
        """Take the erasers' hooks off; the model computes what it did before."""
        take_off(self._hooks)

    def save(self, path: str | Path) -> None:
        """Write the erasers to a safetensors file (its folder made if needed; under ``torchrun``, rank 0 writes)."""
        tensors = {
            f"{layer}.{name}": getattr(eraser, name).contiguous()
            for layer, eraser in enumerate(self.erasers)
            for name in ("mean", "down", "up")
        }
        replace_file(path, lambda staging: safetensors.torch.save_file(tensors, str(staging)))


def apply_erasers(model: TransformerBridge, erasers: Sequence[Eraser]) -> ErasedConcept:
    """Put one eraser a layer of the ``resid`` site into the model for good (permanent hooks)."""
    names = neuron_site(model, SITE).hook_names
    if len(erasers) > len(names):
        raise LensRelearnError(f"{len(erasers)} erasers for the {len(names)} layers of site {SITE!r}.")
    hooks = []
    for name, eraser in zip(names, erasers, strict=False):
        hook_point = model.hook_dict[name]
        hooks.append((hook_point, hook_point.add_hook(_erasing(eraser), is_permanent=True)))
    return ErasedConcept(tuple(erasers), tuple(hooks))


def load_erasers(model: TransformerBridge, path: str | Path) -> ErasedConcept:
    """``apply_erasers`` with the erasers ``ErasedConcept.save`` wrote."""
    tensors = safetensors.torch.load_file(str(path))
    layers = sorted({int(key.split(".")[0]) for key in tensors})
    erasers = [Eraser(*(tensors[f"{layer}.{name}"] for name in ("mean", "down", "up"))) for layer in layers]
    return apply_erasers(model, erasers)


def erase_concept(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    concept: Concept,
    *,
    aggregation: str = "first",
    progress: bool = True,
) -> ErasedConcept:
    """Fit an eraser at each layer of the ``resid`` site, in order, each with the earlier ones in place,
    and leave them all in the model.

    Args:
        model: A bridge (changed in place: the erasers stay until ``remove()``).
        sentences: The corpus the erasers are fitted on (words of the concept and of the rest).
        concept: The concept, as ``sentences`` label it.
        aggregation: How sub-token vectors make a word's vector (as the study pools words).
        progress: Show progress bars.

    Example:
        >>> from lens_relearn import load_model, load_ner
        >>> from lens_relearn.data import find_concept
        >>> data = load_ner("synthetic", n_train=0, n_validation=20, n_test=0, n_novel=0)
        >>> erased = erase_concept(load_model("tiny-bert"), data.validation, find_concept("LOC", data.labels),
        ...                        progress=False)
        >>> len(erased.erasers), erased.erasers[0].rank
        (3, 1)
        >>> erased.remove()
    """
    names = neuron_site(model, SITE).hook_names
    erased = apply_erasers(model, [])
    try:
        for layer in range(len(names)):
            moments = Moments(model.cfg.d_model)
            for batch, _, words, _ in _stream(
                model, sentences, [SITE], aggregation, INFERENCE_BATCH, f"erasing layer {layer}", progress
            ):
                labels = torch.tensor([concept.covers(tag) for tag in batch.tags])
                moments.add(words[SITE][layer], labels)
            erased.remove()
            erased = apply_erasers(model, [*erased.erasers, moments.eraser()])
    except BaseException:
        erased.remove()
        raise
    return erased


def _erasing(eraser: Eraser) -> Callable:
    """A hook that erases the concept from every position's vector, out of place."""

    def erase(activation: Tensor, hook: HookPoint) -> Tensor:
        return eraser(activation)

    return erase
