"""Time of ``generate_synthetic`` at its default sizes against a CoNLL round trip of its corpus.

Both run in one process, alternating round by round so machine noise hits both alike:

- generation: ``generate_synthetic(seed=...)`` at the default sizes (6000 train, 1000
  validation, 1000 test, 300 novel-name test sentences);
- CoNLL round trip: the same corpus written with ``write_conll`` (``train.txt``,
  ``valid.txt``, ``test.txt`` and ``novel_test.txt`` in a temporary folder) and read back
  with ``load_ner(folder)`` (the three standard splits) and ``read_conll`` (the novel-name
  split, which ``load_ner`` does not read from a folder); the sentences read back are
  checked to equal the ones written.

Prints the median seconds of each over the rounds (after a warm-up), sentences per second,
the seconds of the process's first generation (which also reads the place-name lexicon),
and the ratio generation / round trip: how many CoNLL round trips one generation costs.

    python benchmarks/synthetic.py [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lens_relearn.data.conll import read_conll, write_conll
from lens_relearn.data.sentences import NerData
from lens_relearn.data.sources import load_ner
from lens_relearn.data.synthetic import generate_synthetic

FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt", "novel_test": "novel_test.txt"}


def round_trip(data: NerData, folder: Path) -> NerData:
    """Write every split as a CoNLL file in ``folder`` and read the corpus back."""
    for split, name in FILES.items():
        write_conll(getattr(data, split), folder / name)
    return dataclasses.replace(load_ner(folder), novel_test=read_conll(folder / FILES["novel_test"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each (after one warm-up)")
    parser.add_argument("--seed", type=int, default=0, help="the corpus seed")
    args = parser.parse_args()

    start = time.perf_counter()
    data = generate_synthetic(seed=args.seed)  # warm-up: loads and caches the lexicon
    cold = time.perf_counter() - start
    sentences = sum(len(split) for split in data.splits().values())
    words = sum(len(s) for split in data.splits().values() for s in split)
    seconds: dict[str, list[float]] = {"generation": [], "CoNLL round trip": []}
    with tempfile.TemporaryDirectory(prefix="lens-relearn-bench-") as folder:
        back = round_trip(data, Path(folder))  # warm-up, and the check that it is a round trip
        for split in FILES:
            if getattr(back, split) != getattr(data, split):
                raise SystemExit(f"the CoNLL round trip changed the {split} split")
        for _ in range(args.rounds):
            start = time.perf_counter()
            data = generate_synthetic(seed=args.seed)
            seconds["generation"].append(time.perf_counter() - start)
            start = time.perf_counter()
            round_trip(data, Path(folder))
            seconds["CoNLL round trip"].append(time.perf_counter() - start)

    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(
        f"corpus: {sentences} sentences, {words} words (default sizes, seed {args.seed}); "
        f"median of {args.rounds} rounds"
    )
    for name, value in median.items():
        spread = f"{min(seconds[name]):.3f}..{max(seconds[name]):.3f}"
        print(f"{name:<17} {value:7.3f} s  ({spread} s)  {sentences / value:9.0f} sentences/s")
    print(f"first generation in this process (reading the lexicon included): {cold:.3f} s")
    print(f"ratio generation / CoNLL round trip: {median['generation'] / median['CoNLL round trip']:.2f}")


if __name__ == "__main__":
    main()
