"""The relearning study end to end: the quick preset on MiniLM, and resuming after a kill."""

import json
import signal
import subprocess
import sys
import time

import pandas as pd

SUMMARY_KEYS = {
    "model", "concept", "site", "ranking", "pruned", "f1", "concept_f1", "random_baseline",
    "layer_saliency", "seconds",
}
TINY = ["--model", "tiny-bert", "--n-train", "120", "--n-validation", "40", "--n-test", "40",
        "--n-novel", "10", "--base-epochs", "1", "--rounds", "3", "--quiet"]


def lens_relearn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lens_relearn.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_quick_preset_runs_within_three_minutes(quick_cli_run):
    tmp_path, seconds = quick_cli_run.out, quick_cli_run.seconds
    assert seconds < 180, f"the quick preset took {seconds:.0f} s"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert {"count", "mode"} <= summary["pruned"].keys()
    for curve in (summary["f1"], summary["concept_f1"], summary["random_baseline"]["f1"],
                  summary["random_baseline"]["concept_f1"]):
        assert {"base", "pruned", "rounds"} <= curve.keys() and len(curve["rounds"]) == 2
    assert summary["concept_f1"]["base"] > 0.5, "the base tagger should have learnt LOC"
    assert len(summary["layer_saliency"]["base"]) == 6
    for name in ("config.json", "performance.csv", "layers.csv", "neurons.parquet", "primed.csv"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "seed0" / "concept" / "round2" / "tagger" / "tagger.safetensors").is_file()
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    assert len(neurons[(neurons.arm == "concept") & (neurons.stage == "pruned")]) == 6 * 1536
    assert f"results: {tmp_path.resolve()}" in quick_cli_run.output


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
