"""The analysis seam: what an analysis is, what a study hands it, and the registry the runner iterates.

The runner keeps the core of a study: fine-tune, remove, retrain, and describe each stage (F1,
statistics, ranking, top tokens; the neuron and layer tables). Everything else is an
``Analysis``, registered in ``ANALYSES``: the runner asks each registered one whether it applies
to the config, what it needs from the stage's one shared pass, whether it watches training,
what it records at a stage and after a seed, and finally its section of the summary. A user adds
one with ``register_analysis`` (docs/design.md §23).

Example:
    >>> class Words(Analysis):
    ...     name = "words"
    ...     def at_stage(self, study, outcome):
    ...         return {"words": pd.DataFrame({"words": [sum(map(len, study.inputs.corpus))]})}
    >>> with ANALYSES.registered(Words()):
    ...     "words" in ANALYSES.names()
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd
import torch
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from lens_relearn.data.sentences import Concept, Sentence
from lens_relearn.data.sources import subsample
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import ActivationStats
from lens_relearn.neurons.passes import PassResult
from lens_relearn.neurons.pruning import PruneSpec
from lens_relearn.neurons.ranking import Ranking
from lens_relearn.study.config import ExperimentConfig, arm_parts
from lens_relearn.study.folders import StageKey, StudyFolder
from lens_relearn.study.inputs import Inputs
from lens_relearn.study.registry import Registry
from lens_relearn.study.tables import token_vectors
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores, evaluate_tagger


@dataclass(frozen=True)
class Needs:
    """What an analysis needs from a stage's shared pass beyond the core's statistics and predictions.

    Attributes:
        vectors: Every word's residual-stream vectors, of the concept corpus and of the test split.
        composition: The class composition of each neuron's top-activating words (in the neuron table).
        test_words: The words of a fixed subset of the test split (``word_sample``) at the site and the residual
            stream (``StageOutcome.test_pass.words``).
    """

    vectors: bool = False
    composition: bool = False
    test_words: bool = False

    def __or__(self, other: Needs) -> Needs:
        return Needs(*(a or b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))


@runtime_checkable
class TrainingMonitor(Protocol):
    """Watches a training run: called as ``monitor(steps, sentences)`` every ``every`` steps and after the last."""

    every: int

    def __call__(self, steps: int, seen: int) -> None: ...


@runtime_checkable
class AppliedRemoval(Protocol):
    """What a removal did to a model: the neurons it took out (none for a removal that is not of neurons),
    how far removed weights grew back, and the handle that undoes what can be undone."""

    @property
    def neurons(self) -> tuple[Neuron, ...]: ...

    def regrowth(self) -> dict: ...

    def remove(self) -> None: ...


@dataclass(frozen=True)
class StageOutcome:
    """What the core found at a stage, handed to every analysis and to the run's observer.

    Attributes:
        key: The stage.
        tagger: The model as the stage left it (its removal applied).
        removed: The arm's removal (None at the base stage).
        scores: ``evaluate_tagger`` scores of every evaluation split, by split.
        stats: Activation statistics on the concept corpus.
        ranking: The config's ranking of the site's neurons.
        neurons: The stage's neuron table (``neurons.parquet``).
        corpus_pass: The shared pass over the concept corpus (residual vectors when an analysis needs them).
        test_pass: The pass over the test split.
        trained: Whether the stage trained (the base fine-tune, a round) or only removed.
        monitors: The training monitors of the analyses that watched this stage's training, by name.
    """

    key: StageKey
    tagger: Tagger
    removed: AppliedRemoval | None
    scores: dict[str, dict]
    stats: ActivationStats
    ranking: Ranking
    neurons: pd.DataFrame
    corpus_pass: PassResult
    test_pass: PassResult
    trained: bool
    monitors: Mapping[str, TrainingMonitor]

    @property
    def removed_neurons(self) -> tuple[Neuron, ...]:
        return self.removed.neurons if self.removed is not None else ()


class StudyContext:
    """What an analysis sees of a study: its config, inputs and folder, and helpers they share.

    Args:
        config: The study's config.
        inputs: What it reads, checked.
        folder: Its run folder.
        device: Where models run.
        progress: Whether progress bars show.
    """

    def __init__(
        self, config: ExperimentConfig, inputs: Inputs, folder: StudyFolder, device: torch.device, progress: bool
    ) -> None:
        self.config, self.inputs, self.folder, self.device, self.progress = config, inputs, folder, device, progress
        self.sections: dict[str, Any] = {}  # the summary sections of the analyses summarised so far, by name
        self._base_vectors: dict[int, Tensor] = {}
        self._kept: dict[tuple[str, int], Any] = {}

    @property
    def stages(self) -> list[str]:
        return self.config.stages()

    @property
    def main_arm(self) -> str:
        """The study's first arm, whose curves the summary's headline gives."""
        return self.config.arms[0]

    @property
    def concept_arm(self) -> str | None:
        """The first arm that removes the concept's best-ranked neurons (None if no arm does)."""
        return next((arm for arm in self.config.arms if arm_parts(arm)[0] == "concept"), None)

    def stage_keys(self) -> list[tuple[str, StageKey]]:
        """Every stage of every seed, as ``(arm, key)``: seed by seed, then arm by arm (the base stage once an arm)."""
        arms, seeds = self.config.arms, self.config.seeds
        return [(arm, StageKey(seed, arm, stage)) for seed in seeds for arm in arms for stage in self.stages]

    def prune_spec(self, seed: int) -> PruneSpec:
        """How the config prunes, with the base model's unit means when it masks to the mean."""
        return prune_spec(self.config, self.folder, seed, self.inputs.site.units)

    def base_token_vectors(self, seed: int) -> Float[Tensor, "neurons dim"]:
        """The ``token_vectors`` of the base model's top tokens (read from its neuron table once a seed)."""
        if seed not in self._base_vectors:
            table = self.folder.stage_table(StageKey(seed, None, "base"))
            self._base_vectors[seed] = token_vectors(self.inputs.embedder, [text.split() for text in table.top_tokens])
        return self._base_vectors[seed]

    def kept(self, name: str, seed: int, make: Callable[[], Any]) -> Any:
        """What ``make`` returns, made once a study and seed (an analysis's reference, e.g. the base model's
        representations: after a resume it is made again)."""
        if (name, seed) not in self._kept:
            self._kept[name, seed] = make()
        return self._kept[name, seed]

    def ablated_f1(self, tagger: Tagger, seed: int, ablated: Sequence[Neuron]) -> dict:
        """``headline_f1`` on the test split with some neurons ablated for the while (mask hooks)."""
        scores = evaluate_ablated(tagger, self.inputs.data.test, ablated, self.prune_spec(seed))
        return headline_f1(scores, self.inputs.concept)

    @cached_property
    def records(self) -> list[dict]:
        """Every stage's ``stage.json``, with its arm (``stage_keys`` order)."""
        return [{**self.folder.stage_record(key), "arm": arm} for arm, key in self.stage_keys()]

    def stage_tables(self, name: str) -> pd.DataFrame:
        """A table every stage wrote, concatenated with its ``seed``, ``arm`` and ``stage`` (``stage_keys`` order)."""
        return pd.concat(
            [
                self.folder.stage_table(key, name).assign(seed=key.seed, arm=arm, stage=key.stage)
                for arm, key in self.stage_keys()
            ],
            ignore_index=True,
        )


class Analysis:
    """One analysis of a study; subclass it, override what it does, and register an instance.

    Attributes:
        name: Its key in the registry, in ``summary.json`` and in ``--analyses``.
        needs: What it needs from each stage's shared pass.
        requires: Analyses whose records it reads (they must run too).
        summary_type: The class of its summary section (``summarise`` returns one), for reading it back.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[Needs] = Needs()
    requires: ClassVar[tuple[str, ...]] = ()
    summary_type: ClassVar[type | None] = None

    def applies(self, config: ExperimentConfig) -> str | None:
        """None if it applies to ``config``, else why not (the report says so)."""
        return None

    def monitor(
        self, study: StudyContext, key: StageKey, tagger: Tagger, start: tuple[int, int], steps: int
    ) -> TrainingMonitor | None:
        """A monitor for the training of stage ``key`` (``start``: its steps and sentences since pruning before
        this training, which takes ``steps`` steps), or None."""
        return None

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        """The tables it records at a stage, by name (written into the stage's folder before ``stage.json``)."""
        return {}

    def after_seed(self, study: StudyContext, seed: int) -> dict | None:
        """What it records once a seed's arms are finished (``seed{s}/{name}.json``), or None."""
        return None

    def summarise(self, study: StudyContext) -> Any:
        """Its summary section (a ``summary_type``), after every seed; it may write its run tables and read the
        sections of the analyses it requires (``study.sections``: they are summarised first)."""
        return None


ANALYSES: Registry[Analysis] = Registry("analysis")


def register_analysis(analysis: Analysis, *, replace: bool = False) -> Analysis:
    """Add an analysis to every study run from now on (``ANALYSES.registered`` for a ``with`` block only)."""
    return ANALYSES.register(analysis, replace=replace)


def chosen_analyses(config: ExperimentConfig) -> tuple[list[Analysis], dict[str, str]]:
    """The analyses a study runs, in registry order, and why each other registered one does not.

    Raises:
        LensRelearnError: ``config.analyses`` names an analysis that is not registered, or leaves out one that
            an analysis it names reads.
    """
    asked = config.analyses or ()
    for name in asked:
        for needed in ANALYSES.get(name).requires:
            if needed not in asked:
                raise LensRelearnError(f"The analysis {name!r} reads what {needed!r} records: add it to analyses.")
    chosen, skipped = [], {}
    for analysis in ANALYSES:
        reason = analysis.applies(config)
        if config.analyses is not None and analysis.name not in config.analyses:
            reason = "not among the analyses asked for"
        if reason is None:
            chosen.append(analysis)
        else:
            skipped[analysis.name] = reason
    return chosen, skipped


def word_sample(config: ExperimentConfig, test: Sequence[Sentence]) -> list[int]:
    """The indices of the test sentences whose words are compared across stages (``Needs.test_words``): a fixed
    subset of ``distance_sentences``, the same for every seed and stage."""
    return subsample(list(range(len(test))), config.distance_sentences, 0, "words")


def prune_spec(config: ExperimentConfig, folder: StudyFolder, seed: int, units: int) -> PruneSpec:
    """How ``config`` prunes; with ``prune_value="mean"``, each neuron's mean activation on the concept corpus at
    the seed's base stage (its neuron table's ``mean``)."""
    means = None
    if config.prune_value == "mean":
        column = folder.stage_table(StageKey(seed, None, "base"))["mean"].to_numpy()
        means = rearrange(torch.tensor(column), "(layers units) -> layers units", units=units)
    return PruneSpec(config.site, config.prune_mode, config.prune_value, config.freeze, means)


def evaluate_ablated(tagger: Tagger, sentences: Sequence[Sentence], neurons: Sequence[Neuron], spec: PruneSpec) -> dict:
    """``evaluate_tagger`` with some neurons ablated as ``spec`` says, by mask hooks taken off after."""
    handle = spec.ablation().apply(tagger.model, neurons)
    try:
        return evaluate_tagger(tagger, sentences)
    finally:
        handle.remove()


def headline_f1(scores: dict, concept: Concept) -> dict:
    """Overall F1, the concept's F1 and the other entity types' mean F1 (None if the split has none)
    of ``evaluate_tagger`` scores."""
    return {
        "f1": scores["f1"],
        "concept_f1": concept_scores(scores, concept.members)["f1"],
        "other_f1": finite(mean_f1(scores, concept.contrast)),
    }


def mean_f1(scores: dict, kinds: Sequence[str]) -> float:
    """Mean F1 of the entity types among ``kinds`` that the split has (NaN if none)."""
    present = [scores["per_type"][kind]["f1"] for kind in kinds if scores["per_type"].get(kind, {}).get("support")]
    return sum(present) / len(present) if present else math.nan


def finite(value: float) -> float | None:
    """A number for JSON: NaN becomes None."""
    return None if math.isnan(value) else float(value)
