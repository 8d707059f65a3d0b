"""The new removals' own cost against one epoch of the tagger's training on the same split, side by side.

Fine-tunes MiniLM as the preset does (its base epochs, on its training split; or loads the base
tagger given with ``--base-checkpoint``), then times, in turn and ``--trials`` times each: one
epoch of ``train_tagger`` on the training split (from the base tagger, saved and loaded again
before the clock starts), ``learn_mask`` with the preset's budget and ``mask_steps`` on the same
split, and ``erase_concept`` on the preset's concept corpus (the validation split). Prints each
timing and each removal's median over the epoch's median (the goal is at most 1), and writes the
same to ``OUT/removals.json``.

    python benchmarks/removals.py --out runs/bench-removals [--preset default] [--trials 2] \
        [--base-checkpoint DIR]

``OUT`` must be empty or absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.erasure import erase_concept
from lens_relearn.study.config import preset
from lens_relearn.study.inputs import load_inputs
from lens_relearn.study.skeleton import base_tagger, learned_mask
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.training import train_tagger


def timed(what: Callable[[], object]) -> float:
    start = time.perf_counter()
    what()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder: empty or absent")
    parser.add_argument("--preset", default="default", help="the study preset whose sizes and settings are timed")
    parser.add_argument("--trials", type=int, default=2, help="timings of each")
    parser.add_argument("--base-checkpoint", help="a base tagger of the preset's, saved (skips the fine-tune)")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty; choose another folder.")
    args.out.mkdir(parents=True, exist_ok=True)
    config = preset(args.preset, base_checkpoint=args.base_checkpoint)
    inputs = load_inputs(config)
    tagger = base_tagger(config, inputs, 0, torch.device("cpu"), progress=False)
    tagger.save(args.out / "base")
    k = config.prune_count_for(neuron_site(tagger.model, config.site).n_neurons)

    def epoch() -> float:
        fresh = Tagger.load(args.out / "base")  # loaded before the clock starts
        return timed(
            lambda: train_tagger(
                fresh, inputs.data.train, epochs=1, lr=config.lr, batch_size=config.batch_size, progress=False
            )
        )

    def mask() -> float:
        return timed(lambda: learned_mask(config, tagger, inputs, k, seed=0))

    def erase() -> float:
        start = time.perf_counter()
        erased = erase_concept(tagger.model, inputs.corpus, inputs.corpus_concept, progress=False)
        seconds = time.perf_counter() - start
        erased.remove()
        return seconds

    timings: dict[str, list[float]] = {"epoch": [], "learned_mask": [], "erase": []}
    for _ in range(args.trials):
        for name, what in (("epoch", epoch), ("learned_mask", mask), ("erase", erase)):
            timings[name].append(what())
    medians = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "preset": args.preset,
        "train_sentences": len(inputs.data.train),
        "concept_corpus_sentences": len(inputs.corpus),
        "budget": k,
        "mask_steps": config.mask_steps,
        "seconds": timings,
        "ratio_to_one_epoch": {name: medians[name] / medians["epoch"] for name in ("learned_mask", "erase")},
    }
    (args.out / "removals.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.preset}: {len(inputs.data.train)} training sentences, budget {k} units, {config.mask_steps} steps")
    for name, values in timings.items():
        print(f"{name:<14} " + " ".join(f"{v:7.1f}" for v in values) + " s")
    for name, ratio in result["ratio_to_one_epoch"].items():
        print(f"{name} / one epoch: {ratio:.2f} (goal <= 1)")
    print(f"results: {args.out.resolve()}")


if __name__ == "__main__":
    main()
