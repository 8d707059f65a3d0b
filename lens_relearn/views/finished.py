"""A finished study as the views read it: its typed summary, its stages and arms, its tables."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import pandas as pd

from lens_relearn.errors import LensRelearnError
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.folders import SUMMARY_FILE, StudyFolder
from lens_relearn.study.summary import StudySummary
from lens_relearn.views.page import View

T = TypeVar("T")


class FinishedStudy(StudyFolder):
    """A finished study's folder; what every plot, section and view reads. ``open_run`` gives its notebook handle."""

    @cached_property
    def summary(self) -> StudySummary:
        """``summary.json``, typed."""
        self.require_complete()
        values = self.summary_values()
        try:
            return StudySummary.from_dict(values)
        except LensRelearnError as error:
            raise LensRelearnError(
                f"{self.path / SUMMARY_FILE} does not read as this version's summary ({error}); "
                f"run the study again into a new folder (`{self.COMMAND} --out NEW_FOLDER`)."
            ) from None

    def section(self, kind: type[T]) -> T:
        """An analysis's summary section, or ``LensRelearnError`` saying the analysis did not run and why."""
        found = self.summary.section(kind)
        if found is None:
            name = next((a.name for a in ANALYSES if a.summary_type is kind), kind.__name__)
            why = self.summary.analyses.skipped.get(name, "it was not registered when the study ran")
            raise LensRelearnError(f"{self.path} has no {kind.__name__}: {why}.")
        return found

    def ran(self, name: str) -> bool:
        """Whether the analysis of that name ran in this study."""
        return name in self.summary.analyses.ran

    @cached_property
    def view_makers(self) -> dict[tuple, Callable[[], View]]:
        """What made each neuron view asked of this study so far, by ``(seed, arm, stages, sentences, neuron)``
        (``neuron_views``)."""
        return {}

    @cached_property
    def stages(self) -> list[str]:
        """The stages of an arm, in order."""
        return self.config.stages()

    @property
    def final(self) -> str:
        """The last round."""
        return self.stages[-1]

    @property
    def concept(self) -> str:
        """The concept's class name."""
        return self.summary.concept

    def arm(self, arm: str | None) -> str:
        """An arm of this study (default: its first), or ``LensRelearnError`` listing them."""
        if arm is not None and arm not in self.config.arms:
            raise LensRelearnError(f"{self.path} has no {arm!r} arm; its arms are {', '.join(self.config.arms)}.")
        return self.config.arms[0] if arm is None else arm

    def seed(self, seed: int | None) -> int:
        """A seed of this study (default: its first), or ``LensRelearnError`` listing them."""
        seeds = self.config.seeds
        if seed is not None and seed not in seeds:
            raise LensRelearnError(f"{self.path} has no seed {seed}; its seeds are {', '.join(map(str, seeds))}.")
        return seeds[0] if seed is None else seed

    def scores(self, split: str) -> pd.DataFrame:
        """The rows of ``performance`` for one split."""
        performance = self.table("performance")
        rows = performance[performance.split == split]
        if rows.empty:
            raise LensRelearnError(f"{self.path} has no {split!r} scores; splits: {sorted(set(performance.split))}.")
        return rows

    def neurons_at(self, seed: int, arm: str, stage: str) -> pd.DataFrame:
        """One stage's rows of the study's neuron table, by layer and index."""
        neurons = self.table("neurons")
        rows = neurons[(neurons.arm == arm) & (neurons.seed == seed) & (neurons.stage == stage)]
        if rows.empty:
            raise LensRelearnError(f"{self.path} has no neurons for seed {seed}, arm {arm!r}, stage {stage!r}.")
        return rows.sort_values(["layer", "index"])


def finished(run: str | Path | FinishedStudy) -> FinishedStudy:
    """A finished study from its path, or as it is (keeping what it has read).

    Raises:
        LensRelearnError: The folder holds no finished study.
    """
    study = run if isinstance(run, FinishedStudy) else FinishedStudy(run)
    study.require_complete()
    return study
