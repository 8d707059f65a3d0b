"""Cost of describing one stage on a large concept corpus, against one ``collect_stats`` pass over it.

Writes a concept corpus of 2,500 synthetic sentences (``load_ner("synthetic")``'s training
split) as NeuroX token/label files (``tokens.txt``, ``labels.txt``; words tagged B-LOC or I-LOC
are ``SEM:named_entity:location``, every other word ``N/A``), plus one sentence of 700 words,
longer than the model's 512 tokens. Then, in one process:

- a quick study on that corpus (``run_experiment``, arm ``concept``, one round) into ``OUT/study``,
  counting its long-sentence warnings;
- five times, side by side: one ``collect_stats`` pass of the pruned stage's model (``load_stage``)
  over the corpus (site ``mlp``, aggregation ``first``, as the study), and describing the pruned
  stage again (its ``stage.json`` removed, the study resumed: the stage trains nothing, so its
  ``stage.json`` seconds are the cost of describing it, every analysis's recording included).

Prints the corpus's size, every timing, where describing's time goes (each pass by split, the top
tokens, every analysis's recording: medians over the repeats, timed by wrapping the calls), the
ratio of the medians (describing / one pass; the target is at most 1.5) and how many long-sentence
warnings ("longer than ... tokens") the study raised (the target is one); writes the same to
``OUT/describe.json``. The machine's noise moves single timings by about a tenth, hence the repeats
and the medians.

    python benchmarks/describe.py --out runs/bench-describe

``OUT`` must be empty or absent, or hold an earlier run of this script (its study is removed).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lens_relearn.data.conll import read_token_label_files
from lens_relearn.data.sources import load_ner
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.study import stage
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.config import preset
from lens_relearn.study.runner import load_stage, run_experiment

CONCEPT = "SEM:named_entity:location"
SENTENCES = 2500
LONG_WORDS = 700
TRIALS = 5


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


@contextlib.contextmanager
def timed_parts(parts: dict[str, float]) -> Iterator[None]:
    """Add to ``parts`` the seconds of each shared pass (by its description), the top tokens and every analysis's
    ``at_stage`` while the block runs."""

    def wrap(name: str | None, call: Callable) -> Callable:
        @functools.wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                part = name or f"pass: {kwargs.get('description')}"
                parts[part] = parts.get(part, 0.0) + time.perf_counter() - start

        return timed

    with contextlib.ExitStack() as undo:
        for owner, attribute, name in [
            (stage, "shared_pass", None),
            (stage, "top_tokens", "top tokens and composition"),
            *((analysis, "at_stage", f"analysis: {analysis.name}") for analysis in ANALYSES),
        ]:
            original = getattr(owner, attribute)
            if attribute in vars(owner):
                undo.callback(setattr, owner, attribute, original)
            else:  # an analysis's method, from its class
                undo.callback(delattr, owner, attribute)
            setattr(owner, attribute, wrap(name, original))
        yield


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
    study = out / "study"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        run_experiment(config, study, progress=False)
        wall = time.perf_counter() - start
    study_warnings = long_warnings(caught)

    model = load_stage(study, "pruned", seed=0, arm="concept").model
    record = study / "seed0" / "concept" / "pruned" / "stage.json"
    passes: list[float] = []
    describing: list[float] = []
    parts: list[dict[str, float]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(TRIALS):
            start = time.perf_counter()
            collect_stats(model, corpus, site="mlp", aggregation="first", progress=False)
            passes.append(time.perf_counter() - start)
            record.unlink()
            parts.append({})
            with timed_parts(parts[-1]):
                run_experiment(config, study, progress=False)
            describing.append(json.loads(record.read_text())["seconds"])
    ratio = statistics.median(describing) / statistics.median(passes)
    medians = {name: statistics.median(trial.get(name, 0.0) for trial in parts) for name in parts[0]}
    shares = dict(sorted(medians.items(), key=lambda item: -item[1]))

    result = {
        "sentences": len(corpus),
        "words": words,
        "study_seconds": wall,
        "describe_seconds": describing,
        "collect_stats_seconds": passes,
        "ratio_of_medians": ratio,
        "describing_parts_seconds": shares,
        "long_sentence_warnings": study_warnings,
    }
    (out / "describe.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"concept corpus: {len(corpus)} sentences, {words} words (one of {LONG_WORDS} words)")
    print(f"{'study wall time':<34} {wall:8.1f} s")
    print(f"{'describing the pruned stage':<34} " + " ".join(f"{s:6.1f}" for s in describing) + " s")
    print(f"{'collect_stats, one pass':<34} " + " ".join(f"{s:6.1f}" for s in passes) + " s")
    for name, seconds in shares.items():
        if seconds >= 0.05:
            print(f"  {name:<32} {seconds:8.2f} s")
    print(f"ratio of the medians, describing / one pass: {ratio:.2f} (target <= 1.5)")
    print(f"long-sentence warnings in the study: {study_warnings} (target 1)")
    print(f"results: {out.resolve()}")


if __name__ == "__main__":
    main()
