"""The command line: user mistakes exit with status 2 and one line of advice, before any training; what `run` prints."""

import json

import pytest

import lens_relearn.models.loading
import lens_relearn.study.inputs
import lens_relearn.study.runner
import lens_relearn.study.skeleton
import lens_relearn.tagger.training
from lens_relearn.cli import build_parser, main
from lens_relearn.study.summary import StudySummary

# Small synthetic sizes keep the data generation of a `run` short; the mistakes are elsewhere.
SMALL = ["--model", "tiny-bert", "--n-train", "20", "--n-validation", "10", "--n-test", "10", "--n-novel", "5"]


def refuse(monkeypatch, name: str, modules: tuple, what: str) -> None:
    """Make ``name`` in each module fail the test with ``what`` when it is called."""

    def fail(*args, **kwargs):
        raise AssertionError(what)

    for module in modules:
        monkeypatch.setattr(module, name, fail)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything starts training a tagger."""
    refuse(monkeypatch, "train_tagger", (lens_relearn.study.skeleton, lens_relearn.tagger.training), "training started")


def error_of(capsys) -> str:
    """The one error line of a command that returned 2; nothing on stdout."""
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lens-relearn: error: ")
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--concept", "CITY"],
            "The concept 'CITY' is not in the data; the classes present are O, PER, ORG, LOC, MISC.",
        ),
        (["--site", "attn"], "site='attn' is not one of mlp, resid."),
        (["--prune-count", "100000"], "Cannot prune 100000 neurons: the site 'mlp' of 'tiny-bert' has 512."),
        (["--arms", "concept", "concept"], "must be one or more distinct arms"),
        (["--prune-fraction", "1.5"], "prune_fraction=1.5 must lie in [0, 1]."),
    ],
    ids=["unknown-concept", "unknown-site", "too-many-neurons", "repeated-arm", "fraction-above-one"],
)
def test_run_refuses_an_impossible_config_before_training(flags, message, tmp_path, capsys, no_training):
    out = tmp_path / "run"
    assert main(["run", *SMALL, *flags, "--out", str(out), "--quiet"]) == 2
    assert message in error_of(capsys)
    assert not out.exists(), "nothing is written for a refused config"


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything loads a model."""
    modules = (lens_relearn.models.loading, lens_relearn.study.inputs, lens_relearn.study.skeleton)
    refuse(monkeypatch, "load_model", modules, "a model was loaded")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--ranking", "nope"],
            "ranking='nope' is not one of probeless, binary, entity_contrast, importance_ratio, attribution.",
        ),
        (["--site", "attn"], "site='attn' is not one of mlp, resid."),
        (["--aggregation", "max"], "aggregation='max' is not one of first, last, average."),
        (["--prune-mode", "cut"], "prune_mode='cut' is not one of mask, weights."),
        (["--prune-value", "one"], "prune_value='one' is not one of zero, mean."),
        (
            ["--arms", "concept", "shuffled"],
            "The arm 'shuffled' names the removal 'shuffled', which is not registered (the registered ones are "
            "concept, random, none, learned_mask, erase); an arm is a removal's name, optionally followed by "
            "@without_concept or @concept_as_o.",
        ),
    ],
    ids=["ranking", "site", "aggregation", "prune-mode", "prune-value", "arms"],
)
@pytest.mark.usefixtures("no_model", "no_training")
def test_a_value_outside_a_literal_is_refused_by_the_config_before_any_model_loads(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *flags, "--out", str(out)]) == 2
    assert error_of(capsys) == f"lens-relearn: error: {message}\n"
    assert not out.exists()


def test_literal_flags_pass_plain_strings_to_the_config():
    args = build_parser().parse_args(
        [
            "run",
            "--out",
            "x",
            "--site",
            "resid",
            "--ranking",
            "binary",
            "--arms",
            "concept",
            "none",
            "--seeds",
            "1",
            "2",
        ]
    )
    assert (args.site, args.ranking, args.arms, args.seeds) == ("resid", "binary", ["concept", "none"], [1, 2])


class Captured(Exception):
    """Stops `run` once the config is built: the test has what it wanted."""


@pytest.mark.parametrize("given", [["collateral,probes"], ["collateral", "probes"]], ids=["commas", "spaces"])
def test_analyses_come_comma_or_space_separated(given, tmp_path, monkeypatch):
    args = build_parser().parse_args(["run", "--out", "x", "--analyses", *given])
    assert args.analyses == ["collateral", "probes"]
    configs = []

    def capture(config, out, **kwargs):
        configs.append(config)
        raise Captured

    monkeypatch.setattr(lens_relearn.study.runner, "run_experiment", capture)
    with pytest.raises(Captured):
        main(["run", "--preset", "quick", *SMALL, "--analyses", *given, "--out", str(tmp_path / "run")])
    assert [config.analyses for config in configs] == [("collateral", "probes")]


@pytest.mark.usefixtures("no_model", "no_training")
def test_retraining_without_probes_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--preset", "quick", *SMALL, "--analyses", "retraining", "--out", str(out)]) == 2
    error = error_of(capsys)
    assert "The analysis 'retraining' reads what 'probes' records: add it to analyses." in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--preset", "fast", "--out", "x"], "argument --preset: invalid choice: 'fast'"),
        (["finetune", "tiny-bert", "--aggregation", "middle"], "argument --aggregation: invalid choice: 'middle'"),
        (["run", "--out", "x", "--rounds", "two"], "argument --rounds: invalid int value: 'two'"),
        (["run", "--preset", "quick"], "the following arguments are required: --out"),
        (["prune"], "invalid choice: 'prune'"),
    ],
    ids=["preset", "aggregation", "rounds", "missing-out", "command"],
)
def test_unknown_flag_values_are_argparse_errors_naming_the_value(argv, message, capsys, no_training):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "usage: lens-relearn" in captured.err


def test_finetune_of_an_unknown_model_lists_the_known_specs(capsys, no_training):
    assert main(["finetune", "no-such-model", "--n-train", "10"]) == 2
    error = error_of(capsys)
    assert "Cannot load model spec 'no-such-model'" in error
    assert "Known offline specs: minilm, smollm2, tiny-gpt2, tiny-bert" in error


def test_finetune_on_a_missing_data_folder_names_the_sources(capsys, no_training):
    assert main(["finetune", "tiny-bert", "--data", "/no/such/folder"]) == 2
    error = error_of(capsys)
    assert "Unknown NER source '/no/such/folder': use 'synthetic'; a folder of CoNLL files" in error
    assert "DatasetDict.save_to_disk" in error and "'hf:ID'" in error and "'conll2003'" in error


def test_finetune_on_a_folder_without_conll_files_names_the_missing_split(tmp_path, capsys, no_training):
    assert main(["finetune", "tiny-bert", "--data", str(tmp_path)]) == 2
    assert f"{tmp_path} has no train file; expected one of eng.train, train.txt" in error_of(capsys)


def test_sites_of_an_unknown_model_is_a_user_error(capsys):
    assert main(["sites", "no-such-model"]) == 2
    error = error_of(capsys)
    assert "Cannot load model spec 'no-such-model'" in error and "Known offline specs" in error


def test_sites_prints_each_site_of_a_known_model(capsys):
    assert main(["sites", "tiny-bert"]) == 0
    out = capsys.readouterr().out
    assert "mlp     2 layers x 256 units = 512 neurons" in out
    assert "resid   3 layers x 64 units = 192 neurons" in out


# `report` on a folder without a finished run: tests/unit/test_viz.py
# (test_report_of_an_unfinished_folder_says_what_to_do).


def run_output(monkeypatch, capsys, summary: dict, out) -> list[str]:
    """The lines `run --quiet --no-report` prints for a study whose summary.json holds ``summary``."""
    typed = StudySummary.from_dict(summary)
    monkeypatch.setattr(lens_relearn.study.runner, "run_experiment", lambda config, out, progress, device: typed)
    assert main(["run", "--preset", "quick", *SMALL, "--out", str(out), "--quiet", "--no-report"]) == 0
    return capsys.readouterr().out.splitlines()


def test_run_prints_the_other_types_f1_and_the_selectivity_of_each_pruning_arm(tiny_run, tmp_path, monkeypatch, capsys):
    summary = json.loads((tiny_run / "summary.json").read_text())
    lines = run_output(monkeypatch, capsys, summary, tmp_path)
    assert len(lines) == 12 and lines[-1] == f"results: {tmp_path.resolve()}"
    assert lines[2].split() == ["stage", "F1", "LOC", "F1", "others", "F1"]
    collateral = summary["collateral"]["arms"]
    others = collateral["concept"]["other_f1"]
    rows = [line.split() for line in lines[3:7]]
    assert [row[0] for row in rows] == ["base", "pruned", "round1", "round2"]
    assert [row[3] for row in rows] == [f"{others[stage]:.3f}" for stage in ("base", "pruned", "round1", "round2")]
    random = summary["arms"]["random"]["concept_f1"]
    assert lines[7] == f"random arm LOC F1: pruned {random['pruned']:.3f}, last {random['rounds'][-1]:.3f}"
    assert lines[8].startswith("none arm LOC F1: ")
    chosen = {arm: collateral[arm]["selectivity"]["pruned"] for arm in ("concept", "random", "none")}
    expected = ", ".join(f"{arm} arm {value:.2f}" for arm, value in chosen.items())
    assert lines[9] == f"selectivity after pruning: {expected}"
    assert lines[10].startswith("analyses not run: regrowth (")


def test_run_prints_n_a_where_the_other_types_have_no_f1(tiny_run, tmp_path, monkeypatch, capsys):
    summary = json.loads((tiny_run / "summary.json").read_text())
    collateral = summary["collateral"]["arms"]
    collateral["concept"]["other_f1"]["pruned"] = None
    collateral["concept"]["selectivity"]["pruned"] = None
    for arm in ("random", "none"):  # a study of the concept arm alone
        del collateral[arm], summary["arms"][arm]
    lines = run_output(monkeypatch, capsys, summary, tmp_path)
    assert lines[4].split()[0] == "pruned" and lines[4].split()[3] == "n/a"
    assert lines[7] == "selectivity after pruning: concept arm n/a"


def test_the_command_line_offers_every_preset():
    from lens_relearn.cli import PRESET_NAMES
    from lens_relearn.study.config import PRESETS

    assert tuple(PRESETS) == PRESET_NAMES
