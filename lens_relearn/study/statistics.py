"""Statistics over seeds and neurons: intervals and rank correlation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties).

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
        0.8
    """
    def ranks(values: Sequence[float]) -> Tensor:
        return torch.tensor(pd.Series(values).rank().to_numpy(), dtype=torch.float64)

    a, b = ranks(x), ranks(y)
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return round(float(a @ b) / denominator, 12) if denominator else math.nan


def interval(values: Sequence[float]) -> dict:
    """Mean of some values with a 95% interval (normal approximation; zero width for one value).

    Example:
        >>> interval([0.8, 0.9, 1.0])["mean"]
        0.9
    """
    n = len(values)
    mean = sum(values) / n
    half = 1.96 * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else 0.0
    return {"mean": round(mean, 12), "low": mean - half, "high": mean + half, "n": n}
