"""The causal test of relocation on the tiny finished study: who the carriers are, and what ablating them does."""

import pytest
import torch

from lens_relearn import (
    LensRelearnError,
    evaluate_tagger,
    load_stage,
    open_run,
    preset,
    prune,
    run_experiment,
    write_report,
)
from lens_relearn.analyses.collateral import CollateralSummary
from lens_relearn.analyses.regrowth import RegrowthSummary
from lens_relearn.analyses.relocation import RelocationSummary
from lens_relearn.data import find_concept
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons import random_neurons
from lens_relearn.study import skeleton
from lens_relearn.study.folders import StageKey, StudyFolder, read_json
from lens_relearn.study.inputs import load_inputs
from lens_relearn.study.removal import PRUNED_FILE
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores
from lens_relearn.views.regrowth import plot_regrowth
from lens_relearn.views.relocation import plot_relocation

CONDITIONS = ("base", "base_without_carriers", "final", "final_without_carriers", "final_without_random")


def pruned_neurons(folder: StudyFolder, seed: int, arm: str) -> list[Neuron]:
    """The neurons an arm's removal chose (its ``pruned.json``)."""
    return [Neuron(*n) for n in read_json(folder.stage_dir(StageKey(seed, arm, "pruned")) / PRUNED_FILE)]


def test_the_carriers_are_the_best_ranked_survivors_of_the_last_round(tiny_run):
    run = open_run(tiny_run)
    record = run.seed_record(0, "relocation")
    assert record["count"] == run.summary.pruned.count == 102
    final = run.stage_table(StageKey(0, "concept", run.final))
    survivors = final[~final.pruned].sort_values("position")
    expected = [[int(layer), int(index)] for layer, index in zip(survivors.layer, survivors["index"], strict=True)]
    assert record["carriers"] == expected[:102]
    assert not {tuple(n) for n in record["carriers"]} & {tuple(n) for n in pruned_neurons(run, 0, "concept")}


def test_ablating_the_carriers_is_scored_on_the_retrained_tagger_with_its_pruning(tiny_run, tiny_study):
    run = open_run(tiny_run)
    record = run.seed_record(0, "relocation")
    tagger = load_stage(tiny_run, run.final, seed=0, arm="concept")
    test = load_inputs(tiny_study.config).data.test
    assert record["final"]["f1"] == evaluate_tagger(tagger, test)["f1"]
    prune(tagger.model, [Neuron(*n) for n in record["carriers"]])
    scores = evaluate_tagger(tagger, test)
    assert record["final_without_carriers"]["f1"] == scores["f1"]
    assert record["final_without_carriers"]["concept_f1"] == concept_scores(scores, ["LOC"])["f1"]


def test_the_summary_holds_every_condition_as_a_mean_over_seeds(tiny_run):
    summary = open_run(tiny_run).summary
    relocation = summary.section(RelocationSummary)
    assert tuple(relocation.conditions) == CONDITIONS
    record = relocation.per_seed["0"]
    for condition in CONDITIONS:
        assert set(vars(relocation.conditions[condition])) == {"f1", "concept_f1", "other_f1"}
        assert relocation.conditions[condition].concept_f1 == pytest.approx(record[condition]["concept_f1"])
    # The unablated base and final taggers score as the study's own base and last stage did.
    collateral = summary.section(CollateralSummary).arms["concept"]
    assert record["base"]["concept_f1"] == pytest.approx(collateral.concept_f1["base"])
    assert record["final"]["concept_f1"] == pytest.approx(collateral.concept_f1["round2"])


def test_the_report_shows_the_relocation_table(tiny_run, tiny_page):
    section = tiny_page[tiny_page.index('<h2 id="analysis-relocation">Where the concept went</h2>') :]
    conditions = open_run(tiny_run).summary.section(RelocationSummary).conditions
    row = section[section.index("last round, carriers ablated too") :].split("</tr>")[0]
    assert f"{conditions['final_without_carriers'].concept_f1:.3f}" in row
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
    folder = StudyFolder(out)
    round2 = StageKey(0, "concept", "round2")
    record = folder.stage_record(round2)
    assert record["regrowth"]["norm"] > 0, "unfrozen pruned weights should grow back"
    (split,) = folder.stage_table(round2, "regrowth").to_dict("records")
    table = folder.stage_table(round2)
    assert split["pruned_saliency_share"] == pytest.approx(table.saliency[table.pruned].sum() / table.saliency.sum())
    assert split["pruned_in_top"] == int((table.pruned & (table.position < config.primed_top)).sum())
    # The concept's F1 with the regrown units masked again, scored by hand.
    tagger = load_stage(out, "round2")
    prune(tagger.model, pruned_neurons(folder, 0, "concept"))
    scores = evaluate_tagger(tagger, load_inputs(config).data.test)
    assert split["concept_f1_remasked"] == concept_scores(scores, ["LOC"])["f1"]
    assert split["f1_remasked"] == scores["f1"] != record["scores"]["test"]["f1"], "masking the units again matters"
    regrowth = summary.section(RegrowthSummary).rounds
    assert list(regrowth) == ["round1", "round2"]
    assert regrowth["round2"].pruned_in_top == split["pruned_in_top"]
    with pytest.raises(LensRelearnError, match=r"regrowth\.csv is missing"):
        folder.stage_table(StageKey(0, "concept", "pruned"), "regrowth")
    share_axis, f1_axis = plot_regrowth(out).axes
    assert [bar.get_height() for bar in share_axis.patches] == pytest.approx(
        [regrowth[r].pruned_saliency_share for r in ("round1", "round2")]
    )
    retrained, remasked, _ = f1_axis.lines
    assert list(retrained.get_ydata()) == pytest.approx(summary.concept_f1.rounds)
    assert list(remasked.get_ydata()) == pytest.approx([regrowth[r].concept_f1_remasked for r in ("round1", "round2")])
    page = write_report(out).read_text()
    assert page.count('<img alt="') == 13 and '<img alt="Regrowth or relocation' in page


def test_frozen_pruning_has_no_regrowth_block(tiny_run):
    run = open_run(tiny_run)
    assert run.summary.section(RegrowthSummary) is None and not run.ran("regrowth")
    with pytest.raises(LensRelearnError, match="prune_mode='weights' and freeze=False"):
        plot_regrowth(tiny_run)
    with pytest.raises(LensRelearnError, match=r"regrowth\.csv is missing"):
        run.stage_table(StageKey(0, "concept", "round2"), "regrowth")


def test_the_relocation_plot_draws_each_condition_from_the_summary(tiny_run):
    conditions = open_run(tiny_run).summary.section(RelocationSummary).conditions
    axis = plot_relocation(tiny_run).axes[0]
    concept_bars, other_bars = axis.containers
    assert [bar.get_height() for bar in concept_bars] == pytest.approx([c.concept_f1 for c in conditions.values()])
    assert [bar.get_height() for bar in other_bars] == pytest.approx([c.other_f1 for c in conditions.values()])


FLAG, OUT = 0, 1  # residual dimensions of tiny-bert (d_model 64) the planted circuit writes


def plant_loc_carrier(tagger: Tagger, loc_words: list[str], unit: int) -> None:
    """Route LOC through one MLP unit of tiny-bert's last layer, in the weights.

    The LOC words' first sub-tokens get a flag in the input embeddings (residual dimension
    ``FLAG``); unit ``(1, unit)`` reads only that flag (GELU(x_FLAG - 4)) and writes only into
    dimension ``OUT``; the head's B-LOC and I-LOC scores gain 10 (x_OUT - 4.5), so they win
    where the unit fires and lose by far where it is silent. Without the unit, the tagger finds
    no location at all.
    """
    parameters = dict(tagger.named_parameters())
    block = "model.blocks.1._original_component."
    tokenizer = tagger.model.tokenizer
    flagged = sorted({tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in loc_words})
    with torch.no_grad():
        parameters["model.embed._original_component.weight"][flagged, FLAG] += 1.0
        reads, bias = (parameters[block + f"intermediate.dense._original_component.{p}"] for p in ("weight", "bias"))
        writes = parameters[block + "output.dense._original_component.weight"]
        reads[unit], bias[unit] = 0.0, -4.0
        reads[unit, FLAG] = 1.0
        writes[:, unit] = 0.0
        writes[OUT, unit] = 3.0
        for label in ("B-LOC", "I-LOC"):
            tagger.head.weight[tagger.label_index[label], OUT] += 10.0
            tagger.head.bias[tagger.label_index[label]] -= 45.0


def test_a_neuron_planted_to_carry_loc_after_retraining_is_found_by_the_causal_test(tmp_path, monkeypatch):
    config = preset(
        "quick",
        model="tiny-bert",
        n_train=60,
        n_validation=30,
        n_test=20,
        n_novel=0,
        base_epochs=1,
        rounds=1,
        arms=("concept",),
    )
    out = tmp_path / "run"
    data = load_inputs(config).data
    loc = find_concept("LOC", data.labels)
    planted: list[Neuron] = []
    train = skeleton.train_tagger

    def retrain_then_plant(tagger, sentences, **kwargs):
        train(tagger, sentences, **kwargs)
        if kwargs["seed"] == 1:  # seed 0's first round: "retraining" ends with the planted carrier
            pruned = pruned_neurons(StudyFolder(out), 0, "concept")
            controls = random_neurons(tagger.model, len(pruned), seed=0, exclude=pruned)  # the test's own draw
            unit = next(i for i in range(256) if Neuron(1, i) not in {*pruned, *controls})
            planted.append(Neuron(1, unit))
            plant_loc_carrier(tagger, loc.words(data.validation + data.test), unit)

    monkeypatch.setattr(skeleton, "train_tagger", retrain_then_plant)
    summary = run_experiment(config, out, progress=False)
    record = StudyFolder(out).seed_record(0, "relocation")
    assert planted and record["carriers"][0] == list(planted[0]), "the planted unit is the best-ranked survivor"
    assert record["final"]["concept_f1"] > 0.5, "the planted circuit tags locations"
    assert record["final_without_carriers"]["concept_f1"] == 0.0, "ablating the carriers removes LOC"
    assert record["final_without_random"]["concept_f1"] > record["final"]["concept_f1"] - 0.15
    assert record["base_without_carriers"]["concept_f1"] >= record["base"]["concept_f1"] - 0.15
    assert summary.section(RelocationSummary).conditions["final_without_carriers"].concept_f1 == 0.0
