"""Two ranks on the CPU (torchrun, gloo) against one process: passes, training, a study, a rank that dies, devices.

The study on two ranks is the one whose rank 1 was killed and which was then run again: its folder,
resumed, must hold what one process writes.

Tolerances, and why:

- Passes: a rank computes each of its batches exactly as one process does (the same batches,
  ``length_batches``), so predictions, probe vectors and top tokens are equal; activation sums
  are float64 sums of the same float32 values added in another order (each rank's partial sum,
  then the all-reduce), equal to within 1e-9 relative.
- Training: each rank encodes only its half of a global batch, so its padding differs and float32
  results differ in the last bits; DDP averages the gradients in another order. With dropout off,
  one epoch's losses agree to 1e-5 relative and the weights to 1e-5 absolute.
- A study: dropout draws other masks on two ranks, so F1 is not bit-equal; on the tiny study it
  agrees to 0.05.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from lens_relearn.cli import main

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
STUDY = [
    "run",
    "--preset",
    "quick",
    "--model",
    "tiny-bert",
    "--n-train",
    "60",
    "--n-validation",
    "30",
    "--n-test",
    "20",
    "--n-novel",
    "10",
    "--base-epochs",
    "1",
    "--rounds",
    "2",
    "--arms",
    "concept",
    "random",
    "none",
    "--quiet",
    "--no-report",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def on_two_ranks(tmp_path_factory) -> dict:
    """What tests/unit/ranks.py computed on two ranks, by name ("passes", "train")."""
    out = tmp_path_factory.mktemp("ranks") / "results.pt"
    subprocess.run([*TORCHRUN, str(HERE / "ranks.py"), str(out)], check=True, env=ENVIRONMENT, capture_output=True)
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def ranks():
    """tests/unit/ranks.py, to compute in this process on one thread, as each rank does (OMP_NUM_THREADS=1):
    float32 results depend on the thread count (docs/design.md §12)."""
    sys.path.insert(0, str(HERE))
    import ranks as module

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield module
    torch.set_num_threads(threads)
    sys.path.remove(str(HERE))


def test_two_ranks_pass_over_sentences_as_one_process_does(on_two_ranks, ranks):
    two, one = on_two_ranks["passes"], ranks.compute("passes")
    for name, value in one["stats"].items():
        torch.testing.assert_close(two["stats"][name], value, rtol=1e-9, atol=1e-9, msg=name)
    assert torch.equal(two["stats"]["count"], one["stats"]["count"])
    assert two["tags"] == one["tags"] and all(
        torch.equal(a, b) for a, b in zip(two["vectors"], one["vectors"], strict=True)
    )
    assert two["predictions"] == one["predictions"]
    assert two["tokens"] == one["tokens"]

    def untied(examples):  # sentences with equal peaks may come in either order
        return [sorted(chosen, key=lambda pair: (-pair[1], pair[0])) for chosen in examples]

    assert untied(two["examples"]) == untied(one["examples"])
    assert torch.equal(two["composition"], one["composition"])


def test_one_epoch_on_two_ranks_trains_as_one_process_with_the_same_global_batch(on_two_ranks, ranks):
    two, one = on_two_ranks["train"], ranks.compute("train")
    assert len(two["losses"]) == len(one["losses"]) == 5
    torch.testing.assert_close(torch.tensor(two["losses"]), torch.tensor(one["losses"]), rtol=1e-5, atol=0)
    moved = 0
    for name, value in one["weights"].items():
        torch.testing.assert_close(two["weights"][name], value, rtol=0, atol=1e-5, msg=name)
        moved += int(not torch.equal(value, ranks.tagger().state_dict()[name]))
    assert moved > 10, "training changed the weights"


def keys(value: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, item in value.items():
        found.add(prefix + key)
        if isinstance(item, dict) and not key.isdigit():
            found |= keys(item, f"{prefix}{key}.")
    return found


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def worker_of(out: Path, local_rank: int) -> int | None:
    """The pid of the torchrun worker of ``local_rank`` that writes into ``out``."""
    for proc in Path("/proc").iterdir():
        try:
            if (
                str(out) in (proc / "cmdline").read_text()
                and f"LOCAL_RANK={local_rank}\0" in (proc / "environ").read_text()
            ):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


class KilledAndRerun(NamedTuple):
    """A tiny study on two ranks whose rank 1 was killed once its first pruned stage was written, then rerun."""

    out: Path
    killed: subprocess.CompletedProcess
    summary_after_kill: bool
    rerun: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory) -> KilledAndRerun:
    out = tmp_path_factory.mktemp("two_ranks") / "run"
    command = [sys.executable, "-m", "lens_relearn", *STUDY, "--nproc", "2", "--out", str(out)]
    process = subprocess.Popen(command, env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / "seed0" / "concept" / "pruned" / "stage.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    victim = worker_of(out, 1)
    assert victim is not None, "rank 1 is running"
    os.kill(victim, signal.SIGKILL)
    output, errors = process.communicate(timeout=600)
    killed = subprocess.CompletedProcess(command, process.returncode, output, errors)
    summary_after_kill = (out / "summary.json").exists()
    rerun = subprocess.run(command, env=ENVIRONMENT, capture_output=True, text=True, check=False)
    return KilledAndRerun(out, killed, summary_after_kill, rerun)


def test_a_rank_that_dies_ends_the_run_with_a_clear_error_and_a_rerun_resumes(killed_and_rerun):
    killed, rerun = killed_and_rerun.killed, killed_and_rerun.rerun
    assert killed.returncode == 2
    assert "lens-relearn: error: a rank of the 2 stopped" in killed.stderr
    assert "Run the same command again" in killed.stderr
    assert not killed_and_rerun.summary_after_kill
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((killed_and_rerun.out / "summary.json").read_text())["concept_f1"]["rounds"]


def test_a_study_on_two_ranks_writes_what_one_process_writes(killed_and_rerun, tiny_run):
    out, finished = killed_and_rerun.out, killed_and_rerun.rerun
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert files(out) == files(tiny_run) - {"report.html"}
    one, two = (json.loads((folder / "summary.json").read_text()) for folder in (tiny_run, out))
    assert keys(two) == keys(one)
    for curve in ("f1", "concept_f1"):
        for a, b in zip(
            [one[curve]["base"], *one[curve]["rounds"]], [two[curve]["base"], *two[curve]["rounds"]], strict=True
        ):
            assert abs(a - b) <= 0.05
    assert finished.stdout.startswith("tiny-bert: 102 of 512 mlp neurons removed") and finished.stderr == ""


@pytest.mark.parametrize(
    "command",
    [
        ["finetune", "tiny-bert", "--n-train", "5"],
        STUDY[:-2],
        ["sweep", "--preset", "quick", "--model", "tiny-bert"],
        ["remove", "--model", "tiny-bert"],
    ],
    ids=["finetune", "run", "sweep", "remove"],
)
def test_cuda_where_there_is_none_says_how_to_run(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA, wherever this runs
    out = [] if command[0] == "finetune" else ["--out", str(tmp_path / "out")]
    assert main([*command, *out, "--device", "cuda"]) == 2
    error = capsys.readouterr().err
    assert "--device cuda: this machine has no CUDA device" in error and "Use --device cpu" in error
    assert not (tmp_path / "out").exists(), "refused before anything was written"
