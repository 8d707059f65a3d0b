"""SmolLM2 on the CPU: a training step and a pass of predictions on today's path against two faster ones.

The modes: ``float32`` (today's default: float32, AdamW's per-tensor loop), ``fused AdamW`` (float32,
AdamW's fused kernel: ``fused_optimizer``, which the ``decoder`` preset sets) and ``bf16 autocast``
(the matrix products in bfloat16, ``torch.autocast("cpu", dtype=torch.bfloat16)``, used by this CPU's
AVX-512 BF16 instructions where it has them; weights, optimizer and loss in float32; AdamW's loop).

In one process, alternating the modes ``--trials`` times: one training step of a SmolLM2 tagger
(forward, backward, clipping, AdamW) on 16 synthetic training sentences, and the predictions for 64
test sentences (``Tagger.predict``, one batch). Prints each mode's median seconds and the ratio of
its medians to float32's.

With ``--accuracy N``, then fine-tunes a base tagger in each mode from the same weights and seed (one
epoch over N training sentences, the quick preset's rate and batch) and prints each one's LOC F1 on
150 test sentences, predicted in the same mode: what a switch would do to the study's base model.

    python benchmarks/decoder_speed.py --trials 5 --accuracy 400
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from lens_relearn import Tagger, load_model, load_ner, train_tagger
from lens_relearn.data import CONLL_TAGS
from lens_relearn.tagger.scores import concept_scores, evaluate_tagger

MODES = {  # a mode's precision and whether its AdamW is fused
    "float32": (contextlib.nullcontext, False),
    "fused AdamW": (contextlib.nullcontext, True),
    "bf16 autocast": (lambda: torch.autocast("cpu", dtype=torch.bfloat16), False),
}


def step_seconds(tagger: Tagger, optimizer: torch.optim.Optimizer, sentences, mode: str) -> float:
    start = time.perf_counter()
    with MODES[mode][0]():
        loss = tagger.loss(tagger.encode(sentences))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(tagger.parameters(), 1.0)
    optimizer.step()
    return time.perf_counter() - start


def predict_seconds(tagger: Tagger, sentences, mode: str) -> float:
    start = time.perf_counter()
    with MODES[mode][0]():
        tagger.predict(sentences)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="repetitions of each mode, alternating")
    parser.add_argument("--accuracy", type=int, default=0, help="fine-tune a base tagger on N sentences in each mode")
    args = parser.parse_args()
    data = load_ner("synthetic", seed=0, n_train=max(args.accuracy, 16), n_validation=0, n_test=150, n_novel=0)
    base = Tagger(load_model("smollm2"), CONLL_TAGS)
    taggers = {mode: copy.deepcopy(base) for mode in MODES}
    optimizers = {
        mode: torch.optim.AdamW(taggers[mode].parameters(), lr=1e-5, fused=fused or None)
        for mode, (_, fused) in MODES.items()
    }
    train_batch, test_batch = data.train[:16], data.test[:64]
    steps: dict[str, list[float]] = {mode: [] for mode in MODES}
    passes: dict[str, list[float]] = {mode: [] for mode in MODES}
    for mode in MODES:  # warm-up: the first step allocates, the first bf16 product picks its kernels
        step_seconds(taggers[mode], optimizers[mode], train_batch, mode)
        predict_seconds(taggers[mode], test_batch, mode)
    for _ in range(args.trials):
        for mode in MODES:
            taggers[mode].train()
            steps[mode].append(step_seconds(taggers[mode], optimizers[mode], train_batch, mode))
            passes[mode].append(predict_seconds(taggers[mode], test_batch, mode))
    print(f"SmolLM2 tagger, {torch.get_num_threads()} threads, {args.trials} trials a mode (medians)")
    for mode in MODES:
        print(
            f"  {mode:<14} training step (16 sentences) {statistics.median(steps[mode]):6.2f} s   "
            f"predictions (64 sentences) {statistics.median(passes[mode]):6.2f} s"
        )
    for mode in list(MODES)[1:]:
        for name, times in (("training step", steps), ("predictions", passes)):
            ratio = statistics.median(times[mode]) / statistics.median(times["float32"])
            print(f"  {name}: {mode} / float32 = {ratio:.2f}")
    if not args.accuracy:
        return
    for mode, (precision, fused) in MODES.items():
        tagger = copy.deepcopy(base)
        start = time.perf_counter()
        with precision():
            train_tagger(tagger, data.train, epochs=1, lr=1.5e-4, batch_size=16, seed=0, fused=fused, progress=False)
            scores = evaluate_tagger(tagger, data.test)
        loc = concept_scores(scores, ("LOC",))["f1"]
        print(
            f"  {mode:<14} base tagger, 1 epoch on {len(data.train)} sentences: LOC F1 {loc:.3f}, "
            f"F1 {scores['f1']:.3f} ({time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    main()
