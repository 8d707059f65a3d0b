"""Pruning neurons: silence chosen units at a neuron site, by a permanent hook or by their weights.

Two modes (docs/design.md §3, §4):

- ``mask`` (default): a permanent TransformerLens forward hook at each affected layer's site
  hook point writes zero (or the unit's mean) into the pruned units in every forward pass, so a
  pruned neuron can never carry signal again, whatever runs: ``run_with_cache``, training,
  evaluation. A permanent hook survives ``reset_hooks()`` and every clean-up of temporary
  hooks (docs/design.md §3); only ``PrunedNeurons.remove()`` takes it off.
- ``weights``: the parameters that produce the unit are zeroed, either frozen (their gradients
  are masked, so they stay zero through training) or free to regrow, with the regrowth measured
  by ``PrunedNeurons.regrowth``.

``random_neurons`` draws the control group: k neurons at random from a site.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from transformer_lens.hook_points import HookPoint, LensHandle
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.supported_architectures.bert import BertArchitectureAdapter
from transformers.pytorch_utils import Conv1D

from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron, NeuronSite, Site, neuron_site

Mode = Literal["mask", "weights"]
Value = Literal["zero", "mean"]
MODES: tuple[Mode, ...] = ("mask", "weights")
VALUES: tuple[Value, ...] = ("zero", "mean")


@dataclass(frozen=True)
class PrunedNeurons:
    """What ``prune`` did to a model, and the handle to undo it.

    Attributes:
        neurons: The pruned neurons, deduplicated and sorted by ``(layer, index)``.
        site: The neuron site (``"mlp"`` or ``"resid"``).
        mode: ``"mask"`` or ``"weights"``.
        value: What a masked unit is set to: ``"zero"`` or ``"mean"``.
        freeze: Whether the gradients of zeroed weights are masked (``weights`` mode).
    """

    neurons: tuple[Neuron, ...]
    site: Site
    mode: Mode
    value: Value
    freeze: bool
    # What to undo and measure: hooks (mask mode); zeroed entries and gradient masks (weights).
    _hooks: tuple[tuple[HookPoint, LensHandle], ...] = field(default=(), repr=False, compare=False)
    _weights: tuple[tuple[int, nn.Parameter, Tensor], ...] = field(default=(), repr=False, compare=False)
    _gradient_masks: tuple[RemovableHandle, ...] = field(default=(), repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.neurons)

    def remove(self) -> None:
        """Undo the pruning as far as it can be undone; calling it again does nothing.

        ``mask`` mode: the hooks come off (also from TransformerLens's own hook lists), and the
        model computes exactly what it computed before. ``weights`` mode: the gradients of the
        zeroed weights are no longer masked, so training may regrow them; the zeroed weights
        are not restored.
        """
        take_off(self._hooks)
        for gradient_mask in self._gradient_masks:
            gradient_mask.remove()

    def regrowth(self) -> dict:
        """How far the zeroed weights have grown back.

        Returns:
            ``norm``: the L2 norm of all pruned weight entries now (0.0 in ``mask`` mode, and
            right after pruning in ``weights`` mode); ``per_layer``: ``{layer: norm}`` for every
            layer with a pruned neuron.
        """
        squares = dict.fromkeys(sorted({n.layer for n in self.neurons}), 0.0)
        for layer, parameter, entries in self._weights:
            squares[layer] += parameter.detach()[entries].double().square().sum().item()
        return {
            "norm": sum(squares.values()) ** 0.5,
            "per_layer": {layer: total**0.5 for layer, total in squares.items()},
        }


def take_off(hooks: Iterable[tuple[HookPoint, LensHandle]]) -> None:
    """Take permanent hooks off their hook points (also from TransformerLens's own hook lists)."""
    for hook_point, handle in hooks:
        handle.hook.remove()
        hook_point.fwd_hooks[:] = [h for h in hook_point.fwd_hooks if h is not handle]


def _check_neurons(site: NeuronSite, neurons: Iterable[Sequence[Any]], what: str) -> list[Neuron]:
    """Neurons as sorted, distinct ``Neuron``s, or ``LensRelearnError`` naming the valid ranges."""
    checked = set()
    for neuron in neurons:
        try:
            layer, index = (operator.index(part) for part in neuron)
        except (TypeError, ValueError) as error:
            raise LensRelearnError(f"{what} {neuron!r} is not a (layer, index) pair of integers.") from error
        if not (0 <= layer < site.n_layers and 0 <= index < site.units):
            raise LensRelearnError(
                f"{what} ({layer}, {index}) is outside site {site.name!r}: layers run "
                f"0..{site.n_layers - 1} and indices 0..{site.units - 1}."
            )
        checked.add(Neuron(layer, index))
    return sorted(checked)


def _unit_masks(site: NeuronSite, neurons: Sequence[Neuron]) -> dict[int, Bool[Tensor, " units"]]:
    """One boolean mask over the units of each layer that has a pruned neuron."""
    masks: dict[int, Tensor] = {}
    for layer, index in neurons:
        masks.setdefault(layer, torch.zeros(site.units, dtype=torch.bool))[index] = True
    return masks


def _mask_hook(units: Bool[Tensor, " units"], fill: Float[Tensor, " units"]) -> Callable:
    """A hook that writes ``fill`` into the masked units, out of place (autograd-safe)."""

    def mask_units(activation: Tensor, hook: HookPoint) -> Tensor:
        device = activation.device
        return torch.where(units.to(device), fill.to(device, activation.dtype), activation)

    return mask_units


def _producers(model: TransformerBridge, site: NeuronSite, layer: int) -> list[nn.Module]:
    """The modules whose parameters produce the units of one layer at a site."""
    if site.name == "resid":
        norm = model.embed_ln if layer == 0 else model.blocks[layer - 1].ln2
        return [norm.original_component]
    return [getattr(model.blocks[layer].mlp, "in").original_component]


def _frozen_gradient(entries: Bool[Tensor, ...]) -> Callable[[Tensor], Tensor]:
    """A gradient hook that zeroes the gradient of the given parameter entries."""
    return lambda grad: grad.masked_fill(entries, 0.0)


def _zero_weights(
    model: TransformerBridge, site: NeuronSite, neurons: Sequence[Neuron], freeze: bool
) -> tuple[tuple[tuple[int, nn.Parameter, Tensor], ...], tuple[RemovableHandle, ...]]:
    """Zero the parameter entries that produce the neurons, masking their gradients if frozen.

    Returns:
        ``(layer, parameter, entries)`` for every parameter touched, ``entries`` a boolean mask
        of the parameter's shape; and the handles of the gradient masks.
    """
    weights: list[tuple[int, nn.Parameter, Tensor]] = []
    for layer, units in _unit_masks(site, neurons).items():
        for module in _producers(model, site, layer):
            for parameter in (module.weight, module.bias):
                if not isinstance(parameter, nn.Parameter):  # None: the module has no such parameter
                    continue
                # nn.Linear weights are [out, in]; GPT-2's Conv1D stores [in, out].
                axis = 1 if isinstance(module, Conv1D) and parameter.ndim > 1 else 0
                if parameter.shape[axis] != site.units:
                    raise LensRelearnError(
                        f"Cannot prune the weights of {type(module).__name__} "
                        f"{tuple(parameter.shape)}: its output axis does not have the site's "
                        f"{site.units} units. Use mode='mask' instead."
                    )
                shape = [1] * parameter.ndim
                shape[axis] = site.units
                entries = units.to(parameter.device).view(shape).expand_as(parameter)
                weights.append((layer, parameter, entries))
    with torch.no_grad():
        for _, parameter, entries in weights:
            parameter.masked_fill_(entries, 0.0)
    gradient_masks = tuple(
        parameter.register_hook(_frozen_gradient(entries))
        for _, parameter, entries in weights
        if freeze and parameter.requires_grad
    )
    return tuple(weights), gradient_masks


def prune(
    model: TransformerBridge,
    neurons: Sequence[Sequence[Any]],  # (layer, index) pairs, checked below, with advice
    *,
    site: str = "mlp",
    mode: str = "mask",  # str, not Mode: checked below, with advice
    value: str = "zero",  # str, not Value: checked below, with advice
    means: Float[Tensor, "layers units"] | None = None,
    freeze: bool = True,
) -> PrunedNeurons:
    """Prune neurons of a model in place.

    ``mask`` mode adds one permanent forward hook per affected layer at the site's hook point
    (``blocks.{l}.mlp.hook_post`` or the residual hook), which sets the pruned units to zero, or
    to ``means[layer, index]`` with ``value="mean"``, in every forward pass; other units are
    untouched. ``PrunedNeurons.remove()`` takes exactly these hooks off again.

    ``weights`` mode zeroes the parameters that produce each unit:

    - site ``mlp``: the unit's output row (column for GPT-2's Conv1D) and bias entry in the MLP
      input projection (GPT-2 ``c_fc``, BERT ``intermediate.dense``, DistilBERT ``lin1``, Llama
      ``up_proj``). Since GELU(0) = ReLU(0) = 0, the unit is then exactly zero; in a gated MLP
      (Llama) the unit is SiLU(gate) * up, exactly zero once its ``up_proj`` row is. The gate
      row is left alone on purpose: were it zeroed too, each row's gradient would be a multiple
      of the other's (zero) output, so with ``freeze=False`` the unit could never regrow.
    - site ``resid``: the scale and bias entries of the LayerNorm that produces the residual unit,
      as the paper's code did. Only post-LN encoders (BERT, DistilBERT) have such a LayerNorm:
      layer 0 is the embedding LayerNorm, layer l + 1 block l's output LayerNorm. Pre-LN models
      (GPT-2, Llama) raise ``LensRelearnError``: use ``mode="mask"`` there.

    With ``freeze=True`` the gradients of the zeroed entries are masked, so they stay exactly
    zero under AdamW (a zero gradient and zero optimizer state give a zero update, and decoupled
    weight decay keeps zero at zero) as long as the optimizer holds no earlier state for them:
    create it after pruning. ``remove()`` stops the masking; the zeroed weights are not restored.
    With ``freeze=False`` they may regrow: see ``PrunedNeurons.regrowth``.

    Args:
        model: A bridge from ``load_model``; changed in place.
        neurons: ``(layer, index)`` pairs at the site; duplicates are ignored, none is a no-op.
        site: ``"mlp"`` or ``"resid"`` (see ``neuron_site``).
        mode: ``"mask"`` (a permanent hook) or ``"weights"`` (zeroed parameters).
        value: ``"zero"``, or ``"mean"`` to write each unit's mean (``mask`` mode only).
        means: Every unit's mean activation at the site, ``[layers, units]``; needed for
            ``value="mean"``.
        freeze: In ``weights`` mode, keep the zeroed weights at zero through training.

    Returns:
        A ``PrunedNeurons`` handle: what was pruned, ``remove()`` and ``regrowth()``.

    Raises:
        LensRelearnError: An unknown site, mode or value, a neuron out of range, ``means``
            missing or of the wrong shape, ``value="mean"`` in ``weights`` mode, or site
            ``resid`` in ``weights`` mode on a pre-LN model.

    Example:
        >>> from lens_relearn import load_model
        >>> model = load_model("tiny-bert")
        >>> pruned = prune(model, [(1, 7), (0, 3), (1, 7)])
        >>> pruned.neurons
        (Neuron(layer=0, index=3), Neuron(layer=1, index=7))
        >>> ids = model.tokenizer(["Rain in Oslo"], return_tensors="pt")["input_ids"]
        >>> _, cache = model.run_with_cache(ids, names_filter="blocks.1.mlp.hook_post")
        >>> cache["blocks.1.mlp.hook_post"][..., 7].abs().max().item()
        0.0
        >>> pruned.remove()
    """
    where = neuron_site(model, site)
    if mode not in MODES:
        raise LensRelearnError(f"Unknown pruning mode {mode!r}; choose one of {', '.join(MODES)}.")
    if value not in VALUES:
        raise LensRelearnError(f"Unknown pruning value {value!r}; choose one of {', '.join(VALUES)}.")
    if mode == "weights" and value == "mean":
        raise LensRelearnError("value='mean' needs mode='mask': zeroed weights can only make a unit zero.")
    post_ln = isinstance(model.adapter, BertArchitectureAdapter)  # BERT, DistilBERT, RoBERTa
    if mode == "weights" and site == "resid" and not post_ln:
        raise LensRelearnError(
            f"mode='weights' at site 'resid' needs a post-LN encoder (BERT, DistilBERT), where a "
            f"LayerNorm's scale and bias produce each residual unit; {model.cfg.architecture} is "
            f"pre-LN: its residual stream is a sum of block outputs that no one weight produces. "
            f"Use mode='mask' instead."
        )
    expected = (where.n_layers, where.units)
    if value == "mean" and means is None:
        raise LensRelearnError(
            f"value='mean' needs means: every unit's mean activation at site {site!r}, "
            f"a tensor of shape {expected} (layers, units)."
        )
    if means is not None and tuple(means.shape) != expected:
        raise LensRelearnError(
            f"means has shape {tuple(means.shape)}, but site {site!r} of this model has "
            f"{where.n_layers} layers of {where.units} units: expected {expected}."
        )
    chosen = tuple(_check_neurons(where, neurons, "Neuron"))
    if mode == "weights":
        weights, gradient_masks = _zero_weights(model, where, chosen, freeze)
        return PrunedNeurons(
            chosen, where.name, "weights", value, freeze, _weights=weights, _gradient_masks=gradient_masks
        )
    device = next(model.parameters()).device
    hooks = []
    for layer, units in _unit_masks(where, chosen).items():
        fill = means[layer].detach() if value == "mean" and means is not None else torch.zeros(where.units)
        hook = _mask_hook(units.to(device), fill.to(device))
        hook_point = model.hook_dict[where.hook_names[layer]]
        hooks.append((hook_point, hook_point.add_hook(hook, is_permanent=True)))
    return PrunedNeurons(chosen, where.name, "mask", value, freeze, _hooks=tuple(hooks))


@dataclass(frozen=True)
class PruneSpec:
    """How neurons are pruned, as one value: ``prune``'s keyword arguments.

    Attributes:
        site: ``"mlp"`` or ``"resid"``.
        mode: ``"mask"`` or ``"weights"``.
        value: What a masked unit becomes: ``"zero"`` or ``"mean"``.
        freeze: In ``weights`` mode, keep the zeroed weights at zero through training.
        means: Every unit's mean activation, ``[layers, units]`` (``value="mean"`` only).

    Example:
        >>> from lens_relearn import load_model
        >>> spec = PruneSpec(mode="weights", freeze=False)
        >>> spec.apply(load_model("tiny-bert"), [(0, 3)]).mode, spec.ablation().mode
        ('weights', 'mask')
    """

    site: str = "mlp"
    mode: str = "mask"
    value: str = "zero"
    freeze: bool = True
    means: Float[Tensor, "layers units"] | None = field(default=None, compare=False)

    def apply(self, model: TransformerBridge, neurons: Sequence[Sequence[Any]]) -> PrunedNeurons:
        """``prune(model, neurons, ...)`` with this spec."""
        return prune(
            model, neurons, site=self.site, mode=self.mode, value=self.value, means=self.means, freeze=self.freeze
        )

    def ablation(self) -> PruneSpec:
        """The same pruning by mask hooks, for ablating neurons for the while (``remove()`` takes them off)."""
        return PruneSpec(self.site, "mask", self.value, self.freeze, self.means)


def random_neurons(
    model: TransformerBridge,
    k: int,
    *,
    site: str = "mlp",
    seed: int = 0,
    exclude: Iterable[tuple[int, int]] = (),
) -> list[Neuron]:
    """Draw k neurons uniformly at random, without replacement, from a site.

    Args:
        model: A bridge from ``load_model``.
        k: How many neurons to draw.
        site: ``"mlp"`` or ``"resid"``.
        seed: Seeds the draw (``random.Random(seed)``); the global random state is untouched.
        exclude: Neurons never drawn (e.g. the concept neurons, for a control group).

    Returns:
        The neurons, sorted by ``(layer, index)``.

    Raises:
        LensRelearnError: k is negative or larger than the neurons left to draw from, or a
            neuron in ``exclude`` is outside the site.

    Example:
        >>> from lens_relearn import load_model
        >>> model = load_model("tiny-bert")
        >>> random_neurons(model, 2, seed=1)
        [Neuron(layer=0, index=64), Neuron(layer=0, index=137)]
        >>> random_neurons(model, 2, seed=1, exclude=[(0, 64)])
        [Neuron(layer=0, index=69), Neuron(layer=1, index=36)]
    """
    where = neuron_site(model, site)
    excluded = set(_check_neurons(where, exclude, "Excluded neuron"))
    pool = [
        neuron
        for layer in range(where.n_layers)
        for index in range(where.units)
        if (neuron := Neuron(layer, index)) not in excluded
    ]
    if not 0 <= k <= len(pool):
        raise LensRelearnError(
            f"Cannot draw k={k} neurons: site {site!r} has {len(pool)} neurons to draw from "
            f"({where.n_neurons} in all, {len(excluded)} excluded); need 0 <= k <= {len(pool)}."
        )
    return sorted(random.Random(seed).sample(pool, k))
