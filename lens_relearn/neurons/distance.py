"""How far a stage moved from the base model: linear CKA of representations, relative distance of weights.

Linear CKA (Kornblith et al. 2019) compares two representations of the same words, ``X`` (a row a
word) and ``Y`` (a row a word), centred: ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)``. It is 1 for identical
representations, unchanged by an orthogonal rotation or an isotropic scaling of either, and near
0 for independent ones (of order d / words for random ones); ``‖YᵀX‖²_F`` is also the inner product of the
two Gram matrices ``XXᵀ`` and ``YYᵀ``, the cheaper form when there are fewer words than features. The
weight distance is
``‖θ - θ_base‖ / ‖θ_base‖`` over every parameter the two models share by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from jaxtyping import Float
from torch import Tensor


def linear_cka(x: Float[Tensor, "words d1"], y: Float[Tensor, "words d2"]) -> float:
    """Linear CKA of two representations of the same words (rows), in float64; NaN if either is constant.

    Example:
        >>> x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
        >>> round(linear_cka(x, x), 6), round(linear_cka(x, 3 * x @ torch.linalg.qr(torch.randn(8, 8))[0]), 6)
        (1.0, 1.0)
    """
    x, y = (v.double() - v.double().mean(0) for v in (x, y))
    words, width = x.shape[0], x.shape[1] + y.shape[1]
    if words * words * width < words * (x.shape[1] * y.shape[1] + x.shape[1] ** 2 + y.shape[1] ** 2):
        gram_x, gram_y = x @ x.T, y @ y.T  # fewer words than features: the same sums, over word pairs
        cross = (gram_x * gram_y).sum()
        scale = torch.linalg.matrix_norm(gram_x) * torch.linalg.matrix_norm(gram_y)
    else:
        cross = torch.linalg.matrix_norm(y.T @ x) ** 2
        scale = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / scale) if scale > 0 else math.nan


def weight_distance(weights: Mapping[str, Tensor], base: Mapping[str, Tensor]) -> float:
    """``‖θ - θ_base‖ / ‖θ_base‖`` over the floating-point parameters both state dicts hold by name (summed in the
    order of the names, whatever the dicts' order).

    Example:
        >>> base = {"w": torch.ones(4), "b": torch.zeros(2)}
        >>> weight_distance(base, base), weight_distance({"w": torch.full((4,), 2.0), "b": torch.zeros(2)}, base)
        (0.0, 1.0)
    """
    shared = sorted(name for name, value in base.items() if name in weights and value.is_floating_point())
    if not shared:
        raise ValueError("weight_distance needs parameters that both models hold by name; they share none.")
    moved = sum(float((weights[name].double() - base[name].double()).square().sum()) for name in shared)
    size = sum(float(base[name].double().square().sum()) for name in shared)
    return math.sqrt(moved / size) if size > 0 else math.nan
