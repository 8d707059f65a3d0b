"""The relearning study: fine-tune, remove, retrain in rounds, and describe every stage.

For each seed the base tagger is fine-tuned (or loaded) and described; then each arm starts from
it: its removal (``lens_relearn.study.removal``: ``concept``, ``random``, ``none`` or one a user
registered) is applied for good, and the arm is described after the removal and after every
retraining round. Describing a stage is the core's (``describe_stage``); every registered
analysis that applies then records what it measures (``lens_relearn.study.analysis``). Every
stage is written to the run folder atomically as it finishes, so an interrupted run resumes
after its last finished stage and ends with the same results.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lens_relearn import parallel
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import neuron_site
from lens_relearn.study.analysis import (
    Analysis,
    AppliedRemoval,
    Needs,
    StageOutcome,
    StudyContext,
    TrainingMonitor,
    chosen_analyses,
    prune_spec,
)
from lens_relearn.study.config import ExperimentConfig, arm_parts
from lens_relearn.study.folders import StageKey, StudyFolder, write_json
from lens_relearn.study.inputs import load_inputs
from lens_relearn.study.removal import REMOVALS, RemovalContext, check_arms
from lens_relearn.study.skeleton import base_tagger, launched, new_schedule, train
from lens_relearn.study.stage import describe_stage
from lens_relearn.study.summary import StudySummary, core_summary
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.training import steps_per_epoch

StageObserver = Callable[[StageOutcome], None]


class _Study:
    """One run of a config in a folder; each stage is computed once and read back after."""

    def __init__(self, study: StudyContext, analyses: Sequence[Analysis], observer: StageObserver | None) -> None:
        self.study, self.analyses, self.observer = study, analyses, observer
        self.needs = functools.reduce(operator.or_, (analysis.needs for analysis in analyses), Needs())

    def run(self, skipped: dict[str, str]) -> StudySummary:
        study = self.study
        for seed in study.config.seeds:
            self._base(seed)
            for arm in study.config.arms:
                self._arm(seed, arm)
            for analysis in self.analyses:
                path = study.folder.seed_record_path(seed, analysis.name)
                if not path.is_file() and (record := analysis.after_seed(study, seed)) is not None:
                    write_json(path, record)
        summary = core_summary(study, [analysis.name for analysis in self.analyses], skipped)
        for analysis in self.analyses:
            if (section := analysis.summarise(study)) is not None:
                study.sections[analysis.name] = section
        return dataclasses.replace(summary, sections=dict(study.sections))

    def _base(self, seed: int) -> None:
        study, key = self.study, StageKey(seed, None, "base")
        if study.folder.is_finished(key):
            return
        start = time.perf_counter()
        monitors: dict[str, TrainingMonitor] = {}

        def watch(tagger: Tagger, steps: int) -> list[TrainingMonitor]:
            monitors.update(self._monitors(key, tagger, (0, 0), steps))
            return list(monitors.values())

        tagger = base_tagger(study.config, study.inputs, seed, study.device, progress=study.progress, watch=watch)
        tagger.save(study.folder.tagger_dir(key))
        self._finish(key, tagger, None, start, trained=not study.config.base_checkpoint, monitors=monitors)

    def _arm(self, seed: int, arm: str) -> None:
        study, config, folder = self.study, self.study.config, self.study.folder
        tagger = Tagger.load(folder.tagger_dir(StageKey(seed, None, "base")), device=study.device)
        pruned = StageKey(seed, arm, "pruned")
        removal, condition = arm_parts(arm)
        context = RemovalContext(config, folder, pruned, study.inputs.count, study.prune_spec(seed), study.inputs)
        removed = REMOVALS.get(removal).remove(tagger, context)
        if not folder.is_finished(pruned):
            self._finish(pruned, tagger, removed, time.perf_counter(), trained=False, monitors={})
        sentences = study.inputs.retraining[condition, seed]
        round_steps = config.round_epochs * steps_per_epoch(len(sentences), config.batch_size)
        schedule = None if config.restart_optimizer else new_schedule(config, tagger, config.rounds * round_steps)
        for number in range(1, config.rounds + 1):
            key = StageKey(seed, arm, f"round{number}")
            if folder.is_finished(key):
                continue
            if number > 1:
                previous = StageKey(seed, arm, f"round{number - 1}")
                tagger.load_weights(folder.tagger_dir(previous))
                if schedule is not None:
                    schedule.load_state_dict(folder.schedule(previous))
            start = time.perf_counter()
            done = number - 1
            monitors = self._monitors(
                key, tagger, (done * round_steps, done * config.round_epochs * len(sentences)), round_steps
            )
            train(
                config,
                tagger,
                sentences,
                epochs=config.round_epochs,
                seed=seed * 1000 + number,
                progress=study.progress,
                schedule=schedule,
                monitors=list(monitors.values()),
            )
            tagger.save(folder.tagger_dir(key))
            if schedule is not None:
                folder.write_schedule(key, schedule.state_dict())
            self._finish(key, tagger, removed, start, trained=True, monitors=monitors)
        removed.remove()

    def _monitors(
        self, key: StageKey, tagger: Tagger, start: tuple[int, int], steps: int
    ) -> dict[str, TrainingMonitor]:
        """The training monitors of the analyses that watch this stage's training, by name."""
        found = {analysis.name: analysis.monitor(self.study, key, tagger, start, steps) for analysis in self.analyses}
        return {name: monitor for name, monitor in found.items() if monitor is not None}

    def _finish(
        self,
        key: StageKey,
        tagger: Tagger,
        removed: AppliedRemoval | None,
        start: float,
        *,
        trained: bool,
        monitors: dict[str, TrainingMonitor],
    ) -> None:
        """Describe a stage, let every analysis record it, then mark it finished (its record last)."""
        study = self.study
        outcome = describe_stage(study, key, tagger, removed, needs=self.needs, trained=trained, monitors=monitors)
        for analysis in self.analyses:
            for name, table in analysis.at_stage(study, outcome).items():
                study.folder.write_stage_table(key, name, table)
        record = {
            "seed": key.seed,
            "arm": key.arm,
            "stage": key.stage,
            "scores": outcome.scores,
            "pruned": len(outcome.removed_neurons),
            "regrowth": removed.regrowth() if removed is not None else None,
            "seconds": time.perf_counter() - start,
        }
        study.folder.write_stage_record(key, record)
        if self.observer is not None:
            self.observer(outcome)


def load_stage(
    out_dir: str | Path, stage: str, *, seed: int = 0, arm: str = "concept", device: str | torch.device = "cpu"
) -> Tagger:
    """The tagger of a finished stage, with its arm's removal applied again (mask hooks included).

    Args:
        out_dir: A study's folder.
        stage: ``base``, ``pruned`` or ``round1`` ... ``roundR``.
        seed: Which seed's run.
        arm: One of the study's arms (ignored for ``base``).
        device: Where the weights go.

    Example:
        >>> # tagger = load_stage("runs/default", "round3")
        >>> # tagger.model.run_with_cache(...) then shows the pruned, retrained model's activations
    """
    folder = StudyFolder(out_dir)
    config = folder.config
    tagger = Tagger.load(folder.tagger_dir(StageKey(seed, None, "base")), device=device)
    if stage == "base":
        return tagger
    key = StageKey(seed, arm, stage)
    if stage not in config.stages() or arm not in config.arms or not folder.is_finished(key):
        raise LensRelearnError(f"{folder.stage_dir(key)} is not a finished stage of {folder.path}.")
    site = neuron_site(tagger.model, config.site)
    spec = prune_spec(config, folder, seed, site.units)
    context = RemovalContext(
        config, folder, StageKey(seed, arm, "pruned"), config.prune_count_for(site.n_neurons), spec
    )
    REMOVALS.get(arm_parts(arm)[0]).remove(tagger, context)
    if stage != "pruned":
        tagger.load_weights(folder.tagger_dir(key))
    return tagger.eval()


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    device: str | None = None,
    observer: StageObserver | None = None,
) -> StudySummary:
    """Run (or resume) a relearning study and write its results to ``out_dir``.

    Args:
        config: What to run.
        out_dir: Where results go: ``run.json``, ``summary.json``, the core's tables
            (``performance.csv``, ``types.csv``, ``layers.csv``, ``neurons.parquet``), each
            analysis's tables, and one folder a stage (with the tagger after each round). A
            folder holding an interrupted run of the same config is resumed after its last
            finished stage.
        progress: Show progress bars (``False`` hides those of transformers and datasets too).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when there is one). Under
            ``torchrun`` every rank runs the study on its share of the data (``lens_relearn.parallel``).
        observer: Called with every stage's ``StageOutcome`` once the stage is finished (its model
            included), in the order the stages run.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        LensRelearnError: The config asks for something impossible or names a removal or an
            analysis that is not registered (checked before training), or ``out_dir`` holds another
            kind of run or a run of a different config (nothing is written then).
    """
    check_arms(config.arms)
    analyses, skipped = chosen_analyses(config)
    folder = StudyFolder(out_dir)
    folder.check(config)
    with launched(device, progress) as where:
        inputs = load_inputs(config, where)  # the data, the concept, the site and the count, checked
        folder.claim(config)
        study = StudyContext(config, inputs, folder, where, progress and parallel.is_main())
        summary = _Study(study, analyses, observer).run(skipped)
    folder.write_summary(summary.to_dict())
    return summary
