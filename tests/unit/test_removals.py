"""The learned mask and linear erasure as arms of a tiny study: each saves its choice in the pruned stage,
``load_stage`` gives back the logits the live model had, and the comparison puts them on one table, in the summary
and the report; bad settings are refused before anything runs."""

import json

import pytest
import safetensors.torch
import torch

from lens_relearn import load_ner, open_run, write_report
from lens_relearn.analyses import CollateralSummary, ComparisonSummary
from lens_relearn.errors import LensRelearnError
from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.runner import load_stage, run_experiment

CONFIG = preset(
    "quick",
    model="tiny-bert",
    n_train=40,
    n_validation=20,
    n_test=12,
    n_novel=4,
    base_epochs=1,
    rounds=1,
    arms=("learned_mask", "erase", "erase@without_concept", "learned_mask@few:8"),
    mask_steps=4,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory, live_logits):
    """The study's folder and each stage's logits on a few sentences, taken from the live model."""
    out = tmp_path_factory.mktemp("removals") / "run"
    probe = load_ner("synthetic", n_train=1, n_validation=5, n_test=1, n_novel=0).validation
    observer, live = live_logits(probe)
    run_experiment(CONFIG, out, progress=False, observer=observer)
    return out, probe, live


@pytest.mark.parametrize("arm", CONFIG.arms[:2])
@pytest.mark.parametrize("stage", ["pruned", "round1"])
def test_load_stage_gives_the_logits_of_the_live_model(study, arm, stage):
    out, probe, live = study
    tagger = load_stage(out, stage, arm=arm)
    with torch.no_grad():
        logits = tagger(tagger.encode(probe))
    torch.testing.assert_close(logits, live[arm, stage], rtol=0, atol=1e-6)


def test_the_learned_mask_prunes_as_many_units_as_the_config_and_keeps_its_record(study):
    out, _, _ = study
    pruned = out / "seed0" / "learned_mask" / "pruned"
    assert len(json.loads((pruned / "pruned.json").read_text())) == round(0.2 * 512)
    record = json.loads((pruned / "removal.json").read_text())
    assert record["steps"] == len(record["forget"]) == len(record["retain"]) == CONFIG.mask_steps
    assert record["seconds"] > 0


def test_erasure_saves_an_eraser_a_residual_layer_and_prunes_no_neuron(study):
    out, _, _ = study
    pruned = out / "seed0" / "erase" / "pruned"
    erasers = safetensors.torch.load_file(str(pruned / "erasers.safetensors"))
    assert sorted(erasers) == sorted(f"{layer}.{name}" for layer in range(3) for name in ("mean", "down", "up"))
    assert not (pruned / "pruned.json").exists()


@pytest.mark.parametrize(
    ("arm", "first", "choice"),
    [("erase@without_concept", "erase", "erasers.safetensors"), ("learned_mask@few:8", "learned_mask", "pruned.json")],
)
def test_the_arms_of_one_removal_copy_the_choice_the_first_one_made(study, arm, first, choice):
    out, _, _ = study
    made, copied = (out / "seed0" / name / "pruned" for name in (first, arm))
    assert (copied / choice).read_bytes() == (made / choice).read_bytes()
    record = json.loads((made / "removal.json").read_text())
    assert json.loads((copied / "removal.json").read_text()) == {**record, "chosen_in": first}


@pytest.mark.parametrize(("field", "value"), [("mask_lr", 0.0), ("mask_lr", -1.0), ("mask_steps", 0)])
def test_bad_mask_settings_are_refused_before_anything_loads(field, value):
    with pytest.raises(LensRelearnError, match=field):
        ExperimentConfig(arms=("learned_mask",), **{field: value})


def test_the_comparison_has_a_row_an_arm_from_what_the_other_analyses_measured(study):
    out, _, _ = study
    run = open_run(out)
    rows, collateral = run.section(ComparisonSummary).arms, run.section(CollateralSummary).arms
    assert list(rows) == list(CONFIG.arms)
    assert (rows["learned_mask"].units, rows["erase"].units) == (round(0.2 * 512), 0)
    for arm, row in rows.items():
        assert row.concept_f1_removed == collateral[arm].concept_f1["pruned"]
        assert row.concept_f1_last == collateral[arm].concept_f1["round1"]
    assert rows["erase"].concept_f1_without_concept == collateral["erase@without_concept"].concept_f1["round1"]
    assert rows["learned_mask"].concept_f1_without_concept is None
    assert rows["learned_mask"].record["steps"] == CONFIG.mask_steps and rows["erase"].record["layers"] == 3
    assert run.comparison_table().loc["erase", "units removed"] == 0


def test_the_report_shows_the_comparison(study):
    out, _, _ = study
    page = write_report(out).read_text()
    assert "The removals side by side" in page and page.count("<tr>") > len(CONFIG.arms)
