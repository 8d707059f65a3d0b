"""Statistics over seeds and neurons: Student's t intervals, rank correlation, and selectivity.

One ``interval`` serves every mean the package reports with an interval (F1 over seeds,
saliency over a layer's neurons), so they are all computed the same way. ``scipy.stats`` is
imported where it is first used: importing it takes about half a second, which every command
would otherwise pay at start-up.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

CONFIDENCE = 0.95


def interval(values: Sequence[float]) -> dict:
    """Mean of some values with a 95% confidence interval from Student's t distribution.

    The half-width is ``t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the sample standard
    deviation. One value gives a zero-width interval at the value; no values give NaN.

    Returns:
        ``mean``, ``low``, ``high`` and ``n``.

    Example:
        >>> row = interval([0.8, 0.9, 1.0])
        >>> row["mean"], round(row["high"] - row["mean"], 3), row["n"]
        (0.9, 0.248, 3)
        >>> interval([0.7])
        {'mean': 0.7, 'low': 0.7, 'high': 0.7, 'n': 1}
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = sum(values) / n
    if n > 1:
        import scipy.stats

        deviation = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = float(scipy.stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)) * deviation / math.sqrt(n)
    else:
        half = 0.0
    return {"mean": round(mean, 12), "low": mean - half, "high": mean + half, "n": n}


def spearman(x: Sequence[float | int], y: Sequence[float | int]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when undefined.

    It is undefined for fewer than two pairs and when either side is constant.

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
        0.8
        >>> spearman([1, 2, 3], [5, 5, 5])
        nan
    """
    if len(x) != len(y):
        raise ValueError(f"spearman needs as many x as y values; got {len(x)} and {len(y)}.")
    if len(x) < 2:
        return math.nan
    import scipy.stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        rho = float(scipy.stats.spearmanr(x, y).statistic)
    return rho if math.isnan(rho) else round(rho, 12)


def selectivity(concept: Mapping[str, float], others: Mapping[str, float], stage: str) -> float | None:
    """The share of the other types' F1 a stage kept minus the share of the concept's F1 it kept.

    1 means the concept is gone and the other types are untouched, 0 that both lost the same
    share, below 0 that the other types lost more. None when a base F1 is 0 or unknown.

    Example:
        >>> selectivity({"base": 0.9, "pruned": 0.09}, {"base": 0.8, "pruned": 0.72}, "pruned")
        0.8
    """
    if not concept["base"] or not others["base"] or math.isnan(others["base"]) or math.isnan(others[stage]):
        return None
    return round(others[stage] / others["base"] - concept[stage] / concept["base"], 12)
