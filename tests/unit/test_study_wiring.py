"""How the study wires its stages together, checked on a tiny study against hand computations.

The formulas (scores, saliency, masks) have their own tests; these check that the study prunes
the neurons its base ranking chose, that its tables say what the models do, and that
``load_stage`` gives back the model each stage described.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lens_relearn.neurons.activations import collect_stats
from lens_relearn.neurons.ranking import normalised_saliency, rank_neurons
from lens_relearn.study.folders import StudyFolder
from lens_relearn.study.inputs import load_inputs
from lens_relearn.study.runner import load_stage
from lens_relearn.study.tables import SALIENT
from lens_relearn.views.run import open_run

STAGES = ["base", "pruned", "round1", "round2"]  # the shared tiny study's (tests/unit/conftest.py)


@pytest.fixture(scope="module")
def study(tiny_study):
    assert tiny_study.config.stages() == STAGES
    return tiny_study.out, tiny_study.live


def stage_table(out, arm, stage):
    folder = out / "seed0" / ("base" if stage == "base" else f"{arm}/{stage}")
    return pd.read_parquet(folder / "neurons.parquet").sort_values(["layer", "index"]).reset_index(drop=True)


def pruned_set(out, arm):
    return {tuple(n) for n in json.loads((out / "seed0" / arm / "pruned" / "pruned.json").read_text())}


def test_the_concept_arm_prunes_exactly_the_base_rankings_top_k(study):
    out, _ = study
    base = stage_table(out, "concept", "base")
    k = round(0.2 * len(base))
    by_score = np.argsort(-base.score.to_numpy(), kind="stable")[:k]
    expected = {(int(base.layer[i]), int(base["index"][i])) for i in by_score}
    assert pruned_set(out, "concept") == expected
    assert expected == set(base[base.position < k][["layer", "index"]].itertuples(index=False, name=None))


def test_the_random_arm_draws_as_many_from_the_same_site_but_not_the_concept_set(study):
    out, _ = study
    concept, random = pruned_set(out, "concept"), pruned_set(out, "random")
    assert len(random) == len(concept) == 102
    assert random != concept
    assert all(0 <= layer < 2 and 0 <= index < 256 for layer, index in random)
    assert pruned_set(out, "none") == set()


@pytest.mark.parametrize("arm", ["concept", "random", "none"])
def test_pruned_rows_are_flagged_and_read_zero_at_every_stage(study, arm):
    out, _ = study
    chosen = pruned_set(out, arm)
    for stage in STAGES[1:]:
        table = stage_table(out, arm, stage)
        flagged = set(table[table.pruned][["layer", "index"]].itertuples(index=False, name=None))
        assert flagged == chosen, stage
        assert (table[table.pruned]["mean"] == 0.0).all(), stage
        assert (table[~table.pruned]["mean"] != 0.0).mean() > 0.99, stage


@pytest.mark.parametrize("arm", ["concept", "random"])
def test_load_stage_gives_the_logits_of_the_live_model(study, tiny_study, arm):
    out, live = study
    for stage in STAGES:
        tagger = load_stage(out, stage, arm=arm)
        with torch.no_grad():
            logits = tagger(tagger.encode(tiny_study.probe))
        torch.testing.assert_close(logits, live["base" if stage == "base" else arm, stage], rtol=0, atol=1e-6)


def test_the_base_table_ranks_the_base_model_on_the_validation_split(study, tiny_study):
    out, _ = study
    tagger = load_stage(out, "base")
    stats = collect_stats(tagger.model, load_inputs(tiny_study.config).data.validation, progress=False)
    expected = rank_neurons(stats, "LOC").scores.flatten().numpy()
    np.testing.assert_allclose(stage_table(out, "concept", "base").score, expected, rtol=1e-5)


@pytest.mark.parametrize("stage", STAGES)
def test_neuron_and_layer_tables_agree_with_a_hand_computation(study, stage):
    out, _ = study
    table = stage_table(out, "concept", stage)
    scores = table.score.to_numpy()
    position = np.empty(len(scores), dtype=int)
    position[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    np.testing.assert_array_equal(table.position, position)
    np.testing.assert_allclose(table.saliency, normalised_saliency(len(scores)).numpy()[position], rtol=0, atol=1e-6)

    folder = out / "seed0" / ("base" if stage == "base" else f"concept/{stage}")
    layers = pd.read_csv(folder / "layers.csv")
    for layer, rows in table.groupby("layer"):
        row = layers[layers.layer == layer].iloc[0]
        alive = rows[~rows.pruned]
        assert row["mean"] == pytest.approx(rows.saliency.mean(), abs=1e-6)
        assert row["survivors"] == len(alive)
        assert row["salient_share"] == pytest.approx((alive.saliency > SALIENT).mean(), abs=1e-6)


def test_primed_neurons_are_new_top_carriers_that_survived(study):
    out, _ = study
    base, final = stage_table(out, "concept", "base"), stage_table(out, "concept", STAGES[-1])
    top = StudyFolder(out).config.primed_top
    expected = final[(final.position < top) & (base.position >= top) & ~final.pruned].sort_values("position")
    primed = pd.read_csv(out / "primed.csv")
    assert len(expected) > 0
    assert list(zip(primed.layer, primed["index"], strict=True)) == list(
        zip(expected.layer, expected["index"], strict=True)
    )
    np.testing.assert_array_equal(primed.position_before, base.position[expected.index])
    np.testing.assert_array_equal(primed.position_after, expected.position)


def test_the_summary_reads_the_stage_files(study):
    out, _ = study
    summary = open_run(out).summary
    performance = pd.read_csv(out / "performance.csv")
    test = performance[(performance.split == "test") & (performance.arm == "concept")].set_index("stage")
    assert summary.concept_f1.base == pytest.approx(test.concept_f1["base"])
    assert summary.concept_f1.pruned == pytest.approx(test.concept_f1["pruned"])
    assert summary.concept_f1.rounds == pytest.approx([test.concept_f1[s] for s in STAGES[2:]])
    random = performance[(performance.split == "test") & (performance.arm == "random")].set_index("stage")
    assert summary.arms["random"].concept_f1.pruned == pytest.approx(random.concept_f1["pruned"])
    for stage in STAGES:
        means = stage_table(out, "concept", stage).groupby("layer").saliency.mean()
        assert summary.layer_saliency[stage] == pytest.approx(means.tolist(), abs=1e-6)
    assert summary.pruned.count == 102 and summary.pruned.of == 512
