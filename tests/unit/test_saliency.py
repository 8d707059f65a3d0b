"""Normalised saliency: the paper's formula where it is monotone, defined for every size."""

import numpy as np
import pytest
import torch

from lens_relearn.neurons.ranking import Ranking, normalised_saliency

SIZES = [1, 99, 100, 150, 512, 5376, 9216, 46080]


def paper_saliency(n: int) -> np.ndarray:
    """Lo et al.'s released formula, as written (NaN at n = 100, reflected past min_rank)."""
    rank = np.arange(n) // 100 + 1
    min_rank = n / 100
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((rank - min_rank) / (1 - min_rank))


@pytest.mark.parametrize("n", SIZES)
def test_saliency_is_finite_bounded_and_non_increasing(n):
    saliency = normalised_saliency(n).numpy()
    assert saliency.shape == (n,)
    assert np.isfinite(saliency).all()
    assert saliency.min() >= 0 and saliency.max() <= 1
    assert (np.diff(saliency) <= 0).all()
    assert (saliency[: min(n, 100)] == 1.0).all()


@pytest.mark.parametrize("n", SIZES)
def test_saliency_equals_the_paper_wherever_the_paper_is_monotone(n):
    rank = np.arange(n) // 100 + 1
    monotone = rank <= n / 100 if n > 100 else np.ones(n, dtype=bool)
    if n != 100:
        np.testing.assert_allclose(
            normalised_saliency(n).numpy()[monotone], paper_saliency(n)[monotone], rtol=0, atol=1e-12
        )
    assert monotone.sum() >= n - 99  # at most the last, partial bucket differs


@pytest.mark.parametrize(("n", "last", "before_last"), [(5376, 0.0, 0.0144), (9216, 0.0, 0.0018), (512, 0.0, 0.0291)])
def test_the_last_partial_bucket_is_zero_not_reflected(n, last, before_last):
    saliency = normalised_saliency(n)
    assert paper_saliency(n)[-1] > 0  # the formula's reflected value
    assert float(saliency[-1]) == last
    assert float(saliency[(n // 100) * 100 - 1]) == pytest.approx(before_last, abs=1e-4)


def test_small_sites():
    assert normalised_saliency(1).tolist() == [1.0]
    assert normalised_saliency(100).tolist() == [1.0] * 100
    assert normalised_saliency(150).tolist() == [1.0] * 100 + [0.0] * 50


def test_layer_means_in_the_papers_setting_move_by_less_than_a_thousandth():
    n, layers = 5376, 7  # the paper's DistilBERT residual site: 7 x 768
    positions = torch.randperm(n, generator=torch.Generator().manual_seed(0)).view(layers, -1).numpy()
    ours = normalised_saliency(n).numpy()[positions].mean(1)
    paper = paper_saliency(n)[positions].mean(1)
    assert np.abs(ours - paper).max() < 1e-3
    assert np.abs(ours - paper).max() > 0  # the last bucket did change


def test_each_neuron_gets_the_saliency_of_its_own_position():
    layers, units = 3, 128  # 384 neurons: four buckets
    scores = torch.rand(layers, units, generator=torch.Generator().manual_seed(1))
    ranking = Ranking("LOC", "probeless", "mlp", scores)
    flat = scores.flatten().numpy()
    position = np.empty(flat.size, dtype=int)
    position[np.argsort(-flat, kind="stable")] = np.arange(flat.size)
    expected = normalised_saliency(flat.size).numpy()[position].reshape(layers, units)
    np.testing.assert_array_equal(ranking.saliency().numpy(), expected)
    best, worst = np.unravel_index(flat.argmax(), (layers, units)), np.unravel_index(flat.argmin(), (layers, units))
    assert ranking.saliency()[best] == 1.0 and ranking.saliency()[worst] == 0.0
