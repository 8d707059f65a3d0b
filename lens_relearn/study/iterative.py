"""Iterative removal: cut out whatever carries the concept after each relearning, until it stays gone.

The relearning study prunes once and watches the concept come back. A removal run asks the
safety question behind it: from the base tagger, repeat: choose ``step`` neurons not pruned yet on
the current model (the best-ranked by the study's ranking on the concept corpus, or, with
``method="learned_mask"``, a mask learned on the training split), prune them (the masks
accumulate), retrain, and score. It stops when the concept stays gone (its
validation F1 after retraining at most ``gone_share`` of the base model's for ``patience``
iterations in a row), when the task itself is dying (the other entity types' mean validation F1
below ``floor_share`` of theirs), or after ``max_iterations`` iterations or ``max_fraction`` of the
site's neurons. A random arm prunes as many random neurons at every iteration, for as many
iterations, as the control. Every iteration is written atomically (its ``iteration.json`` last),
so an interrupted run resumes after its last finished iteration and ends with the same table.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from lens_relearn import parallel
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.neurons.pruning import PruneSpec, random_neurons
from lens_relearn.study.analysis import finite, headline_f1
from lens_relearn.study.config import RemovalConfig
from lens_relearn.study.folders import RemovalFolder
from lens_relearn.study.inputs import Inputs, load_inputs
from lens_relearn.study.skeleton import base_tagger, launched, learned_mask, rank, train
from lens_relearn.study.summary import to_plain
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import evaluate_tagger

REMOVAL_ARMS = ("concept", "random")
STOP_GONE = "the concept stayed gone"
STOP_FLOOR = "the other types fell below the floor"
STOP_ITERATIONS = "the maximum number of iterations"
STOP_NEURONS = "the maximum share of neurons"
STOP_MATCHED = "as many iterations as the concept arm"


@dataclass(frozen=True)
class RemovalArm:
    """One arm's iterations: the share of neurons removed so far, F1s on the test split, each ranking's layers."""

    iterations: int
    pruned_share: list[float]
    concept_f1_before: list[float]
    concept_f1_after: list[float]
    other_f1_after: list[float | None]
    layer_saliency: list[list[float]]
    seconds: float


@dataclass(frozen=True)
class RemovalSummary:
    """What an iterative removal's ``summary.json`` says.

    Attributes:
        neurons: The site's neurons; ``step``: how many an iteration removes.
        base: The base tagger's ``headline_f1`` on the validation and test splits.
        stop: Why the concept arm stopped, after ``iterations`` iterations and ``pruned_share`` of the neurons.
        gone_at: The first iteration after which the concept was below ``gone_share`` of its base validation
            F1, and ``gone_share_removed`` the share of neurons removed by then (None: it never was).
        arms: Each arm's iterations.
        method: How the concept arm chose its neurons (``ranking``, ``learned_mask``; ``ranking`` in a summary
            written before there was a choice).
    """

    model: str
    concept: str
    site: str
    ranking: str
    seed: int
    neurons: int
    step: int
    base: dict[str, dict[str, float | None]]
    stop: str
    iterations: int
    pruned_share: float
    gone_at: int | None
    gone_share_removed: float | None
    arms: dict[str, RemovalArm]
    seconds: float
    method: str = "ranking"


class _Removal:
    """One removal run of a config in a folder; each iteration is computed once and read back after."""

    def __init__(
        self, config: RemovalConfig, inputs: Inputs, folder: RemovalFolder, progress: bool, device: torch.device
    ) -> None:
        self.config, self.inputs, self.folder, self.device = config, inputs, folder, device
        self.progress = progress and parallel.is_main()
        self.study = config.study
        self.seed = self.study.seeds[0]
        self.concept, self.site = inputs.concept, inputs.site
        self.step = config.step(self.site.n_neurons)
        self.limit = int(config.max_fraction * self.site.n_neurons)
        if self.step > self.limit:
            raise LensRelearnError(
                f"An iteration prunes {self.step} neurons, more than max_fraction={config.max_fraction} of the "
                f"{self.site.n_neurons} neurons allows ({self.limit}); lower the step or raise max_fraction."
            )

    def run(self) -> RemovalSummary:
        base = self._base()
        for arm in REMOVAL_ARMS:
            self._arm(arm, base)
        return self._summarise(base)

    def _scores(self, tagger: Tagger) -> dict:
        """Overall, concept and other types' mean F1 on the validation and test splits."""
        return {
            split: headline_f1(evaluate_tagger(tagger, getattr(self.inputs.data, split)), self.concept)
            for split in ("validation", "test")
        }

    def _base(self) -> dict:
        """The base tagger's scores (fine-tuned, or loaded from ``base_checkpoint``, once)."""
        if not self.folder.has_base(self.seed):
            tagger = base_tagger(self.study, self.inputs, self.seed, self.device, progress=self.progress)
            tagger.save(self.folder.base_dir(self.seed) / "tagger")
            self.folder.write_base(self.seed, {"scores": self._scores(tagger)})
        return self.folder.base(self.seed)

    def _tagger(self, arm: str, done: int) -> Tagger:
        """The tagger after ``done`` finished iterations, every neuron pruned so far masked."""
        tagger = Tagger.load(self.folder.base_dir(self.seed) / "tagger", device=self.device)
        if done:
            self._prune(tagger, self.folder.pruned(self.seed, arm, done))
            tagger.load_weights(self.folder.iteration_dir(self.seed, arm, done) / "tagger")
        return tagger

    def _prune(self, tagger: Tagger, neurons: list[Neuron]) -> None:
        study = self.study
        PruneSpec(study.site, study.prune_mode, study.prune_value, study.freeze, self.means).apply(
            tagger.model, neurons
        )

    @functools.cached_property
    def means(self) -> torch.Tensor | None:
        """The base model's mean activation of every unit on the concept corpus (``prune_value="mean"`` only)."""
        if self.study.prune_value != "mean":
            return None
        tagger = Tagger.load(self.folder.base_dir(self.seed) / "tagger", device=self.device)
        return collect_stats(tagger.model, self.inputs.corpus, site=self.study.site, progress=False).mean()

    def _arm(self, arm: str, base: dict) -> None:
        done = self.folder.finished_iterations(self.seed, arm)
        if done and self.folder.iteration(self.seed, arm, done)["stop"]:
            return
        target = self.folder.finished_iterations(self.seed, "concept") if arm == "random" else None
        tagger = self._tagger(arm, done)
        pruned = self.folder.pruned(self.seed, arm, done) if done else []
        streak = self.folder.iteration(self.seed, arm, done)["gone_streak"] if done else 0
        reference = base["scores"]["validation"]
        for iteration in range(done + 1, self.config.max_iterations + 1):
            start = time.perf_counter()
            ranking = rank(self.study, tagger, self.inputs, progress=False)
            taken = set(pruned)
            if arm == "concept" and self.config.method == "learned_mask":
                seed = self.seed * 1000 + iteration
                new = list(learned_mask(self.study, tagger, self.inputs, self.step, seed=seed, exclude=pruned).neurons)
            elif arm == "concept":
                new = [n for n in ranking.neurons() if n not in taken][: self.step]
            else:
                new = random_neurons(
                    tagger.model, self.step, site=self.study.site, seed=self.seed * 1000 + iteration, exclude=pruned
                )
            self._prune(tagger, new)
            pruned = sorted(taken | set(new))
            before = self._scores(tagger)
            train(
                self.study,
                tagger,
                self.inputs.data.train,
                epochs=self.config.retrain_epochs,
                seed=self.seed * 1000 + iteration,
                progress=self.progress,
            )
            after = self._scores(tagger)
            gone = after["validation"]["concept_f1"] <= self.config.gone_share * reference["concept_f1"]
            streak = streak + 1 if gone else 0
            stop = self._stop(arm, iteration, len(pruned), streak, after, reference, target)
            tagger.save(self.folder.iteration_dir(self.seed, arm, iteration) / "tagger")
            per_layer = [0] * self.site.n_layers
            for layer, _ in pruned:
                per_layer[layer] += 1
            record = {
                "iteration": iteration,
                "new": len(new),
                "pruned": len(pruned),
                "pruned_share": len(pruned) / self.site.n_neurons,
                "pruned_per_layer": per_layer,
                "new_per_layer": [sum(1 for n in new if n.layer == layer) for layer in range(self.site.n_layers)],
                "layer_saliency": [row["mean"] for row in ranking.layer_saliency(exclude=list(taken))],
                "before": before,
                "after": after,
                "gone_streak": streak,
                "stop": stop,
                "seconds": time.perf_counter() - start,
            }
            self.folder.write_iteration(self.seed, arm, iteration, pruned, record)
            if stop:
                return

    def _stop(
        self, arm: str, iteration: int, pruned: int, streak: int, after: dict, reference: dict, target: int | None
    ) -> str | None:
        """Why the arm stops after this iteration, or None."""
        if target is not None:
            return STOP_MATCHED if iteration >= target else None
        others, floor = after["validation"]["other_f1"], reference["other_f1"]
        if streak >= self.config.patience:
            return STOP_GONE
        if others is not None and floor is not None and others < self.config.floor_share * floor:
            return STOP_FLOOR
        if iteration >= self.config.max_iterations:
            return STOP_ITERATIONS
        if pruned + self.step > self.limit:
            return STOP_NEURONS
        return None

    def _table(self) -> pd.DataFrame:
        """``removal.csv``: a row an arm and iteration, F1s before and after retraining on both splits."""
        rows = []
        for arm in REMOVAL_ARMS:
            for iteration in range(1, self.folder.finished_iterations(self.seed, arm) + 1):
                record = self.folder.iteration(self.seed, arm, iteration)
                row = {"seed": self.seed, "arm": arm, "iteration": iteration}
                row.update({key: record[key] for key in ("new", "pruned", "pruned_share")})
                for when in ("before", "after"):
                    for split, prefix in (("test", ""), ("validation", "validation_")):
                        for metric, value in record[when][split].items():
                            row[f"{prefix}{metric}_{when}"] = value
                row["stop"] = record["stop"]
                rows.append(row)
        return pd.DataFrame(rows)

    def _summarise(self, base: dict) -> RemovalSummary:
        table = self._table()
        self.folder.write_table("removal", table)
        concept = table[table.arm == "concept"]
        gone = concept[concept.validation_concept_f1_after <= self.config.gone_share * _base_f1(base, "validation")]
        last = self.folder.iteration(self.seed, "concept", int(concept.iteration.max()))
        arms = {}
        for arm in REMOVAL_ARMS:
            rows = table[table.arm == arm]
            records = [self.folder.iteration(self.seed, arm, i) for i in range(1, len(rows) + 1)]
            arms[arm] = RemovalArm(
                len(rows),
                rows.pruned_share.tolist(),
                rows.concept_f1_before.tolist(),
                rows.concept_f1_after.tolist(),
                [finite(value) for value in rows.other_f1_after],
                [record["layer_saliency"] for record in records],
                sum(record["seconds"] for record in records),
            )
        gone_at, gone_share = (
            (int(gone.iteration.iloc[0]), float(gone.pruned_share.iloc[0])) if len(gone) else (None, None)
        )
        study = self.study
        return RemovalSummary(
            study.model,
            self.concept.name,
            study.site,
            study.ranking,
            self.seed,
            self.site.n_neurons,
            self.step,
            base["scores"],
            last["stop"],
            int(concept.iteration.max()),
            last["pruned_share"],
            gone_at,
            gone_share,
            arms,
            sum(arm.seconds for arm in arms.values()),
            self.config.method,
        )


def _base_f1(base: dict, split: str) -> float:
    return base["scores"][split]["concept_f1"]


def run_removal(
    config: RemovalConfig, out_dir: str | Path, *, progress: bool = True, device: str | None = None
) -> RemovalSummary:
    """Run (or resume) an iterative removal and write its results to ``out_dir``.

    Args:
        config: What to run.
        out_dir: Where results go: ``run.json``, ``summary.json``, ``removal.csv`` (one row an
            arm and iteration: neurons pruned so far, F1, concept F1 and the other types' mean F1
            before and after retraining on the test and validation splits, the stopping reason),
            and a folder an iteration. A folder holding an interrupted run of the same config
            resumes after its last finished iteration.
        progress: Show progress bars.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when there is one); under
            ``torchrun``, data-parallel (``lens_relearn.parallel``).

    Returns:
        The summary (also written to ``summary.json``): why and when the concept arm stopped,
        the first iteration at which the concept was gone after retraining, each arm's curve.

    Raises:
        LensRelearnError: The config asks for something impossible, or ``out_dir`` holds a run of
            another config.
    """
    folder = RemovalFolder(out_dir)
    folder.check(config)
    with launched(device, progress) as where:
        inputs = load_inputs(config.study, where)
        removal = _Removal(config, inputs, folder, progress, where)
        folder.claim(config)
        summary = removal.run()
    folder.write_summary(to_plain(summary))
    return summary
