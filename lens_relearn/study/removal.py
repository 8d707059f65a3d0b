"""The removal seam: what an arm does to the base tagger before it retrains, and the registry of removals.

An arm is named after a removal (``concept``, ``random``, ``none``, or one a user registered),
optionally followed by its retraining data (``concept@without_concept``). A ``Removal`` chooses
what to remove once, given the base tagger and the study's inputs, saves its choice in the arm's
``pruned`` stage folder (the arms of one removal under other retraining conditions copy it,
``RemovalContext.saved``), and applies it permanently; ``load_stage`` applies the saved choice again.
Removals of neurons subclass ``NeuronRemoval`` and only choose the neurons (docs/design.md §23).

Example:
    >>> class FirstUnits(NeuronRemoval):
    ...     name = "first_units"
    ...     def choose(self, tagger, context):
    ...         return [Neuron(0, index) for index in range(context.count)]
    >>> with REMOVALS.registered(FirstUnits()):
    ...     ExperimentConfig(arms=("first_units", "concept")).arms
    ('first_units', 'concept')
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.pruning import PruneSpec
from lens_relearn.study.analysis import AppliedRemoval
from lens_relearn.study.config import ExperimentConfig, arm_parts
from lens_relearn.study.folders import StageKey, StudyFolder, read_json, write_json
from lens_relearn.study.inputs import Inputs
from lens_relearn.study.registry import Registry
from lens_relearn.tagger.model import Tagger

PRUNED_FILE = "pruned.json"
RECORD_FILE = "removal.json"  # what a removal says of how it chose (its steps, its seconds), beside its choice


@dataclass(frozen=True)
class RemovalContext:
    """What a removal is given besides the tagger.

    Attributes:
        config: The study's config.
        folder: The study's folder.
        key: The arm's ``pruned`` stage, whose folder keeps the removal's choice.
        count: How many neurons an arm removes (the config's prune count).
        spec: How the config prunes neurons (mode, value, unit means, freeze).
        inputs: The study's inputs (None when a saved choice is only applied again, as ``load_stage`` does).
    """

    config: ExperimentConfig
    folder: StudyFolder
    key: StageKey
    count: int
    spec: PruneSpec
    inputs: Inputs | None = None

    @property
    def where(self) -> Path:
        """The folder that keeps the removal's choice."""
        return self.folder.stage_dir(self.key)

    def saved(self, name: str) -> Path | None:
        """The arm's saved choice ``name``, or None when no arm of the same removal and seed has chosen yet.

        Every arm of one removal starts from the same choice (its retraining condition comes after), so a choice
        another such arm saved is copied into this arm's folder, with its record (which then names that arm,
        ``chosen_in``), instead of being made again.
        """
        own = self.where / name
        if own.is_file():
            return own
        assert self.key.arm is not None  # the key of a removal is an arm's pruned stage
        removal = arm_parts(self.key.arm)[0]
        for arm in self.config.arms:
            other = self.folder.stage_dir(StageKey(self.key.seed, arm, "pruned"))
            if arm != self.key.arm and arm_parts(arm)[0] == removal and (other / name).is_file():
                if (record := other / RECORD_FILE).is_file():
                    write_json(self.where / RECORD_FILE, {**read_json(record), "chosen_in": arm})
                return replace_file(own, functools.partial(shutil.copyfile, other / name))
        return None

    def base_neurons(self) -> pd.DataFrame:
        """The base stage's neuron table: every neuron's score under the config's ranking, by layer and index."""
        return self.folder.stage_table(StageKey(self.key.seed, None, "base"))


class Removal:
    """What an arm removes from the base tagger; subclass it and register an instance.

    Attributes:
        name: The arm's name (and the registry's key).
        description: How the report names it (``"concept pruning"``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def remove(self, tagger: Tagger, context: RemovalContext) -> AppliedRemoval:
        """Choose what to remove (once: the choice is saved in ``context.where`` and read back after) and
        apply it to ``tagger`` for good."""
        raise NotImplementedError


class NeuronRemoval(Removal):
    """A removal of some neurons, pruned as the config says (``prune_mode``, ``prune_value``, ``freeze``)."""

    def choose(self, tagger: Tagger, context: RemovalContext) -> list[Neuron]:
        """The neurons to remove (``context.inputs`` is set)."""
        raise NotImplementedError

    def remove(self, tagger: Tagger, context: RemovalContext) -> AppliedRemoval:
        if (saved := context.saved(PRUNED_FILE)) is not None:
            neurons = [Neuron(*n) for n in read_json(saved)]
        elif context.inputs is None:
            raise LensRelearnError(f"{context.where / PRUNED_FILE} is missing: the arm's removal was never chosen.")
        else:
            neurons = self.choose(tagger, context)
            write_json(context.where / PRUNED_FILE, [list(n) for n in neurons])
        return context.spec.apply(tagger.model, neurons)


REMOVALS: Registry[Removal] = Registry("removal")


def check_arms(arms: Sequence[str]) -> None:
    """Refuse an arm whose removal is not registered, saying what an arm is.

    Example:
        >>> check_arms(["concept", "random@without_concept"])
        >>> check_arms(["shuffled"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: The arm 'shuffled' names the removal 'shuffled', which is not ...
    """
    for arm in arms:
        removal = arm_parts(arm)[0]
        if removal not in REMOVALS:
            raise LensRelearnError(
                f"The arm {arm!r} names the removal {removal!r}, which is not registered (the registered ones are "
                f"{', '.join(REMOVALS.names())}); an arm is a removal's name, optionally followed by "
                "@without_concept or @concept_as_o."
            )


def register_removal(removal: Removal, *, replace: bool = False) -> Removal:
    """Add a removal that arms can name from now on (``REMOVALS.registered`` for a ``with`` block only)."""
    return REMOVALS.register(removal, replace=replace)
