"""Training a tagger: AdamW with a linear schedule, length-grouped batches, deterministic for a seed."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from lens_relearn.data.sentences import Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.parallel import is_main, mixed_precision, rank, sum_across_ranks, world
from lens_relearn.tagger.model import Tagger


@dataclass
class TrainHistory:
    """What a training run did: the loss of every step and the time of every epoch."""

    losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def length_grouped_batches(
    sentences: Sequence[Sentence], batch_size: int, generator: random.Random
) -> list[list[Sentence]]:
    """Shuffled batches of sentences of similar length, so little compute goes to padding.

    Sentences are shuffled, sorted by length inside windows of 50 batches, cut into batches,
    and the batches shuffled again.
    """
    order = list(range(len(sentences)))
    generator.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(sentences[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    generator.shuffle(batches)
    return [[sentences[i] for i in batch] for batch in batches]


class Schedule:
    """AdamW with linear warm-up and decay over a fixed number of steps.

    The rate follows transformers' ``get_linear_schedule_with_warmup``: with ``w`` warm-up
    steps of ``steps``, step ``i`` (from 0) uses ``lr * i / w`` while ``i < w``, then
    ``lr * max(0, (steps - i) / max(1, steps - w))``, falling to 0 after the last step.
    Without warm-up (``warmup_fraction=0``, every preset) the rates are exactly those of the
    hand-written schedule this replaced. With warm-up they differ in the warm-up steps only:
    transformers starts at 0 (``i / w``) where the old one started at ``lr / w``
    (``(i + 1) / w``): the first warm-up step has rate 0 and updates AdamW's moments only.

    One schedule may span several ``train_tagger`` calls (e.g. retraining rounds that continue
    one schedule); ``state_dict``/``load_state_dict`` carry it across an interruption (a
    ``state_dict`` saved by the old schedule loads too).

    Args:
        tagger: The tagger whose parameters are optimised.
        steps: Steps of the whole schedule.
        lr: Peak learning rate.
        warmup_fraction: Share of the steps over which the rate climbs linearly to ``lr``.
        weight_decay: AdamW weight decay (not applied to biases and norms).
        fused: Use AdamW's fused kernel, one pass over the weights an update instead of the default per-tensor
            loop on the CPU (a SmolLM2 training step in 0.79 of the time: ``benchmarks/decoder_speed.py``); the
            same update up to float rounding.
    """

    def __init__(
        self,
        tagger: nn.Module,
        *,
        steps: int,
        lr: float,
        warmup_fraction: float = 0.0,
        weight_decay: float = 0.01,
        fused: bool = False,
    ) -> None:
        if steps < 1 or lr <= 0 or not 0 <= warmup_fraction < 1:
            raise LensRelearnError(
                f"Need steps >= 1, lr > 0 and 0 <= warmup_fraction < 1; got {steps}, {lr}, {warmup_fraction}."
            )
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in tagger.parameters() if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in tagger.parameters() if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=lr,
            fused=fused or None,
        )
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, num_warmup_steps=int(warmup_fraction * steps), num_training_steps=steps
        )

    def step(self) -> None:
        """Update the parameters from their gradients and advance the learning rate."""
        self.optimizer.step()
        self.scheduler.step()

    def state_dict(self) -> dict:
        """The optimizer's moments and the schedule's position."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def steps_per_epoch(n_sentences: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``n_sentences``."""
    return math.ceil(n_sentences / batch_size)


class _Step:
    """The loss of one global batch: in one process the tagger's; under ``torchrun``, this rank's share of
    it through ``DistributedDataParallel``, scaled so that the averaged gradient is the whole batch's.

    A rank's loss is ``world * (its words' summed cross-entropy) / (words in the whole batch)``;
    DDP averages the ranks' gradients, which gives the gradient of the mean over all the batch's
    words, as one process computes it. A rank whose share is empty (a last batch smaller than the
    world) runs one sentence at weight 0, so that every rank takes part in every step.
    """

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        self.ranks = world()
        self.model = DistributedDataParallel(tagger, find_unused_parameters=True) if self.ranks > 1 else tagger
        self.summed = torch.zeros(())
        self.words = torch.ones(())

    def loss(self, chunk: Sequence[Sentence]) -> Tensor:
        """The loss whose gradient this rank contributes."""
        if self.ranks == 1:
            return self.tagger.loss(self.tagger.encode(chunk))
        mine = list(chunk[rank() :: self.ranks])
        weight = 1.0 if mine else 0.0
        batch = self.tagger.encode(mine or list(chunk[:1]))
        self.words = sum_across_ranks(torch.tensor(batch.n_words * weight))
        summed = nn.functional.cross_entropy(self.model(batch), self.tagger.targets(batch), reduction="sum") * weight
        self.summed = summed.detach().cpu()
        return summed * self.ranks / self.words.to(summed.device)

    def batch_loss(self, loss: Tensor) -> float:
        """The whole batch's mean loss over its words (the same on every rank)."""
        if self.ranks == 1:
            return loss.item()
        return float(sum_across_ranks(self.summed.clone()) / self.words)


def train_tagger(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    *,
    epochs: int = 3,
    lr: float = 5e-5,
    batch_size: int = 16,
    seed: int = 0,
    warmup_fraction: float = 0.0,
    weight_decay: float = 0.01,
    max_grad_norm: float = 1.0,
    fused: bool = False,
    schedule: Schedule | None = None,
    monitor: Callable[[int, int], None] | None = None,
    monitor_every: int = 0,
    progress: bool = True,
) -> TrainHistory:
    """Fine-tune the whole model and the head with AdamW and a linear decay.

    Deterministic on the CPU for a seed (the global random state is left as it was). A monitor
    sees the tagger between steps under a random state of its own, so what it does (an
    evaluation in inference mode) leaves the training, and the weights it ends with, unchanged.

    Args:
        tagger: The tagger to train, in place.
        sentences: Labelled training sentences.
        epochs: Passes over the sentences.
        lr: Peak learning rate (of a new schedule).
        batch_size: Sentences a step.
        seed: Seeds batch order and dropout.
        warmup_fraction: Share of the steps over which the rate climbs to ``lr`` (new schedule).
        weight_decay: AdamW weight decay, not applied to biases and norms (new schedule).
        max_grad_norm: Gradient clipping threshold.
        fused: AdamW's fused kernel (new schedule; ``Schedule``).
        schedule: Continue this schedule instead of starting one over these epochs.
        monitor: Called as ``monitor(steps, sentences)`` after every ``monitor_every`` steps and
            after the last, with the steps taken and the sentences seen so far in this call.
        monitor_every: Steps between monitor calls (0: the monitor is called after the last step only).
        progress: Show a progress bar.

    Returns:
        The loss of every step and the seconds of every epoch.
    """
    if not sentences:
        raise LensRelearnError("No training sentences.")
    if epochs < 1 or batch_size < 1:
        raise LensRelearnError(f"Need epochs >= 1 and batch_size >= 1; got {epochs}, {batch_size}.")
    steps = epochs * steps_per_epoch(len(sentences), batch_size)
    if schedule is None:
        schedule = Schedule(
            tagger, steps=steps, lr=lr, warmup_fraction=warmup_fraction, weight_decay=weight_decay, fused=fused
        )
    history = TrainHistory()
    order = random.Random(seed)
    seen = 0
    tagger.train()
    step = _Step(tagger)
    with torch.random.fork_rng(), tqdm(total=steps, desc="training", disable=not progress or not is_main()) as bar:
        torch.manual_seed(seed + rank())  # each rank's dropout masks its own
        for _ in range(epochs):
            start = time.perf_counter()
            for chunk in length_grouped_batches(sentences, batch_size, order):
                with mixed_precision(tagger.device):
                    loss = step.loss(chunk)
                schedule.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(tagger.parameters(), max_grad_norm)
                schedule.step()
                history.losses.append(step.batch_loss(loss))
                seen += len(chunk)
                taken = len(history.losses)
                if monitor is not None and ((monitor_every and taken % monitor_every == 0) or taken == steps):
                    with torch.random.fork_rng():
                        monitor(taken, seen)
                    tagger.train()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}")
            history.epoch_seconds.append(time.perf_counter() - start)
    tagger.eval()
    return history
