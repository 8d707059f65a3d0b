"""The selectivity sweep on a tiny model: its rows, its wiring, resuming, and the command."""

import json
import math
import shutil

import pandas as pd
import pytest

from lens_relearn import LensRelearnError, Tagger, collect_stats, evaluate_tagger, rank_neurons
from lens_relearn.cli import main
from lens_relearn.data import find_concept, load_ner
from lens_relearn.neurons.masks import learn_mask
from lens_relearn.neurons.pruning import prune
from lens_relearn.study import skeleton
from lens_relearn.study import sweep as sweep_module
from lens_relearn.study.config import preset
from lens_relearn.study.sweep import best_pruning, selectivity_sweep
from lens_relearn.tagger.scores import concept_scores

CONFIG = preset("quick", model="tiny-bert", n_train=60, n_validation=40, n_test=30, n_novel=5, base_epochs=1)
METHODS = ("probeless", "entity_contrast")
FRACTIONS = (0.05, 0.2)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    table = selectivity_sweep(CONFIG, out, methods=METHODS, fractions=FRACTIONS, random_seeds=(0, 1), progress=False)
    return out, table


def test_one_row_a_method_fraction_and_random_seed(swept):
    out, table = swept
    assert list(table.method) == ["base", *[m for m in METHODS for _ in FRACTIONS], *["random"] * 4]
    assert table.pruned.tolist() == [0, 26, 102, 26, 102, 26, 26, 102, 102]  # of 2 x 256 MLP neurons
    assert table[table.method == "random"].seed.tolist() == [0, 1, 0, 1]
    assert pd.read_csv(out / "sweep.csv").equals(table)
    base = table.iloc[0]
    for row in table.itertuples():
        expected = row.other_f1 / base.other_f1 - row.concept_f1 / base.concept_f1
        assert row.selectivity == pytest.approx(expected, abs=1e-9)
    assert {"f1_PER", "f1_ORG", "f1_LOC", "f1_MISC"} <= set(table.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["concept"] == "LOC" and summary["base"]["concept_f1"] == base.concept_f1
    assert json.loads((out / "run.json").read_text())["kind"] == "sweep"


def test_a_row_is_the_base_tagger_pruned_by_that_ranking(swept):
    out, table = swept
    tagger = Tagger.load(out / "base")
    data = load_ner(CONFIG.data, seed=0, tag_column=CONFIG.tag_column, **CONFIG.sizes())  # the sweep's data
    stats = collect_stats(tagger.model, data.validation, progress=False)
    neurons = rank_neurons(stats, "LOC", method="entity_contrast").top(102)
    prune(tagger.model, neurons)
    scores = evaluate_tagger(tagger, data.test)
    row = table[(table.method == "entity_contrast") & (table.fraction == 0.2)].iloc[0]
    assert row.concept_f1 == concept_scores(scores, ["LOC"])["f1"] and row.f1 == scores["f1"]
    assert row.other_f1 == pytest.approx(sum(scores["per_type"][k]["f1"] for k in ("PER", "ORG", "MISC")) / 3)


def test_a_rerun_keeps_the_base_tagger_and_the_finished_rows(swept, monkeypatch):
    out, table = swept
    monkeypatch.setattr(skeleton, "train_tagger", lambda *a, **k: pytest.fail("the base tagger was retrained"))
    monkeypatch.setattr(sweep_module, "evaluate_ablated", lambda *a, **k: pytest.fail("a finished row was scored"))
    again = selectivity_sweep(CONFIG, out, methods=METHODS, fractions=FRACTIONS, random_seeds=(0, 1), progress=False)
    assert again.equals(table)


def test_a_folder_keeps_to_one_config_and_arguments_are_checked(swept):
    out, _ = swept
    with pytest.raises(LensRelearnError, match="holds a sweep of a different config"):
        selectivity_sweep(CONFIG.replace(site="resid"), out, progress=False)
    with pytest.raises(LensRelearnError, match="Unknown sweep methods"):
        selectivity_sweep(CONFIG, out, methods=["probe"], progress=False)
    with pytest.raises(LensRelearnError, match=r"Fractions \[1.5\] are outside"):
        selectivity_sweep(CONFIG, out, fractions=[1.5], progress=False)


def test_a_learned_mask_is_a_method_of_the_sweep_learned_at_each_fraction(swept, tmp_path):
    """Beside the swept folder's base tagger (copied, so nothing trains): one optimisation a fraction, scored
    as the rankings are, and the units are those ``learn_mask`` chooses with the config's settings."""
    out, table = swept
    config = CONFIG.replace(mask_steps=3)
    shutil.copytree(out / "base", tmp_path / "base")
    learned = selectivity_sweep(
        config.replace(base_checkpoint=str(tmp_path / "base")),
        tmp_path / "masks",
        methods=["learned_mask"],
        fractions=FRACTIONS,
        random_seeds=(0,),
        progress=False,
    )
    rows = learned[learned.method == "learned_mask"]
    assert rows.fraction.tolist() == list(FRACTIONS) and rows.pruned.tolist() == [26, 102]
    assert learned.iloc[0].concept_f1 == table.iloc[0].concept_f1, "the same base tagger"
    data = load_ner(config.data, seed=0, tag_column=config.tag_column, **config.sizes())
    tagger = Tagger.load(out / "base")
    neurons = learn_mask(tagger, data.train, find_concept("LOC", data.labels), 26, steps=3, progress=False).neurons
    prune(tagger.model, neurons)
    assert rows.iloc[0].concept_f1 == concept_scores(evaluate_tagger(tagger, data.test), ["LOC"])["f1"]


def test_best_pruning_is_the_most_selective_that_removes_the_concept():
    rows = [
        ("base", 0.0, 0.8, 0.9),
        ("probeless", 0.1, 0.1, 0.4),  # removes LOC, keeps 44% of the others
        ("entity_contrast", 0.1, 0.3, 0.85),  # removes LOC (<= 0.4), keeps 94%
        ("entity_contrast", 0.05, 0.6, 0.9),  # does not remove LOC
        ("random", 0.1, 0.0, 0.9),  # never chosen
    ]
    table = pd.DataFrame(rows, columns=["method", "fraction", "concept_f1", "other_f1"])
    best = best_pruning(table)
    assert (best["method"], best["fraction"], best["goal_met"]) == ("entity_contrast", 0.1, True)
    assert math.isclose(best["others_kept"], 0.85 / 0.9)
    assert best_pruning(table[table.method != "entity_contrast"])["goal_met"] is False
    assert best_pruning(table.iloc[[0, 3, 4]]) is None


def test_sweep_command_prints_the_frontier_and_writes_the_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    flags = ["--model", "tiny-bert", "--n-train", "40", "--n-validation", "30", "--n-test", "20", "--n-novel", "5"]
    flags += ["--base-epochs", "1", "--methods", "importance_ratio", "--fractions", "0.1", "--random-seeds", "3"]
    assert main(["sweep", "--preset", "quick", *flags, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    lines = printed.out.splitlines()
    assert lines[0].startswith("tiny-bert: base LOC F1 ")
    assert [line.split()[0] for line in lines[2:4]] == ["importance_ratio", "random"]
    assert lines[-1] == f"plot:    {(out / 'sweep.png').resolve()}"
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG")
