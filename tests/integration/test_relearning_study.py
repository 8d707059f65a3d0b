"""The relearning study end to end: the quick preset on MiniLM, and resuming after a kill."""

import json
import signal
import subprocess
import sys
import time

import pandas as pd

SUMMARY_KEYS = {
    "model",
    "concept",
    "site",
    "ranking",
    "pruned",
    "f1",
    "concept_f1",
    "arms",
    "layer_saliency",
    "seconds",
}
TINY = [
    "--model",
    "tiny-bert",
    "--n-train",
    "120",
    "--n-validation",
    "40",
    "--n-test",
    "40",
    "--n-novel",
    "10",
    "--base-epochs",
    "1",
    "--rounds",
    "3",
    "--quiet",
    "--no-report",
]


def lens_relearn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lens_relearn.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_quick_preset_writes_every_result(quick_cli_run):
    tmp_path = quick_cli_run.out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert {"count", "mode"} <= summary["pruned"].keys()
    for curve in (
        summary["f1"],
        summary["concept_f1"],
        summary["arms"]["random"]["f1"],
        summary["arms"]["random"]["concept_f1"],
    ):
        assert {"base", "pruned", "rounds"} <= curve.keys() and len(curve["rounds"]) == 2
    assert len(summary["layer_saliency"]["base"]) == 6
    assert json.loads((tmp_path / "run.json").read_text())["kind"] == "study"
    for name in ("run.json", "performance.csv", "layers.csv", "neurons.parquet", "primed.csv"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "seed0" / "concept" / "round2" / "tagger" / "tagger.safetensors").is_file()
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    assert len(neurons[(neurons.arm == "concept") & (neurons.stage == "pruned")]) == 6 * 1536
    assert f"results: {tmp_path.resolve()}" in quick_cli_run.output
    assert summary["data"] == {
        "source": "synthetic",
        "splits": {"train": 400, "validation": 150, "test": 150, "novel_test": 50},
    }
    assert summary["concept_corpus"]["source"] == "validation" and summary["concept_corpus"]["sentences"] == 150


def test_quiet_run_prints_only_the_table_and_paths(quick_cli_run):
    assert quick_cli_run.errors == "", "--quiet should leave stderr empty (no loading bars, no notices)"
    lines = quick_cli_run.output.splitlines()
    assert lines[0].startswith("minilm: ") and lines[-2].startswith("results: ") and lines[-1].startswith("report:  ")
    assert lines[-4].startswith("selectivity after pruning: concept arm ")
    assert lines[-3].startswith("analyses not run: regrowth ("), "the quick preset prunes by mask: no regrowth"
    assert len(lines) == 12, quick_cli_run.output


def test_concept_pruning_removes_loc_more_than_random_pruning_and_loc_comes_back(quick_cli_run):
    """The finding, on MiniLM's real weights (quick preset, test split, held-out place names).

    Measured with ``lens-relearn run --preset quick --seeds S --out DIR`` for S = 0, 1, 2 (LOC F1):

    ======  =====  ==============  =============  ==========
    seed    base   concept-pruned  random-pruned  last round
    ======  =====  ==============  =============  ==========
    0       0.679  0.000           0.608          0.781
    1       0.632  0.030           0.572          0.821
    2       0.697  0.192           0.638          0.866
    ======  =====  ==============  =============  ==========

    Worst seeds: concept-pruned 0.28 of base, 0.45 below random-pruned; random-pruned 0.90 of
    base; last round 1.15 of base. The thresholds leave a margin below each.
    """
    summary = json.loads((quick_cli_run.out / "summary.json").read_text())
    loc, random = summary["concept_f1"], summary["arms"]["random"]["concept_f1"]
    assert loc["base"] > 0.5, "the base tagger should have learnt LOC"
    assert loc["pruned"] < 0.5 * loc["base"], "concept pruning should remove most of LOC"
    assert loc["pruned"] < random["pruned"] - 0.25, "concept pruning should hurt LOC far more than random"
    assert random["pruned"] > 0.75 * loc["base"], "random pruning of as many neurons should cost LOC little"
    assert loc["rounds"][-1] > 0.9 * loc["base"], "retraining should bring LOC back"


def test_the_concept_arm_pruned_the_base_top_k_and_they_stay_silent(quick_cli_run):
    out = quick_cli_run.out
    base = pd.read_parquet(out / "seed0" / "base" / "neurons.parquet")
    pruned = {tuple(n) for n in json.loads((out / "seed0" / "concept" / "pruned" / "pruned.json").read_text())}
    assert len(pruned) == round(0.2 * 6 * 1536)
    assert pruned == set(base[base.position < len(pruned)][["layer", "index"]].itertuples(index=False, name=None))
    neurons = pd.read_parquet(out / "neurons.parquet")
    for arm in ("concept", "random"):
        after = neurons[(neurons.arm == arm) & (neurons.stage != "base")]
        assert after.pruned.sum() == 3 * len(pruned), arm  # pruned, round1, round2
        assert (after[after.pruned]["mean"] == 0.0).all(), arm


def test_a_killed_run_resumes_to_the_same_summary(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    process = lens_relearn("run", *TINY, "--out", str(whole))
    assert process.wait(timeout=600) == 0, process.stdout.read()

    process = lens_relearn("run", *TINY, "--out", str(resumed))
    marker = resumed / "seed0" / "concept" / "round1" / "stage.json"
    deadline = time.time() + 300
    while not marker.is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert marker.is_file() and process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (resumed / "summary.json").exists()
    assert not (resumed / "seed0" / "concept" / "round3" / "stage.json").exists()

    process = lens_relearn("run", *TINY, "--out", str(resumed))
    assert process.wait(timeout=600) == 0, process.stdout.read()
    first = json.loads((whole / "summary.json").read_text())
    second = json.loads((resumed / "summary.json").read_text())
    first.pop("seconds"), second.pop("seconds")
    assert first == second
