"""Cost of describing one stage on a large concept corpus, against one ``collect_stats`` pass over it.

Writes a concept corpus of 2,500 synthetic sentences (``load_ner("synthetic")``'s training
split) as NeuroX token/label files (``tokens.txt``, ``labels.txt``; words tagged B-LOC or I-LOC
are ``SEM:named_entity:location``, every other word ``N/A``), plus one sentence of 700 words,
longer than the model's 512 tokens. Then, in one process:

- describing: a quick study on that corpus (``run_experiment``, arm ``concept``, one round) into
  ``OUT/study``; the pruned stage trains nothing, so its ``stage.json`` seconds are the cost of
  describing one stage;
- one pass: ``collect_stats`` of the pruned stage's model (``load_stage``) over the same corpus
  (site ``mlp``, aggregation ``first``, as the study), timed twice, the smaller kept.

Prints the corpus's size, both seconds, their ratio (describing / one pass; the target is at most
1.5) and how many long-sentence warnings ("longer than ... tokens") the study raised (the target is
one); writes the same to ``OUT/describe.json``.

    python benchmarks/describe.py --out runs/bench-describe

``OUT`` must be empty or absent, or hold an earlier run of this script (its study is removed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lens_relearn.data.conll import read_token_label_files
from lens_relearn.data.sources import load_ner
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.study.config import preset
from lens_relearn.study.runner import load_stage, run_experiment

CONCEPT = "SEM:named_entity:location"
SENTENCES = 2500
LONG_WORDS = 700


def write_corpus(out: Path) -> tuple[Path, Path]:
    """The concept corpus as token/label files in ``out``."""
    sentences = load_ner("synthetic", seed=7, n_train=SENTENCES, n_validation=0, n_test=0, n_novel=0).train
    lines = [(s.words, [CONCEPT if tag in ("B-LOC", "I-LOC") else "N/A" for tag in s.tags]) for s in sentences]
    lines.append((["the"] * LONG_WORDS, ["N/A"] * LONG_WORDS))
    tokens, labels = out / "tokens.txt", out / "labels.txt"
    tokens.write_text("".join(" ".join(words) + "\n" for words, _ in lines))
    labels.write_text("".join(" ".join(tags) + "\n" for _, tags in lines))
    return tokens, labels


def long_warnings(caught: list[warnings.WarningMessage]) -> int:
    return sum("longer than" in str(w.message) for w in caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder: empty, absent, or an earlier run's")
    args = parser.parse_args()
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if not (out / "tokens.txt").is_file():
            raise SystemExit(f"{out} is not empty and holds no earlier run of this benchmark; choose another folder.")
        shutil.rmtree(out / "study", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    tokens, labels = write_corpus(out)
    corpus = read_token_label_files(tokens, labels)
    words = sum(len(s.words) for s in corpus)

    config = preset(
        "quick", concept_corpus=f"{tokens},{labels}", corpus_concept=CONCEPT, arms=("concept",), rounds=1, seeds=(0,)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        run_experiment(config, out / "study", progress=False)
        wall = time.perf_counter() - start
    study_warnings = long_warnings(caught)
    record = json.loads((out / "study" / "seed0" / "concept" / "pruned" / "stage.json").read_text())
    describe = record["seconds"]

    model = load_stage(out / "study", "pruned", seed=0, arm="concept").model
    passes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            start = time.perf_counter()
            collect_stats(model, corpus, site="mlp", aggregation="first", progress=False)
            passes.append(time.perf_counter() - start)
    one_pass = min(passes)

    result = {
        "sentences": len(corpus),
        "words": words,
        "study_seconds": wall,
        "describe_seconds": describe,
        "collect_stats_seconds": one_pass,
        "collect_stats_runs": passes,
        "ratio": describe / one_pass,
        "long_sentence_warnings": study_warnings,
        "long_sentence_warnings_collect_stats": long_warnings(caught),
    }
    (out / "describe.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"concept corpus: {len(corpus)} sentences, {words} words (one of {LONG_WORDS} words)")
    print(f"{'study wall time':<42} {wall:8.1f} s")
    print(f"{'describing the pruned stage (stage.json)':<42} {describe:8.1f} s")
    print(f"{'collect_stats, one pass (best of 2)':<42} {one_pass:8.1f} s")
    print(f"ratio describing / one pass: {result['ratio']:.2f} (target <= 1.5)")
    print(f"long-sentence warnings in the study: {study_warnings} (target 1)")
    print(f"  (and in the 2 collect_stats passes: {result['long_sentence_warnings_collect_stats']})")
    print(f"results: {out.resolve()}")


if __name__ == "__main__":
    main()
