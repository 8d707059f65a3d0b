"""Linear CKA and the weight distance: the properties the distance-from-base analysis relies on."""

import pytest
import torch

from lens_relearn import Tagger, load_model, load_ner, open_run, train_tagger
from lens_relearn.analyses import DistanceSummary
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


def test_a_study_measures_each_stage_against_its_base_model(tiny_run, tiny_page):
    """The tiny study (masks: a removal moves no weight, training does; MLP units leave the embeddings alone)."""
    run = open_run(tiny_run)
    arms = run.section(DistanceSummary).arms
    table = run.table("distance")
    assert len(table) == 3 * 4 * (2 + 3 + 1), "an arm's four stages: two MLP layers, three residual, the weights"
    for arm in ("concept", "random", "none"):
        base, pruned, last = (arms[arm][stage] for stage in ("base", "pruned", "round2"))
        assert base.cka_site == [1.0, 1.0] and base.cka_resid == [1.0, 1.0, 1.0] and base.weights == 0.0
        assert pruned.weights == 0.0 < last.weights < 0.5
        assert pruned.cka_resid[0] == 1.0, "the embeddings come before every MLP unit"
        assert min(last.cka_resid) < 1.0
    assert arms["none"]["pruned"].cka_site == [1.0, 1.0]
    assert min(arms["concept"]["pruned"].cka_site) < 1.0
    assert '<h2 id="analysis-distance">How far from the base model</h2>' in tiny_page
    axes = run.plot_distance().axes
    assert [len(axis.lines) for axis in axes] == [6, 6, 3]


def test_cka_of_fewer_words_than_features_equals_the_feature_form():
    x, y = words(40, 300, 6), words(40, 200, 7) + 0.5 * words(40, 300, 6)[:, :200]
    cx, cy = (v.double() - v.double().mean(0) for v in (x, y))
    by_features = (cy.T @ cx).square().sum() / ((cx.T @ cx).norm() * (cy.T @ cy).norm())
    assert linear_cka(x, y) == pytest.approx(float(by_features), abs=1e-12)
    assert 0.05 < linear_cka(x, y) < 0.95
