"""Ranking neurons by attribution: what zeroing each would do to the tagger's loss on the concept.

Attribution patching (a first-order Taylor estimate, as in Nanda's "Attribution Patching",
2023): zeroing a neuron's activation a at every position changes a loss L by about
-sum over positions of a * dL/da. With L_C the tagger's cross-entropy summed over the words of the
concept and L_E the same over the words of the other entity types, a neuron's score is

    rise(L_C) / (concept words) - rise(L_E) / (other entity words)

so a neuron whose removal hurts the concept scores high, and one whose removal hurts every
entity type alike scores about 0. It needs the tagger (its head and loss) and sentences tagged
with the tagger's labels; ``rank_neurons`` covers the methods that need activations only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from lens_relearn.data.sentences import Concept, Sentence, find_concept
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.ranking import OUTSIDE, Ranking
from lens_relearn.tagger.model import Tagger


def rank_by_attribution(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    concept: str | Concept,
    *,
    site: str = "mlp",
    batch_size: int = 16,
    progress: bool = True,
) -> Ranking:
    """Rank a site's neurons by the estimated rise of the concept's loss when each is zeroed, net of the others'.

    Pruning hooks on the tagger act first, so pruned neurons score 0.

    Args:
        tagger: A fine-tuned tagger (dropout is off while scoring).
        sentences: Sentences tagged with the tagger's labels (the concept corpus).
        concept: The concept's class name(s) or a ``Concept``.
        site: ``"mlp"`` or ``"resid"``.
        batch_size: Sentences a forward and backward pass.
        progress: Show a progress bar.

    Returns:
        The ranking (method ``attribution``), with every neuron's score.

    Raises:
        LensRelearnError: The sentences have no word of the concept or of another entity type,
            or tags the tagger does not know.

    Example:
        >>> from lens_relearn import Tagger, load_model, load_ner
        >>> data = load_ner("synthetic", n_train=0, n_validation=8, n_test=0, n_novel=0)
        >>> tagger = Tagger(load_model("tiny-bert"), data.labels)
        >>> ranking = rank_by_attribution(tagger, data.validation, "LOC", progress=False)
        >>> ranking.method, tuple(ranking.scores.shape)
        ('attribution', (2, 256))
    """
    concept = find_concept(concept, tagger.labels)
    tags = [tag for s in sentences for tag in s.tags]
    in_concept = sum(concept.covers(tag) for tag in tags)
    in_others = sum(not concept.covers(tag) and tag not in OUTSIDE for tag in tags)
    if not in_concept or not in_others:
        raise LensRelearnError(
            f"The attribution ranking needs words of {concept.name!r} and of another entity type; "
            f"the sentences have {in_concept} and {in_others}."
        )
    site_info = neuron_site(tagger.model, site)
    rise = torch.zeros(2, site_info.n_layers, site_info.units, dtype=torch.float64)
    kept: list[Tensor] = []

    def keep(activation: Tensor, hook) -> Tensor:
        kept.append(activation)
        return activation

    was_training = tagger.training
    tagger.eval()
    try:
        with (
            tagger.model.hooks(fwd_hooks=[(name, keep) for name in site_info.hook_names]),
            tqdm(total=len(sentences), desc="attribution", unit="sent", disable=not progress) as bar,
        ):
            for start in range(0, len(sentences), batch_size):
                chunk = sentences[start : start + batch_size]
                kept.clear()
                rise += _batch_rise(tagger, chunk, concept, kept)
                bar.update(len(chunk))
    finally:
        if was_training:  # eval() left every module in eval mode: nothing to restore otherwise
            tagger.train()
    scores = rise[0] / in_concept - rise[1] / in_others
    return Ranking(concept.name, "attribution", site, scores.float())


def _batch_rise(
    tagger: Tagger, sentences: Sequence[Sentence], concept: Concept, kept: list[Tensor]
) -> Float[Tensor, "2 layers units"]:
    """The estimated rises of the concept's and the other types' summed loss, for one batch."""
    batch = tagger.encode(sentences)
    losses = torch.nn.functional.cross_entropy(tagger(batch), tagger.targets(batch), reduction="none")
    is_concept = torch.tensor([concept.covers(t) for t in batch.tags], device=tagger.device)
    is_other = torch.tensor([not concept.covers(t) and t not in OUTSIDE for t in batch.tags], device=tagger.device)
    rises = []
    for words in (is_concept, is_other):
        gradients = torch.autograd.grad(losses[words].sum(), kept, retain_graph=True, allow_unused=True)
        rises.append(
            torch.stack(
                [
                    -reduce(activation.detach() * gradient, "... units -> units", "sum")
                    if gradient is not None
                    else torch.zeros(activation.shape[-1])
                    for activation, gradient in zip(kept, gradients, strict=True)
                ]
            )
        )
    return torch.stack(rises).double().cpu()
