"""What a study, a selectivity sweep and an iterative removal share: the launch, the base tagger,
training with the config's settings, the ranking and the learned mask.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch

from lens_relearn import parallel
from lens_relearn.allocator import keep_freed_memory
from lens_relearn.data.alignment import TruncationWarning
from lens_relearn.data.sentences import Sentence
from lens_relearn.models.loading import load_model, quiet_libraries
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import ActivationStats, collect_stats
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.masks import LearnedMask, learn_mask
from lens_relearn.neurons.ranking import Ranking, rank_neurons
from lens_relearn.study.analysis import TrainingMonitor
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.inputs import Inputs
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.training import Schedule, steps_per_epoch, train_tagger


@contextlib.contextmanager
def launched(device: str | None, progress: bool) -> Iterator[torch.device]:
    """Where a run computes (``device``, or CUDA when there is one), with ``torch.distributed`` started under
    ``torchrun``; without ``progress``, transformers and datasets stay quiet. Sentences past the context are
    said once a corpus when the inputs are checked (``load_inputs``), not again at every pass. Freed memory
    stays in the process for the next tensor (``keep_freed_memory``)."""
    keep_freed_memory()
    where = parallel.resolve_device(device)
    parallel.start(where)
    with contextlib.nullcontext() if progress else quiet_libraries(), warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        yield where


def train(
    config: ExperimentConfig,
    tagger: Tagger,
    sentences: Sequence[Sentence],
    *,
    epochs: int,
    seed: int,
    progress: bool,
    schedule: Schedule | None = None,
    monitors: Sequence[TrainingMonitor] = (),
) -> None:
    """``train_tagger`` with the config's batch size and a ``new_schedule`` (or ``schedule``, continued), each monitor
    called every ``monitor.every`` steps and after the last."""
    steps = epochs * steps_per_epoch(len(sentences), config.batch_size)

    def watch(taken: int, seen: int) -> None:
        for monitor in monitors:
            if taken % monitor.every == 0 or taken == steps:
                monitor(taken, seen)

    train_tagger(
        tagger,
        sentences,
        epochs=epochs,
        batch_size=config.batch_size,
        seed=seed,
        schedule=schedule if schedule is not None else new_schedule(config, tagger, steps),
        monitor=watch if monitors else None,
        monitor_every=math.gcd(*(monitor.every for monitor in monitors)) if monitors else 0,
        progress=progress,
    )


def new_schedule(config: ExperimentConfig, tagger: Tagger, steps: int) -> Schedule:
    """AdamW and its rate over ``steps`` with the config's rate, warm-up and kernel (``fused_optimizer``)."""
    return Schedule(
        tagger, steps=steps, lr=config.lr, warmup_fraction=config.warmup_fraction, fused=config.fused_optimizer
    )


def base_tagger(
    config: ExperimentConfig,
    inputs: Inputs,
    seed: int,
    device: torch.device,
    *,
    progress: bool,
    watch: Callable[[Tagger, int], Sequence[TrainingMonitor]] | None = None,
) -> Tagger:
    """The tagger every arm starts from: ``base_checkpoint`` loaded, or the model fine-tuned on the training split
    for ``base_epochs`` (its head drawn from ``seed``), watched by the monitors ``watch(tagger, steps)`` gives."""
    if config.base_checkpoint:
        return Tagger.load(config.base_checkpoint, device=device)
    tagger = Tagger(
        load_model(config.model, device=device), inputs.data.labels, aggregation=config.aggregation, seed=seed
    )
    steps = config.base_epochs * steps_per_epoch(len(inputs.data.train), config.batch_size)
    monitors = watch(tagger, steps) if watch is not None else ()
    train(config, tagger, inputs.data.train, epochs=config.base_epochs, seed=seed, progress=progress, monitors=monitors)
    return tagger


def rank(
    config: ExperimentConfig, tagger: Tagger, inputs: Inputs, *, stats: ActivationStats | None = None, progress: bool
) -> Ranking:
    """The config's ranking of the site's neurons for the concept on the concept corpus (``stats``: the corpus's
    statistics when a pass has them already)."""
    if config.ranking == "attribution":
        return rank_by_attribution(tagger, inputs.corpus, inputs.corpus_concept, site=config.site, progress=progress)
    if stats is None:
        stats = collect_stats(
            tagger.model, inputs.corpus, site=config.site, aggregation=config.aggregation, progress=False
        )
    return rank_neurons(stats, inputs.corpus_concept, method=config.ranking)


def learned_mask(
    config: ExperimentConfig, tagger: Tagger, inputs: Inputs, count: int, *, seed: int, exclude: Sequence[Neuron] = ()
) -> LearnedMask:
    """A mask of ``count`` units of the site (``exclude`` left out) learned on the training split with the config's
    ``mask_*`` settings and batch size (``learn_mask``), without a progress bar."""
    return learn_mask(
        tagger,
        inputs.data.train,
        inputs.concept,
        count,
        site=config.site,
        steps=config.mask_steps,
        lr=config.mask_lr,
        forget=config.mask_forget,
        batch_size=config.batch_size,
        seed=seed,
        exclude=exclude,
        progress=False,
    )
