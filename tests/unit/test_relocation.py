"""The causal test of relocation on the tiny finished study: who the carriers are, and what ablating them does."""

import json

import pytest

from lens_relearn import evaluate_tagger, load_stage, plot_relocation, preset, prune, run_experiment, write_report
from lens_relearn.models.sites import Neuron
from lens_relearn.study.run_folder import RunFolder
from lens_relearn.tagger.scores import concept_scores

CONDITIONS = ("base", "base_without_carriers", "final", "final_without_carriers", "final_without_random")


def test_the_carriers_are_the_best_ranked_survivors_of_the_last_round(tiny_run):
    folder = RunFolder(tiny_run)
    record = folder.relocation(0)
    assert record["count"] == json.loads((tiny_run / "summary.json").read_text())["pruned"]["count"] == 102
    final = folder.stage_table(0, "concept", folder.final)
    survivors = final[~final.pruned].sort_values("position")
    expected = [[int(layer), int(index)] for layer, index in zip(survivors.layer, survivors["index"], strict=True)]
    assert record["carriers"] == expected[:102]
    assert not {tuple(n) for n in record["carriers"]} & {tuple(n) for n in folder.pruned(0, "concept")}


def test_ablating_the_carriers_is_scored_on_the_retrained_tagger_with_its_pruning(tiny_run, tiny_study):
    folder = RunFolder(tiny_run)
    record = folder.relocation(0)
    tagger = load_stage(tiny_run, folder.final, seed=0, arm="concept")
    test = tiny_study.config.load_data().test
    assert record["final"]["f1"] == evaluate_tagger(tagger, test)["f1"]
    prune(tagger.model, [Neuron(*n) for n in record["carriers"]])
    scores = evaluate_tagger(tagger, test)
    assert record["final_without_carriers"]["f1"] == scores["f1"]
    assert record["final_without_carriers"]["concept_f1"] == concept_scores(scores, ["LOC"])["f1"]


def test_the_summary_holds_every_condition_as_a_mean_over_seeds(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    relocation = summary["relocation"]
    assert tuple(relocation["conditions"]) == CONDITIONS
    record = relocation["per_seed"]["0"]
    for condition in CONDITIONS:
        assert set(relocation["conditions"][condition]) == {"f1", "concept_f1", "other_f1"}
        assert relocation["conditions"][condition]["concept_f1"] == pytest.approx(record[condition]["concept_f1"])
    # The unablated base and final taggers score as the study's own base and last stage did.
    collateral = summary["collateral"]["concept"]
    assert record["base"]["concept_f1"] == pytest.approx(collateral["concept_f1"]["base"])
    assert record["final"]["concept_f1"] == pytest.approx(collateral["concept_f1"]["round2"])


def test_the_report_shows_the_relocation_table(tiny_run):
    page = write_report(tiny_run, case_studies=0).read_text()
    section = page[page.index("<h2>Where the concept went</h2>") :]
    conditions = json.loads((tiny_run / "summary.json").read_text())["relocation"]["conditions"]
    row = section[section.index("last round, carriers ablated too") :].split("</tr>")[0]
    assert f"{conditions['final_without_carriers']['concept_f1']:.3f}" in row
    assert "The carriers are the 102 best-ranked unpruned neurons for LOC" in section


def test_unfrozen_weights_pruning_splits_regrowth_from_relocation(tmp_path):
    config = preset(
        "quick",
        model="tiny-bert",
        n_train=40,
        n_validation=20,
        n_test=15,
        n_novel=5,
        base_epochs=1,
        rounds=2,
        arms=("concept",),
        prune_mode="weights",
        freeze=False,
    )
    out = tmp_path / "run"
    summary = run_experiment(config, out, progress=False)
    folder = RunFolder(out)
    record = folder.stage_record(0, "concept", "round2")
    assert record["regrowth"]["norm"] > 0, "unfrozen pruned weights should grow back"
    split = record["regrowth_split"]
    table = folder.stage_table(0, "concept", "round2")
    assert split["pruned_saliency_share"] == pytest.approx(table.saliency[table.pruned].sum() / table.saliency.sum())
    assert split["pruned_in_top"] == int((table.pruned & (table.position < config.primed_top)).sum())
    # The concept's F1 with the regrown units masked again, scored by hand.
    tagger = load_stage(out, "round2")
    prune(tagger.model, folder.pruned(0, "concept"))
    scores = evaluate_tagger(tagger, config.load_data().test)
    assert split["concept_f1_remasked"] == concept_scores(scores, ["LOC"])["f1"]
    assert split["f1_remasked"] == scores["f1"] != record["scores"]["test"]["f1"], "masking the units again matters"
    assert list(summary["regrowth"]) == ["round1", "round2"]
    assert summary["regrowth"]["round2"]["pruned_in_top"] == split["pruned_in_top"]
    assert "regrowth_split" not in folder.stage_record(0, "concept", "pruned")


def test_frozen_pruning_has_no_regrowth_block(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert "regrowth" not in summary
    assert "regrowth_split" not in RunFolder(tiny_run).stage_record(0, "concept", "round2")


def test_the_relocation_plot_draws_each_condition_from_the_summary(tiny_run):
    conditions = json.loads((tiny_run / "summary.json").read_text())["relocation"]["conditions"]
    axis = plot_relocation(tiny_run).axes[0]
    concept_bars, other_bars = axis.containers
    assert [bar.get_height() for bar in concept_bars] == pytest.approx([c["concept_f1"] for c in conditions.values()])
    assert [bar.get_height() for bar in other_bars] == pytest.approx([c["other_f1"] for c in conditions.values()])
