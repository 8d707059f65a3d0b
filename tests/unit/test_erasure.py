"""Linear concept erasure: a planted linear direction is readable before and not after; fitted layer after layer
on a tiny model, no layer's word vectors covary with the concept any more, and taking the erasers off restores it."""

import numpy as np
import pytest
import torch

from lens_relearn import load_model, load_ner
from lens_relearn.data import find_concept
from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.erasure import erase_concept, fit_eraser
from lens_relearn.neurons.probes import fit_probe, layer_vectors


def test_a_probe_reads_a_planted_direction_before_erasure_and_no_better_than_the_majority_after():
    generator = torch.Generator().manual_seed(0)
    labels = torch.rand(6000, generator=generator) < 0.2
    direction = torch.nn.functional.normalize(torch.randn(16, generator=generator), dim=0)
    vectors = torch.randn(6000, 16, generator=generator) + 4.0 * labels[:, None] * direction
    train, test = slice(0, 4000), slice(4000, None)
    before = fit_probe(vectors[train].numpy(), labels[train].numpy(), vectors[test].numpy(), labels[test].numpy())
    eraser = fit_eraser(vectors[train], labels[train])
    erased = eraser(vectors.double()).float().numpy()
    after = fit_probe(erased[train], labels[train].numpy(), erased[test], labels[test].numpy())
    assert before["accuracy"] >= 0.95
    assert abs(after["accuracy"] - after["majority"]) <= 0.02
    assert eraser.rank == 1


def test_erasing_moves_the_vectors_no_more_than_needed():
    """LEACE's edit is the least-squares one: only the whitened concept direction is removed."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.rand(3000, generator=generator) < 0.5
    vectors = torch.randn(3000, 8, generator=generator)
    vectors[:, 0] += 3.0 * labels
    erased = fit_eraser(vectors, labels)(vectors.double())
    moved = (erased - vectors.double()).abs().mean(0)
    assert moved[0] > 1.0 and moved[1:].max() < 0.1


def test_an_eraser_needs_both_sides_of_the_concept():
    with pytest.raises(LensRelearnError, match="concept and of the rest"):
        fit_eraser(torch.randn(10, 3), torch.ones(10, dtype=torch.bool))


def covariance_with(vectors: np.ndarray, labels: np.ndarray) -> float:
    centred = vectors - vectors.mean(0)
    return float(np.abs(centred.T @ (labels - labels.mean())).max() / len(labels))


def test_erased_layer_after_layer_no_layer_covaries_with_the_concept_and_removing_restores_the_model():
    model = load_model("tiny-bert")
    data = load_ner("synthetic", n_train=0, n_validation=40, n_test=0, n_novel=0)
    loc = find_concept("LOC", data.labels)
    before, tags = layer_vectors(model, data.validation)
    labels = np.array([loc.covers(tag) for tag in tags], dtype=np.float64)
    erased = erase_concept(model, data.validation, loc, progress=False)
    after, _ = layer_vectors(model, data.validation)
    assert len(erased.erasers) == len(before) == 3
    assert all(covariance_with(layer.astype(np.float64), labels) > 1e-3 for layer in before)
    assert all(covariance_with(layer.astype(np.float64), labels) < 1e-5 for layer in after)
    erased.remove()
    again, _ = layer_vectors(model, data.validation)
    assert all(np.array_equal(a, b) for a, b in zip(before, again, strict=True))
