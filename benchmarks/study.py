"""Where the wall time of a study goes: training, describing the stages, and monitoring the training.

Runs a preset study (``run_experiment``, no progress bars) into a temporary folder (or
``--out``, which must be empty or absent: a folder with results would be resumed, not run)
and times, in the same process, what the study calls:

- training: ``train_tagger`` (through ``lens_relearn.study.skeleton``), less the monitoring inside it;
- monitoring: the recovery analysis's ``evaluate_tagger`` calls (its curves' points);
- describing: ``shared_pass`` and ``top_tokens`` (through ``lens_relearn.study.stage``: the forward
  passes that give every split's F1, the activation statistics, the probes' word vectors, every
  neuron's top tokens and class composition), ``probe_layers`` (the probes analysis fitting the layer
  probes) and ``Relocation.after_seed`` (the causal relocation test).

The timed attributes are wrapped for the run and restored after it. The rest of the wall time
is "other": loading data and models, ranking, neuron tables (embedding similarities), saving
taggers and tables, the summary.

Prints wall seconds; each part's seconds and share of the wall time; and the ratio
(describing + monitoring) / training. Then it writes the study's HTML report
(``write_report``, neuron browser included) and prints its seconds and size, apart from the
study's wall time.

    python benchmarks/study.py [--preset quick] [--seeds 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lens_relearn.analyses import probes, recovery, relocation
from lens_relearn.models.loading import quiet_libraries
from lens_relearn.study import runner, skeleton, stage
from lens_relearn.study.config import PRESETS, ExperimentConfig, preset
from lens_relearn.views.report import write_report

TIMED = {  # (owner, attribute): (part, label)
    (skeleton, "train_tagger"): ("training", "training (train_tagger, gross)"),
    (recovery, "evaluate_tagger"): ("monitoring", "monitoring (recovery-curve points)"),
    (stage, "shared_pass"): ("describing", "shared passes (F1, statistics, activations, probe vectors)"),
    (stage, "top_tokens"): ("describing", "top tokens and class composition"),
    (probes, "probe_layers"): ("describing", "fitting the layer probes"),
    (relocation.Relocation, "after_seed"): ("describing", "relocation test"),
}


def timed_run(config: ExperimentConfig, out: Path) -> tuple[float, dict[str, list[float]]]:
    """Run the study with the timed functions wrapped; wall seconds and each call's seconds, by label."""
    calls: dict[str, list[float]] = {label: [] for _, label in TIMED.values()}
    originals = {key: getattr(*key) for key in TIMED}

    def timer(label: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                calls[label].append(time.perf_counter() - start)

        return wrapper

    for (owner, name), function in originals.items():
        setattr(owner, name, timer(TIMED[owner, name][1], function))
    try:
        start = time.perf_counter()
        runner.run_experiment(config, out, progress=False)
        wall = time.perf_counter() - start
    finally:
        for (owner, name), function in originals.items():
            setattr(owner, name, function)
    return wall, calls


def report(config: ExperimentConfig, wall: float, calls: dict[str, list[float]]) -> None:
    seconds = {label: sum(values) for label, values in calls.items()}
    part = {p: sum(seconds[label] for q, label in TIMED.values() if q == p) for p in ("monitoring", "describing")}
    training = seconds["training (train_tagger, gross)"] - part["monitoring"]  # the monitor runs inside it
    other = wall - training - part["monitoring"] - part["describing"]
    stages = len(config.seeds) * (1 + len(config.arms) * (len(config.stages()) - 1))

    def line(label: str, value: float, indent: int = 0, count: int | None = None) -> None:
        times = f"  ({count} calls)" if count is not None else ""
        print(f"{' ' * indent}{label:<{50 - indent}} {value:8.1f} s  {value / wall:6.1%}{times}")

    print(
        f"{config.model}: {len(config.seeds)} seed(s), arms {', '.join(config.arms)}, {config.rounds} rounds, "
        f"{stages} stages described, {config.n_train} training sentences"
    )
    print(f"{'wall':<50} {wall:8.1f} s  {1:6.1%}")
    line("training (net of monitoring)", training)
    label = "monitoring (recovery-curve points)"
    line(label, part["monitoring"], count=len(calls[label]))
    line("describing", part["describing"])
    for p, label in TIMED.values():
        if p == "describing":
            line(label, seconds[label], indent=2, count=len(calls[label]))
    line("other (loading, ranking, writing...)", other)
    ratio = (part["describing"] + part["monitoring"]) / training if training else float("inf")
    print(f"ratio (describing + monitoring) / training: {ratio:.2f}")


def timed_report(out: Path) -> None:
    """Write the finished study's report and print how long it took and how large it is."""
    start = time.perf_counter()
    with quiet_libraries():
        path = write_report(out)
    seconds, size = time.perf_counter() - start, path.stat().st_size / 1e6
    print(f"report (write_report, after the study): {seconds:.1f} s, {size:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        default="quick",
        choices=sorted(PRESETS),
        help="the study's preset (default: quick, about 3 min on 2 cores)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the preset's)")
    parser.add_argument("--out", type=Path, help="results folder, empty or absent (default: a temporary one)")
    args = parser.parse_args()
    changes = {"seeds": tuple(args.seeds)} if args.seeds else {}
    config = preset(args.preset, **changes)
    if args.out is not None:
        if args.out.exists() and any(args.out.iterdir()):
            raise SystemExit(f"{args.out} is not empty: a study there would resume, not run; choose another folder.")
        wall, calls = timed_run(config, args.out)
        report(config, wall, calls)
        timed_report(args.out)
        print(f"results: {args.out.resolve()}")
    else:
        with tempfile.TemporaryDirectory(prefix="lens-relearn-study-") as folder:
            wall, calls = timed_run(config, Path(folder) / "run")
            report(config, wall, calls)
            timed_report(Path(folder) / "run")


if __name__ == "__main__":
    main()
