"""Run folders: a table is read once and copied out; a folder keeps to one kind of run and one config, and a
damaged file is named.

Every folder records its kind and config in ``run.json``; a study, an iterative removal or a sweep given a
folder of another kind, or of another config, stops before it writes anything. The refusals are checked on
copies of the shared tiny study (``tiny_run``), byte for byte.
"""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lens_relearn import LensRelearnError, open_run, removal_preset, run_experiment, run_removal, write_report
from lens_relearn.cli import main
from lens_relearn.study.folders import RunFolder
from lens_relearn.study.sweep import selectivity_sweep


def test_a_table_is_read_once_copied_out_and_forgotten_when_rewritten(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    folder.write_table("primed", pd.DataFrame({"layer": [1, 2], "index": [3, 4]}))
    reads = []
    monkeypatch.setattr(pd, "read_csv", lambda path, read=pd.read_csv: reads.append(path) or read(path))

    first = folder.table("primed")
    first.loc[0, "layer"] = 99
    assert folder.table("primed").layer.tolist() == [1, 2], "a caller's change stays its own"
    assert len(reads) == 1

    folder.write_table("primed", pd.DataFrame({"layer": [5], "index": [6]}))
    assert folder.table("primed").layer.tolist() == [5]
    assert len(reads) == 2


# One kind of run and one config a folder ----------------------------------------------------


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every path under a folder, with each file's bytes (None for a folder)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def assert_unchanged(folder: Path, before: dict[str, bytes | None]) -> None:
    after = contents(folder)
    assert sorted(after.keys() - before.keys()) == [], "paths were added"
    assert sorted(before.keys() - after.keys()) == [], "paths were removed"
    assert [name for name in before if before[name] != after[name]] == [], "files were changed"


@pytest.fixture
def study_copy(tiny_run, tmp_path) -> Path:
    """A copy of the finished tiny study, free to be damaged."""
    return Path(shutil.copytree(tiny_run, tmp_path / "study"))


@pytest.fixture
def tiny_removal(tiny_study):
    """An iterative removal of the tiny study's concept: one iteration a arm, one epoch of retraining."""
    return removal_preset("removal", study=tiny_study.config, max_iterations=1, retrain_epochs=1)


def test_a_removal_into_a_study_folder_is_refused_and_writes_nothing(study_copy, tiny_removal):
    before = contents(study_copy)
    with pytest.raises(LensRelearnError, match=rf"^{re.escape(str(study_copy))} holds a study, not a removal"):
        run_removal(tiny_removal, study_copy, progress=False)
    assert_unchanged(study_copy, before)


REMOVE_TINY = ["remove", "--quiet", "--no-report", "--model", "tiny-bert", "--n-train", "60", "--n-validation", "30"]
REMOVE_TINY += ["--n-test", "20", "--n-novel", "10", "--base-epochs", "1", "--max-iterations", "1"]


def test_the_remove_command_refuses_a_study_folder_and_writes_nothing(study_copy, capsys):
    before = contents(study_copy)
    assert main([*REMOVE_TINY, "--out", str(study_copy)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"lens-relearn: error: {study_copy} holds a study, not a removal")
    assert_unchanged(study_copy, before)


@pytest.fixture(scope="module")
def other_runs(tiny_run, tiny_study, tmp_path_factory) -> dict[str, Path]:
    """A finished removal (from the tiny study's base tagger) and a finished sweep of the tiny study's own config."""
    root = tmp_path_factory.mktemp("other-runs")
    from_base = tiny_study.config.replace(base_checkpoint=str(tiny_run / "seed0" / "base" / "tagger"))
    removal = removal_preset("removal", study=from_base, max_iterations=1, retrain_epochs=1)
    run_removal(removal, root / "removal", progress=False)
    sweep = {"methods": ["probeless"], "fractions": [0.05], "random_seeds": [0]}
    selectivity_sweep(tiny_study.config, root / "sweep", **sweep, progress=False)  # the very config of the study
    return {"removal": root / "removal", "sweep": root / "sweep"}


@pytest.mark.parametrize("kind", ["removal", "sweep"])
def test_a_study_into_a_folder_of_another_kind_is_refused_before_writing_anything(kind, other_runs, tiny_study):
    folder = other_runs[kind]
    assert (folder / "summary.json").is_file(), f"the {kind} finished"
    before = contents(folder)
    with pytest.raises(LensRelearnError, match=rf"^{re.escape(str(folder))} holds a {kind}, not a study"):
        run_experiment(tiny_study.config, folder, progress=False)
    assert_unchanged(folder, before)


@pytest.mark.parametrize(
    ("change", "differs"),
    [({"rounds": 1}, "rounds"), ({"analyses": ("collateral", "probes")}, "analyses")],
    ids=["rounds", "analyses"],
)
def test_a_study_of_another_config_is_refused_and_writes_nothing(change, differs, study_copy, tiny_study):
    before = contents(study_copy)
    message = rf"^{re.escape(str(study_copy))} holds a study of a different config \(it differs in {differs}\)"
    with pytest.raises(LensRelearnError, match=message):
        run_experiment(tiny_study.config.replace(**change), study_copy, progress=False)
    assert_unchanged(study_copy, before)


def test_a_folder_written_before_a_config_field_existed_resumes_with_its_default(study_copy, tiny_study):
    """A field added since (here ``mask_lr``, at its default) is read back as its default: the same config."""
    record = json.loads((study_copy / "run.json").read_text())
    del record["config"]["mask_lr"]
    (study_copy / "run.json").write_text(json.dumps(record))
    stages = {path: path.read_bytes() for path in study_copy.rglob("stage.json")}
    run_experiment(tiny_study.config, study_copy, progress=False)  # accepted: every stage is finished already
    assert stages and all(path.read_bytes() == record for path, record in stages.items())


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_cut_summary_is_named_by_the_report_and_the_notebook_handle(study_copy):
    summary = study_copy / "summary.json"
    (study_copy / "report.html").unlink(missing_ok=True)  # another test may have written one into the shared run
    cut_in_half(summary)
    named = rf"^{re.escape(str(summary))} is damaged"
    with pytest.raises(LensRelearnError, match=named):
        write_report(study_copy)
    with pytest.raises(LensRelearnError, match=named):
        open_run(study_copy).f1_table()
    assert not (study_copy / "report.html").exists()


def test_a_cut_neuron_table_is_named(study_copy):
    neurons = study_copy / "neurons.parquet"
    cut_in_half(neurons)
    with pytest.raises(LensRelearnError, match=rf"^{re.escape(str(neurons))} is damaged"):
        _ = open_run(study_copy).neurons
