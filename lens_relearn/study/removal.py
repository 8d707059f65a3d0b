"""Iterative removal: cut out whatever carries the concept after each relearning, until it stays gone.

The relearning study prunes once and watches the concept come back. A removal run asks the
safety question behind it: from the base tagger, repeat: rank the neurons on the current model
(the study's ranking on the concept corpus), prune the best-ranked ``step`` of those not pruned
yet (the masks accumulate), retrain, and score. It stops when the concept stays gone (its
validation F1 after retraining at most ``gone_share`` of the base model's for ``patience``
iterations in a row), when the task itself is dying (the other entity types' mean validation F1
below ``floor_share`` of theirs), or after ``max_iterations`` iterations or ``max_fraction`` of the
site's neurons. A random arm prunes as many random neurons at every iteration, for as many
iterations, as the control. Every iteration is written atomically (its ``iteration.json`` last),
so an interrupted run resumes after its last finished iteration and ends with the same table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from lens_relearn import parallel
from lens_relearn.data.sentences import find_concept
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.loading import load_model, quiet_libraries
from lens_relearn.models.sites import Neuron, neuron_site
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.pruning import prune, random_neurons
from lens_relearn.neurons.ranking import Ranking, rank_neurons
from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.run_folder import RemovalFolder
from lens_relearn.study.runner import headline_f1
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import evaluate_tagger

REMOVAL_ARMS = ("concept", "random")
STOP_GONE = "the concept stayed gone"
STOP_FLOOR = "the other types fell below the floor"
STOP_ITERATIONS = "the maximum number of iterations"
STOP_NEURONS = "the maximum share of neurons"
STOP_MATCHED = "as many iterations as the concept arm"


@dataclass(frozen=True)
class RemovalConfig:
    """Everything that defines an iterative removal run; round-trips through JSON.

    The ``study`` config gives the model, the data, the concept and its corpus, the site, the
    ranking, the pruning mode, the base fine-tune and the training settings (its arms, rounds
    and relocation settings are not used). Its first seed is the run's.

    Example:
        >>> RemovalConfig(step_fraction=0.0)
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: step_fraction=0.0 must lie in (0, 1].
    """

    study: ExperimentConfig = field(default_factory=lambda: preset("default"))
    step_fraction: float = 0.05
    step_count: int | None = None
    retrain_epochs: int = 1
    gone_share: float = 0.5
    patience: int = 2
    floor_share: float = 0.9
    max_iterations: int = 10
    max_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.step_fraction <= 1:
            raise LensRelearnError(f"step_fraction={self.step_fraction} must lie in (0, 1].")
        if self.step_count is not None and self.step_count < 1:
            raise LensRelearnError(f"step_count={self.step_count} must be at least 1 (or None: step_fraction).")
        for name in ("retrain_epochs", "patience", "max_iterations"):
            if getattr(self, name) < 1:
                raise LensRelearnError(f"{name}={getattr(self, name)} must be at least 1.")
        for name in ("gone_share", "floor_share", "max_fraction"):
            if not 0 <= getattr(self, name) <= 1.5:
                raise LensRelearnError(f"{name}={getattr(self, name)} must lie in [0, 1.5] (a share of base F1).")

    def to_json(self) -> str:
        """The config as JSON (the study config nested)."""
        values = dataclasses.asdict(self)
        values["study"] = json.loads(self.study.to_json())
        return json.dumps(values, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RemovalConfig:
        """A config from ``to_json`` output."""
        values = json.loads(text)
        values["study"] = ExperimentConfig.from_json(json.dumps(values["study"]))
        return cls(**values)

    def replace(self, **changes: Any) -> RemovalConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def step(self, n_neurons: int) -> int:
        """Neurons pruned an iteration, of a site of ``n_neurons``."""
        return self.step_count or max(1, round(self.step_fraction * n_neurons))


REMOVAL_PRESETS: dict[str, dict[str, Any]] = {
    # MiniLM on the default study's data and ranking: 5% of the MLP neurons an iteration, one epoch of
    # retraining, at most 8 iterations (40%); about 22 minutes on 2 CPU cores.
    "removal": {"study": "default", "step_fraction": 0.05, "retrain_epochs": 1, "max_iterations": 8, "patience": 2},
}


def removal_preset(name: str, **changes: Any) -> RemovalConfig:
    """A removal preset with some fields changed (``study=`` takes an ``ExperimentConfig``).

    Example:
        >>> removal_preset("removal").study.ranking, removal_preset("removal").max_iterations
        ('importance_ratio', 8)
    """
    if name not in REMOVAL_PRESETS:
        raise LensRelearnError(f"Unknown removal preset {name!r}; the presets are {', '.join(REMOVAL_PRESETS)}.")
    fields = dict(REMOVAL_PRESETS[name])
    fields["study"] = preset(fields["study"])
    return RemovalConfig(**{**fields, **changes})


class _Removal:
    """One removal run of a config in a folder; each iteration is computed once and read back after."""

    def __init__(self, config: RemovalConfig, folder: RemovalFolder, progress: bool, device: torch.device) -> None:
        self.config, self.folder, self.progress, self.device = config, folder, progress and parallel.is_main(), device
        study = config.study
        self.study = study
        self.seed = study.seeds[0]
        self.data = study.load_data()
        self.corpus, self.corpus_concept = study.load_concept_corpus(self.data)
        self.concept = find_concept(study.concept, self.data.labels)
        self.site = neuron_site(load_model(study.model, device=device), study.site)
        self.step = config.step(self.site.n_neurons)
        self.limit = int(config.max_fraction * self.site.n_neurons)
        if self.step > self.limit:
            raise LensRelearnError(
                f"An iteration prunes {self.step} neurons, more than max_fraction={config.max_fraction} of the "
                f"{self.site.n_neurons} neurons allows ({self.limit}); lower the step or raise max_fraction."
            )

    def run(self) -> dict:
        base = self._base()
        for arm in REMOVAL_ARMS:
            self._arm(arm, base)
        return self._summarise(base)

    def _scores(self, tagger: Tagger) -> dict:
        """Overall, concept and other types' mean F1 on the validation and test splits."""
        return {
            split: headline_f1(evaluate_tagger(tagger, getattr(self.data, split)), self.concept)
            for split in ("validation", "test")
        }

    def _base(self) -> dict:
        """The base tagger's scores (fine-tuned, or loaded from ``base_checkpoint``, once)."""
        if not self.folder.has_base(self.seed):
            study = self.study
            if study.base_checkpoint:
                tagger = Tagger.load(study.base_checkpoint, device=self.device)
            else:
                tagger = study.new_tagger(self.data.labels, self.seed, self.device)
                study.train(tagger, self.data.train, epochs=study.base_epochs, seed=self.seed, progress=self.progress)
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
        prune(
            tagger.model,
            neurons,
            site=study.site,
            mode=study.prune_mode,
            value=study.prune_value,
            means=self.means,
            freeze=study.freeze,
        )

    @functools.cached_property
    def means(self) -> Tensor | None:
        """The base model's mean activation of every unit on the concept corpus (``prune_value="mean"`` only)."""
        if self.study.prune_value != "mean":
            return None
        tagger = Tagger.load(self.folder.base_dir(self.seed) / "tagger", device=self.device)
        return collect_stats(tagger.model, self.corpus, site=self.study.site, progress=False).mean()

    def _rank(self, tagger: Tagger) -> Ranking:
        study = self.study
        if study.ranking == "attribution":
            return rank_by_attribution(tagger, self.corpus, self.corpus_concept, site=study.site, progress=False)
        stats = collect_stats(tagger.model, self.corpus, site=study.site, aggregation=study.aggregation, progress=False)
        return rank_neurons(stats, self.corpus_concept, method=study.ranking)

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
            ranking = self._rank(tagger)
            taken = set(pruned)
            if arm == "concept":
                new = [n for n in ranking.neurons() if n not in taken][: self.step]
            else:
                new = random_neurons(
                    tagger.model, self.step, site=self.study.site, seed=self.seed * 1000 + iteration, exclude=pruned
                )
            self._prune(tagger, new)
            pruned = sorted(taken | set(new))
            before = self._scores(tagger)
            self.study.train(
                tagger,
                self.data.train,
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

    def _summarise(self, base: dict) -> dict:
        rows = []
        for arm in REMOVAL_ARMS:
            for iteration in range(1, self.folder.finished_iterations(self.seed, arm) + 1):
                record = self.folder.iteration(self.seed, arm, iteration)
                row = {
                    "seed": self.seed,
                    "arm": arm,
                    "iteration": iteration,
                    "new": record["new"],
                    "pruned": record["pruned"],
                    "pruned_share": record["pruned_share"],
                }
                for when in ("before", "after"):
                    for split, prefix in (("test", ""), ("validation", "validation_")):
                        for metric, value in record[when][split].items():
                            row[f"{prefix}{metric}_{when}"] = value
                row["stop"] = record["stop"]
                rows.append(row)
        table = pd.DataFrame(rows)
        self.folder.write_table(table)
        concept = table[table.arm == "concept"]
        gone = concept[concept.validation_concept_f1_after <= self.config.gone_share * _base_f1(base, "validation")]
        last = self.folder.iteration(self.seed, "concept", int(concept.iteration.max()))
        return {
            "kind": "removal",
            "model": self.study.model,
            "concept": self.concept.name,
            "site": self.study.site,
            "ranking": self.study.ranking,
            "seed": self.seed,
            "neurons": self.site.n_neurons,
            "step": self.step,
            "base": base["scores"],
            "stop": last["stop"],
            "iterations": int(concept.iteration.max()),
            "pruned_share": last["pruned_share"],
            "first_gone": (
                {"iteration": int(gone.iteration.iloc[0]), "pruned_share": float(gone.pruned_share.iloc[0])}
                if len(gone)
                else None
            ),
            "arms": {
                arm: {
                    "iterations": int((table.arm == arm).sum()),
                    "pruned_share": table[table.arm == arm].pruned_share.tolist(),
                    "concept_f1_before": table[table.arm == arm].concept_f1_before.tolist(),
                    "concept_f1_after": table[table.arm == arm].concept_f1_after.tolist(),
                    "other_f1_after": table[table.arm == arm].other_f1_after.tolist(),
                    "layer_saliency": [
                        self.folder.iteration(self.seed, arm, i)["layer_saliency"]
                        for i in range(1, int((table.arm == arm).sum()) + 1)
                    ],
                }
                for arm in REMOVAL_ARMS
            },
            "seconds": sum(
                self.folder.iteration(self.seed, arm, i)["seconds"]
                for arm in REMOVAL_ARMS
                for i in range(1, self.folder.finished_iterations(self.seed, arm) + 1)
            ),
        }


def _base_f1(base: dict, split: str) -> float:
    return base["scores"][split]["concept_f1"]


def run_removal(
    config: RemovalConfig, out_dir: str | Path, *, progress: bool = True, device: str | None = None
) -> dict:
    """Run (or resume) an iterative removal and write its results to ``out_dir``.

    Args:
        config: What to run.
        out_dir: Where results go: ``removal.json``, ``summary.json``, ``removal.csv`` (one row an
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
    where = parallel.resolve_device(device)
    parallel.start(where)
    folder = RemovalFolder(out_dir)
    if folder.has_config() and RemovalConfig.from_json(folder.config_text()) != config:
        raise LensRelearnError(f"{folder.path} holds a removal run of a different config; choose another folder.")
    with contextlib.nullcontext() if progress else quiet_libraries():
        removal = _Removal(config, folder, progress, where)
        if not folder.has_config():
            folder.write_config(config.to_json())
        summary = removal.run()
    folder.write_summary(summary)
    return summary
