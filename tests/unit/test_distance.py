"""Linear CKA and the weight distance: the properties the distance-from-base analysis relies on."""

import pytest
import torch

from lens_relearn import Tagger, load_model, load_ner, train_tagger
from lens_relearn.neurons.distance import linear_cka, weight_distance


def words(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_cka_is_one_for_identical_representations_and_blind_to_rotation_and_scale():
    x = words(300, 12, 0) @ words(12, 12, 1)  # correlated features
    rotation, _ = torch.linalg.qr(words(12, 12, 2))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x + 4.0) == pytest.approx(1.0, abs=1e-12), "centred: a shift changes nothing"


def test_cka_is_near_zero_for_independent_representations_and_below_one_for_a_partial_copy():
    x, y = words(4000, 16, 3), words(4000, 24, 4)
    assert linear_cka(x, y) < 0.02
    partial = torch.cat([x[:, :8], words(4000, 8, 5)], dim=1)
    assert 0.3 < linear_cka(x, partial) < 0.9
    assert linear_cka(x, torch.ones(4000, 3)) != linear_cka(x, torch.ones(4000, 3)), "a constant: NaN"


def test_the_weight_distance_is_zero_at_base_and_grows_with_training():
    data = load_ner("synthetic", n_train=32, n_validation=0, n_test=0, n_novel=0)
    torch.manual_seed(0)
    tagger = Tagger(load_model("tiny-bert"), data.labels)
    base = {name: value.clone() for name, value in tagger.state_dict().items()}
    assert weight_distance(tagger.state_dict(), base) == 0.0
    train_tagger(tagger, data.train[:8], epochs=1, lr=1e-3, batch_size=8, progress=False)
    one = weight_distance(tagger.state_dict(), base)
    train_tagger(tagger, data.train, epochs=1, lr=1e-3, batch_size=8, progress=False)
    assert 0.0 < one < weight_distance(tagger.state_dict(), base) < 1.0
