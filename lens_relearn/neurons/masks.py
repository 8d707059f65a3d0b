"""Learning which units to remove: a gate a unit, optimised so that the concept is lost and the rest kept.

Each unit of a site gets a removal score ``sigmoid(theta)``. In every forward pass exactly the
``k`` units with the highest scores are removed (multiplied by 0) and the rest kept, while the
gradient flows through the scores as if the gates were soft (a straight-through top-k,
docs/design.md §24): the budget of ``k`` units holds at every step, so no sparsity term has to be
weighed against the others to meet it. The tagger's weights are frozen and its dropout off; only
the scores learn, on batches of the training split drawn by the seed, by gradient steps with
momentum, each gradient divided by its root mean square over all units: a unit's logit moves in
proportion to how much its removal matters, not by the same amount for every unit, as Adam's
per-unit scaling would move them. The objective:

- **forget**: the concept's words are pushed to the outside tag (``forget="outside"``, the
  default: the cross-entropy towards ``O``), or only made to lose their own tag
  (``forget="tag"``: the unlikelihood ``-log(1 - p(tag))``, bounded below where the raw loss of
  the tag is not, and indifferent to what the words become). On MiniLM the second is far less
  selective (docs/findings.md);
- **retain**: every other word keeps the distribution the tagger gave it before any removal
  (the KL divergence from it), each class of words weighted by the inverse of its count in
  the training split, so that the other entity types are not swamped by ``O``.

The units removed are the final top ``k``: ``PruneSpec.apply`` prunes them as it prunes ranked
neurons, so retraining and every analysis treat them alike.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from tqdm.auto import tqdm

from lens_relearn.data.sentences import Concept, Sentence, entity_class
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron, neuron_site
from lens_relearn.neurons.ranking import OUTSIDE
from lens_relearn.parallel import is_main
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.training import length_grouped_batches

MaskForget = Literal["tag", "outside"]
FORGET: tuple[MaskForget, ...] = get_args(MaskForget)


@dataclass(frozen=True)
class LearnedMask:
    """What ``learn_mask`` found.

    Attributes:
        neurons: The ``k`` units removed, sorted by ``(layer, index)``.
        scores: Every unit's final removal score (``sigmoid(theta)``), ``[layers, units]``.
        forget: The forget term at every step.
        retain: The retain term at every step.
        seconds: Wall time of the optimisation.
    """

    neurons: tuple[Neuron, ...]
    scores: Float[Tensor, "layers units"]
    forget: tuple[float, ...]
    retain: tuple[float, ...]
    seconds: float

    @property
    def steps(self) -> int:
        """Optimisation steps taken."""
        return len(self.forget)


def learn_mask(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    concept: Concept,
    k: int,
    *,
    site: str = "mlp",
    steps: int = 100,
    lr: float = 0.05,
    forget: str = "outside",  # str, not MaskForget: checked below, with advice
    batch_size: int = 16,
    seed: int = 0,
    exclude: Sequence[Neuron] = (),
    progress: bool = True,
) -> LearnedMask:
    """Learn which ``k`` units of ``site`` to remove so that ``concept`` is lost and the other words kept.

    Args:
        tagger: The trained tagger (left as it was found: weights, mode, hooks).
        sentences: Training sentences (never the test split), with the concept among their tags.
        concept: The concept to remove, as ``sentences`` label it.
        k: Units to remove.
        site: ``"mlp"`` or ``"resid"``.
        steps: Optimisation steps, a batch each.
        lr: The step size of the scores' logits (a step moves them by ``lr`` in root mean square).
        forget: ``"outside"`` (the concept's words become ``O``) or ``"tag"`` (they lose their tag).
        batch_size: Sentences a step.
        seed: Seeds the batches and the logits' tie-breaking start.
        exclude: Units never chosen (those an iterative removal has already pruned).
        progress: Show a progress bar.

    Example:
        >>> from lens_relearn import load_model, load_ner
        >>> from lens_relearn.data import find_concept
        >>> data = load_ner("synthetic", n_train=16, n_validation=0, n_test=0, n_novel=0)
        >>> tagger = Tagger(load_model("tiny-bert"), data.labels)
        >>> mask = learn_mask(tagger, data.train, find_concept("LOC", data.labels), 3, steps=2, progress=False)
        >>> len(mask.neurons), mask.steps, tuple(mask.scores.shape)
        (3, 2, (2, 256))
    """
    where = neuron_site(tagger.model, site)
    if not 0 < k <= where.n_neurons - len(set(exclude)):
        raise LensRelearnError(
            f"A learned mask removes 1 to {where.n_neurons - len(set(exclude))} units of site {site!r} "
            f"({len(set(exclude))} of its {where.n_neurons} excluded), not {k}."
        )
    if steps < 1 or lr <= 0:
        raise LensRelearnError(f"A learned mask needs steps >= 1 and lr > 0; got steps={steps}, lr={lr}.")
    if forget not in FORGET:
        raise LensRelearnError(f"Unknown forget term {forget!r} of a learned mask; choose one of {', '.join(FORGET)}.")
    outside = [tagger.label_index[label] for label in tagger.labels if label in OUTSIDE]
    if forget == "outside" and not outside:
        raise LensRelearnError(f"The tagger's labels {list(tagger.labels)} have no outside tag ({', '.join(OUTSIDE)}).")
    weights = _class_weights(sentences, concept)
    generator = torch.Generator().manual_seed(seed)
    logits = nn.Parameter(1e-3 * torch.randn(where.n_layers, where.units, generator=generator))
    blocked = torch.zeros(where.n_layers, where.units, dtype=torch.bool)
    for layer, unit in exclude:
        blocked[layer, unit] = True
    optimizer = torch.optim.SGD([logits], lr=lr, momentum=0.9)
    batches = _batches(sentences, batch_size, steps, seed)
    frozen = [p for p in tagger.parameters() if p.requires_grad]
    was_training = tagger.training
    forgetting: list[float] = []
    retaining: list[float] = []
    start = time.perf_counter()
    tagger.eval()
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        for chunk in tqdm(batches, desc="learning a mask", disable=not progress or not is_main()):
            batch = tagger.encode(chunk)
            with torch.no_grad():
                before = torch.log_softmax(tagger(batch), -1)
            gates = _kept(logits, k, blocked)
            hooks = [(name, _gate(gates[layer])) for layer, name in enumerate(where.hook_names)]
            with tagger.model.hooks(fwd_hooks=hooks):
                after = torch.log_softmax(tagger(batch), -1)
            target = tagger.targets(batch) if forget == "tag" else torch.full((len(batch.tags),), outside[0])
            terms = _terms(after, before, batch.tags, target, concept, weights, towards=forget == "outside")
            optimizer.zero_grad(set_to_none=True)
            (terms[0] + terms[1]).backward()
            assert logits.grad is not None  # the gates took part in the loss
            logits.grad /= logits.grad.square().mean().sqrt().clamp(min=1e-12)
            optimizer.step()
            forgetting.append(terms[0].item())
            retaining.append(terms[1].item())
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
        if was_training:
            tagger.train()
    flat = _top(logits, k, blocked).tolist()
    chosen = tuple(sorted(Neuron(i // where.units, i % where.units) for i in flat))
    scores = torch.sigmoid(logits.detach())
    return LearnedMask(chosen, scores, tuple(forgetting), tuple(retaining), time.perf_counter() - start)


def _batches(sentences: Sequence[Sentence], batch_size: int, steps: int, seed: int) -> list[list[Sentence]]:
    """``steps`` batches: epochs of ``length_grouped_batches``, shuffled by the seed, as many as it takes."""
    order = random.Random(seed)
    batches: list[list[Sentence]] = []
    while len(batches) < steps:
        batches += length_grouped_batches(sentences, batch_size, order)
    return batches[:steps]


def _class_weights(sentences: Sequence[Sentence], concept: Concept) -> dict[str, float]:
    """A weight a class of the words outside the concept: the inverse of its count, scaled to a mean of 1 a word."""
    counts = Counter(entity_class(tag) for s in sentences for tag in s.tags if not concept.covers(tag))
    if not counts:
        raise LensRelearnError("A learned mask needs training words outside the concept, to keep them.")
    total = sum(counts.values())
    return {kind: total / (len(counts) * count) for kind, count in counts.items()}


def _top(logits: Float[Tensor, "layers units"], k: int, blocked: Bool[Tensor, "layers units"]) -> Int[Tensor, " k"]:
    """The flat indices of the ``k`` highest logits, blocked units left out."""
    return logits.detach().masked_fill(blocked, -torch.inf).flatten().topk(k).indices


def _kept(logits: Tensor, k: int, blocked: Tensor) -> Float[Tensor, "layers units"]:
    """1 for a kept unit, 0 for the ``k`` removed; the gradient is the soft scores' (straight through)."""
    soft = torch.sigmoid(logits)
    hard = torch.zeros_like(soft).flatten().scatter(0, _top(logits, k, blocked), 1.0)
    removed = hard.view_as(soft) + soft - soft.detach()
    return 1.0 - removed


def _gate(kept: Float[Tensor, " units"]) -> Callable:
    """A hook scaling each unit of a layer by its gate."""

    def scale(activation: Tensor, hook) -> Tensor:
        return activation * kept.to(activation.device, activation.dtype)

    return scale


def _terms(
    after: Float[Tensor, "words labels"],
    before: Float[Tensor, "words labels"],
    tags: Sequence[str],
    target: Int[Tensor, " words"],
    concept: Concept,
    weights: dict[str, float],
    *,
    towards: bool,
) -> tuple[Tensor, Tensor]:
    """The forget term of the concept's words (the mean cross-entropy towards ``target`` if ``towards``, else the
    mean unlikelihood of ``target``) and the retain term (the weighted mean KL divergence of the other words from
    their distribution before)."""
    in_concept = torch.tensor([concept.covers(tag) for tag in tags], device=after.device)
    zero = after.sum() * 0.0
    forget = zero
    if in_concept.any():
        chosen = after[in_concept].gather(1, target[in_concept].unsqueeze(1).to(after.device)).squeeze(1)
        forget = -chosen.mean() if towards else -torch.log1p(-chosen.exp().clamp(max=1 - 1e-6)).mean()
    rest = ~in_concept
    if not rest.any():
        return forget, zero
    weight = torch.tensor([weights.get(entity_class(t), 0.0) for t in tags], device=after.device)[rest]
    divergence = (before[rest].exp() * (before[rest] - after[rest])).sum(-1)
    return forget, (weight * divergence).sum() / weight.sum()
