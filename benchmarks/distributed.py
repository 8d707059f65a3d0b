"""Throughput of activation statistics and of training on 1 and 2 ranks, side by side in one run.

The same work both ways: ``collect_stats`` of MiniLM over the same validation sentences, and one
epoch of MiniLM's tagger over the same global batches (16 sentences a step). The 1-rank run
has every core as threads; the 2-rank run (``torchrun --standalone --nproc-per-node 2``, gloo
on the CPU) gives each rank half of the cores and half of each batch. The all-reduce's share of
a 2-rank run is timed on the ranks: for the statistics, the four all-reduces of their sums
(count, sum, sum of squares, sum of absolute values); for training, one all-reduce a step of
as many floats as the tagger has trainable parameters (what DDP sends, in buckets, each step).

    python benchmarks/distributed.py [--sentences 400] [--steps 20]

Prints, for statistics and training, the seconds on 1 rank and on 2, the speed-up (1-rank
seconds / 2-rank seconds) and the all-reduce's share of the 2-rank seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from lens_relearn import Tagger, collect_stats, load_model, load_ner, parallel, train_tagger

BATCH = 16


def measure(sentences: int, steps: int) -> dict:
    """Seconds of the statistics and of the training on this process's rank, and of their all-reduces."""
    data = load_ner("synthetic", n_train=steps * BATCH, n_validation=sentences, n_test=1, n_novel=0)
    tagger = Tagger(load_model("minilm"), data.labels)
    collect_stats(tagger.model, data.validation[:32], progress=False)  # warm up
    parallel.barrier()
    start = time.perf_counter()
    stats = collect_stats(tagger.model, data.validation, progress=False)
    statistics = time.perf_counter() - start
    parallel.barrier()
    start = time.perf_counter()
    train_tagger(tagger, data.train, epochs=1, lr=1e-5, batch_size=BATCH, progress=False)
    training = time.perf_counter() - start
    result = {"statistics": statistics, "training": training}
    if parallel.world() > 1:
        start = time.perf_counter()
        for sums in (stats.count, stats.total, stats.total_sq, stats.total_abs):
            parallel.sum_across_ranks(sums.clone())
        result["statistics_reduce"] = time.perf_counter() - start
        gradients = torch.zeros(sum(p.numel() for p in tagger.parameters() if p.requires_grad))
        start = time.perf_counter()
        for _ in range(steps):
            parallel.sum_across_ranks(gradients)
        result["training_reduce"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=400, help="validation sentences for the statistics")
    parser.add_argument("--steps", type=int, default=20, help="training steps of 16 sentences")
    parser.add_argument("--rank-out", type=Path, help=argparse.SUPPRESS)  # given to the ranks of the 2-rank run
    args = parser.parse_args()
    if args.rank_out is not None:
        parallel.start(torch.device("cpu"))
        result = measure(args.sentences, args.steps)
        if parallel.is_main():
            args.rank_out.write_text(json.dumps(result))
        return
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    one = measure(args.sentences, args.steps)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "two.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__]
        environment = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // 2))}
        arguments = ["--sentences", str(args.sentences), "--steps", str(args.steps), "--rank-out", str(out)]
        ranks = subprocess.run([*command, *arguments], check=False, env=environment, capture_output=True, text=True)
        if ranks.returncode:
            sys.exit(f"the 2-rank run failed:\n{ranks.stderr[-4000:]}")
        two = json.loads(out.read_text())
    print(f"MiniLM, {cores} cores: statistics over {args.sentences} sentences; {args.steps} steps of {BATCH} sentences")
    print(f"{'':<12} {'1 rank':>8} {'2 ranks':>8} {'speed-up':>9} {'all-reduce share':>17}")
    for part in ("statistics", "training"):
        share = two[f"{part}_reduce"] / two[part]
        print(f"{part:<12} {one[part]:7.1f}s {two[part]:7.1f}s {one[part] / two[part]:8.2f}x {share:16.1%}")


if __name__ == "__main__":
    main()
