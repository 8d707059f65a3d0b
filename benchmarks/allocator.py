"""Keeping freed memory (``keep_freed_memory``) against glibc's defaults, side by side.

Runs the same study several times in each mode, alternating, each run in a process of its own
(``LENS_RELEARN_KEEP_FREED_MEMORY=0`` gives glibc's defaults): by default the quick preset on
MiniLM with one arm and one round, no report; ``--tiny`` a tiny-bert study of three rounds and two
arms, report included, as the tests run. Prints each run's wall seconds (the process's) and study
seconds (``summary.json``), its minor page faults and peak resident memory; the ratio of the
medians of the study seconds (defaults / kept); and whether every run's summary, ``seconds``
aside, is the same.

    python benchmarks/allocator.py --out runs/bench-allocator [--trials 2] [--tiny]

``OUT`` must be empty or absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUICK = ["--preset", "quick", "--arms", "concept", "--rounds", "1", "--no-report"]
TINY = [
    *("--model", "tiny-bert", "--n-train", "120", "--n-validation", "40", "--n-test", "40", "--n-novel", "10"),
    *("--base-epochs", "1", "--rounds", "3"),
]
MODES = {"defaults": "0", "kept": "1"}


def run(args: list[str], out: Path, keep: str) -> dict:
    """One study in a process of its own: its seconds, page faults, peak memory and summary."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "LENS_RELEARN_KEEP_FREED_MEMORY": keep}
    command = [sys.executable, "-m", "lens_relearn.cli", "run", *args, "--quiet", "--out", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "wall_seconds": wall,
        "study_seconds": summary.pop("seconds"),
        "minor_faults": usage.ru_minflt,
        "peak_mb": usage.ru_maxrss / 1024,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder: empty or absent")
    parser.add_argument("--trials", type=int, default=2, help="runs in each mode")
    parser.add_argument("--tiny", action="store_true", help="a tiny-bert study instead of the quick preset")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty; choose another folder.")
    study = TINY if args.tiny else QUICK
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for trial in range(args.trials):
        for mode, keep in MODES.items():
            done = run(study, args.out / f"{mode}{trial}", keep)
            runs[mode].append(done)
            print(
                f"{mode:<9} wall {done['wall_seconds']:6.1f} s  study {done['study_seconds']:6.1f} s  "
                f"minor faults {done['minor_faults']:>9,}  peak {done['peak_mb']:6.0f} MB",
                flush=True,
            )
    medians = {mode: statistics.median(r["study_seconds"] for r in done) for mode, done in runs.items()}
    ratio = medians["defaults"] / medians["kept"]
    same = all(r["summary"] == runs["kept"][0]["summary"] for done in runs.values() for r in done)
    print(f"study seconds, median: defaults {medians['defaults']:.1f}, kept {medians['kept']:.1f}; ratio {ratio:.2f}")
    print(f"every summary the same (seconds aside): {same}")
    result = {
        "study": study,
        "runs": {mode: [{k: v for k, v in r.items() if k != "summary"} for r in done] for mode, done in runs.items()},
        "ratio_of_median_study_seconds": ratio,
        "summaries_equal": same,
    }
    (args.out / "allocator.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
