"""Layer probes: a planted direction is found, the floor is the majority class, the study writes them."""

import numpy as np
import pandas as pd
import pytest

from lens_relearn import LensRelearnError, load_model, load_ner, open_run
from lens_relearn.analyses.probes import ProbesSummary
from lens_relearn.data.sentences import find_concept
from lens_relearn.neurons.probes import fit_probe, layer_probes, layer_vectors


def test_a_probe_finds_a_planted_direction_among_noise():
    rng = np.random.default_rng(0)
    words = rng.normal(size=(600, 32))
    labels = rng.random(600) < 0.2
    direction = rng.normal(size=32)
    words[labels] += 4.0 * direction / np.linalg.norm(direction)  # 4 standard deviations along it
    scores = fit_probe(words[:400], labels[:400], words[400:], labels[400:])
    assert scores["accuracy"] >= 0.95 and scores["f1"] >= 0.85
    assert scores["majority"] == pytest.approx(max(labels[400:].mean(), 1 - labels[400:].mean()))
    # Without the direction there is nothing to find: the probe does no better than the floor.
    noise = rng.normal(size=(600, 32))
    blind = fit_probe(noise[:400], labels[:400], noise[400:], labels[400:])
    assert blind["accuracy"] <= blind["majority"] + 0.03


def test_a_probe_needs_both_classes_to_train_on():
    with pytest.raises(LensRelearnError, match="needs training words of the concept and of the rest"):
        fit_probe(np.zeros((4, 2)), np.zeros(4, dtype=bool), np.zeros((2, 2)), np.zeros(2, dtype=bool))


def test_layer_probes_score_every_residual_layer_on_the_test_words():
    data = load_ner("synthetic", n_train=0, n_validation=40, n_test=30, n_novel=0)
    model = load_model("tiny-bert")
    loc = find_concept("LOC", data.labels)
    table = layer_probes(model, data.validation, loc, data.test, loc)
    assert list(table.layer) == [0, 1, 2]  # resid_pre of block 0, then each block's resid_post
    _, tags = layer_vectors(model, data.test)
    share = np.mean([loc.covers(t) for t in tags])
    assert table.majority.tolist() == pytest.approx([max(share, 1 - share)] * 3)
    assert ((table.accuracy >= 0) & (table.accuracy <= 1)).all()


def test_the_study_writes_probes_for_every_stage(tiny_run):
    summary = open_run(tiny_run).summary.section(ProbesSummary).arms
    probes = pd.read_csv(tiny_run / "probes.csv")
    assert set(summary) == {"concept", "random", "none"}
    assert list(summary["concept"]) == ["base", "pruned", "round1", "round2"]
    at = probes[(probes.arm == "concept") & (probes.stage == "pruned")]
    assert summary["concept"]["pruned"].accuracy == pytest.approx(at.accuracy.tolist())
    assert len(summary["concept"]["base"].accuracy) == 3
