"""Throughput and memory of ``collect_stats`` on MiniLM.

1. Throughput: ``collect_stats`` against a plain forward pass of the same model over the same
   batches (tokenisation included in both), alternating in one run; prints words per second
   of each and their ratio (``collect_stats`` / plain).
2. Memory: peak resident memory of a fresh process that collects statistics on N sentences,
   and of one that does so on 4N; prints both and their ratio.

    python benchmarks/collect_stats.py [--sentences 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from lens_relearn import load_model, load_ner
from lens_relearn.data import encode
from lens_relearn.data.alignment import length_batches
from lens_relearn.neurons.activations import collect_stats


def corpus(n: int):
    return load_ner("synthetic", n_train=1, n_validation=n, n_test=1, n_novel=1).validation


def plain_forward(model, sentences, batch_size: int = 32) -> None:
    with torch.no_grad():
        for indices in length_batches(sentences, batch_size):
            batch = encode(model.tokenizer, [sentences[i] for i in indices])
            model.original_model.base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)


def throughput(n: int, rounds: int) -> None:
    model = load_model("minilm")
    sentences = corpus(n)
    words = sum(len(s) for s in sentences)
    runs = {
        "collect_stats": lambda: collect_stats(model, sentences, progress=False),
        "plain forward": lambda: plain_forward(model, sentences),
    }
    for run in runs.values():  # warm-up
        run()
    seconds = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    rate = {name: words / statistics.median(values) for name, values in seconds.items()}
    for name, value in rate.items():
        print(f"{name:<14} {value:8.0f} words/s ({n} sentences, {words} words, median of {rounds})")
    print(f"throughput ratio collect_stats / plain forward: {rate['collect_stats'] / rate['plain forward']:.3f}")


def peak_memory_mib(n: int) -> float:
    """Peak RSS of a fresh process collecting statistics on n sentences."""
    output = subprocess.run(
        [sys.executable, __file__, "--peak-of", str(n)], check=True, capture_output=True, text=True
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=400, help="N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peak-of", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        collect_stats(load_model("minilm"), corpus(args.peak_of), progress=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    throughput(args.sentences, args.rounds)
    small, large = peak_memory_mib(args.sentences), peak_memory_mib(4 * args.sentences)
    print(
        f"peak memory: N={args.sentences}: {small:.0f} MiB, 4N={4 * args.sentences}: {large:.0f} MiB, "
        f"ratio {large / small:.3f}"
    )


if __name__ == "__main__":
    main()
