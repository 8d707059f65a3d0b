"""Neuron sites: where a model's neurons of one kind live, and a neuron's address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, cast

import transformer_lens.model_bridge.sources.transformers  # noqa: F401  (attaches boot_transformers)
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedModel

from lens_relearn.errors import LensRelearnError

Site = Literal["mlp", "resid"]


SITES: tuple[Site, ...] = ("mlp", "resid")


MAX_TOKENS = 512  # NER sentences are short: no batch needs a longer context


class Neuron(NamedTuple):
    """One unit at a neuron site: its layer and its index within the layer."""

    layer: int
    index: int  # type: ignore[assignment]  # shadows tuple.index; the name is public (reprs, docs)


@dataclass(frozen=True)
class NeuronSite:
    """Where a model's neurons of one kind live (docs/design.md §2).

    Attributes:
        name: ``"mlp"`` (input of the MLP output projection) or ``"resid"`` (residual
            stream after each block, with the embedding output as layer 0).
        hook_names: One hook point per layer, in layer order.
        units: Neurons per layer (``d_mlp`` or ``d_model``).
    """

    name: Site
    hook_names: tuple[str, ...]
    units: int

    @property
    def n_layers(self) -> int:
        """The number of layers at this site."""
        return len(self.hook_names)

    @property
    def n_neurons(self) -> int:
        """All neurons at this site, over every layer."""
        return self.n_layers * self.units


def neuron_sites(model: TransformerBridge) -> dict[Site, NeuronSite]:
    """The ``mlp`` and ``resid`` neuron sites of a model.

    Example:
        >>> from lens_relearn import load_model
        >>> sites = neuron_sites(load_model("tiny-gpt2"))
        >>> sites["mlp"].hook_names
        ('blocks.0.mlp.hook_post', 'blocks.1.mlp.hook_post')
        >>> sites["resid"].n_layers, sites["resid"].units
        (3, 64)
    """
    layers = range(model.cfg.n_layers)
    if model.cfg.d_mlp is None:
        raise LensRelearnError(f"{model.cfg.model_name} has no MLP width (cfg.d_mlp); its MLP neurons cannot be named.")
    return {
        "mlp": NeuronSite("mlp", tuple(f"blocks.{l}.mlp.hook_post" for l in layers), model.cfg.d_mlp),
        "resid": NeuronSite(
            "resid",
            ("blocks.0.hook_resid_pre", *tuple(f"blocks.{l}.hook_resid_post" for l in layers)),
            model.cfg.d_model,
        ),
    }


def context_length(model: TransformerBridge) -> int:
    """Tokens a sentence may take: the model's context, at most ``MAX_TOKENS``.

    Example:
        >>> from lens_relearn import load_model
        >>> context_length(load_model("tiny-gpt2"))
        512
    """
    return min(int(model.cfg.n_ctx), MAX_TOKENS)


def neuron_site(model: TransformerBridge, site: str) -> NeuronSite:
    """One neuron site of a model, by name; an unknown name raises ``LensRelearnError``.

    Example:
        >>> from lens_relearn import load_model
        >>> neuron_site(load_model("tiny-bert"), "mlp").n_neurons
        512
    """
    sites = neuron_sites(model)
    if site not in sites:
        raise LensRelearnError(f"Unknown neuron site {site!r}; the sites are {', '.join(SITES)}.")
    return sites[site]


def wrapped_model(model: TransformerBridge) -> PreTrainedModel:
    """The Hugging Face model inside a bridge (TransformerLens types it only as a module)."""
    return cast(PreTrainedModel, model.original_model)
