"""One Student's t interval and one rank correlation for every number the package reports."""

import math

import pytest
import torch

from lens_relearn.neurons.ranking import Ranking
from lens_relearn.stats import interval, spearman


def test_interval_of_three_values_uses_t_with_two_degrees_of_freedom():
    row = interval([0.8, 0.9, 1.0])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n)
    assert row["mean"] == 0.9 and row["n"] == 3
    assert row["high"] - row["mean"] == pytest.approx(half, abs=1e-9)
    assert row["mean"] - row["low"] == pytest.approx(half, abs=1e-9)
    assert round(row["high"] - row["mean"], 3) == 0.248


def test_interval_of_one_value_has_zero_width():
    assert interval([0.7]) == {"mean": 0.7, "low": 0.7, "high": 0.7, "n": 1}


def test_interval_of_no_values_is_nan():
    row = interval([])
    assert row["n"] == 0 and all(math.isnan(row[key]) for key in ("mean", "low", "high"))


@pytest.mark.parametrize(
    ("x", "y", "rho"),
    [
        ([1, 2, 3, 4], [10, 20, 30, 25], 0.8),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        ([1, 2, 2, 3], [1, 2, 3, 4], 0.948683298051),  # ties share their average rank
    ],
)
def test_spearman(x, y, rho):
    assert spearman(x, y) == rho


@pytest.mark.parametrize(
    ("x", "y"), [([1, 2, 3], [5, 5, 5]), ([1], [2]), ([], [])], ids=["constant", "one-pair", "empty"]
)
def test_spearman_is_nan_when_undefined(x, y):
    assert math.isnan(spearman(x, y))


def test_layer_saliency_uses_the_same_interval():
    # 2 layers x 150 units: saliency spans several buckets, so each layer's values vary.
    scores = torch.linspace(1, 0, 300).view(2, 150)[:, torch.randperm(150, generator=torch.Generator().manual_seed(0))]
    ranking = Ranking("LOC", "probeless", "mlp", scores)
    saliency = ranking.saliency()
    excluded = [(0, 3), (1, 7), (1, 8)]
    rows = ranking.layer_saliency(exclude=excluded)
    for layer, row in enumerate(rows):
        kept = [v for unit, v in enumerate(saliency[layer].tolist()) if (layer, unit) not in excluded]
        assert row == {"layer": layer, **interval(kept)}
        assert row["high"] > row["low"]


def test_layer_saliency_of_a_layer_with_one_neuron_left_has_zero_width():
    ranking = Ranking("LOC", "probeless", "mlp", torch.tensor([[3.0, 2.0], [1.0, 0.0]]))
    row = ranking.layer_saliency(exclude=[(1, 0)])[1]
    assert row == {"layer": 1, "mean": 1.0, "low": 1.0, "high": 1.0, "n": 1}
