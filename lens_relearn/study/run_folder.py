"""The files of a study's folder: the one place that knows their names and where they lie.

A run folder holds::

    config.json  summary.json  performance.csv  types.csv  layers.csv  neurons.parquet  primed.csv  probes.csv
    dynamics.csv  report.html
    seed{s}/base/{stage.json, neurons.parquet, layers.csv, probes.csv, dynamics.csv, tagger/}
    seed{s}/{arm}/pruned/{pruned.json, stage.json, neurons.parquet, layers.csv, probes.csv, dynamics.csv}
    seed{s}/{arm}/round{r}/{stage.json, neurons.parquet, layers.csv, probes.csv, dynamics.csv, tagger/, schedule.pt}
    seed{s}/relocation.json

Every file is written atomically; a stage's ``stage.json`` is written last, so a stage is
finished exactly when its ``stage.json`` exists.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron
from lens_relearn.study.config import ExperimentConfig

Table = Literal["performance", "types", "layers", "neurons", "primed", "probes", "dynamics"]
StageTable = Literal["neurons", "layers", "probes", "dynamics"]
TABLE_FILES: dict[str, str] = {
    "performance": "performance.csv",
    "types": "types.csv",
    "layers": "layers.csv",
    "neurons": "neurons.parquet",
    "primed": "primed.csv",
    "probes": "probes.csv",
    "dynamics": "dynamics.csv",
}
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
STAGE_FILE = "stage.json"
PRUNED_FILE = "pruned.json"
SCHEDULE_FILE = "schedule.pt"
RELOCATION_FILE = "relocation.json"
TAGGER_FOLDER = "tagger"


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _write_table(path: Path, table: pd.DataFrame) -> None:
    if path.suffix == ".parquet":
        replace_file(path, lambda staging: table.to_parquet(staging, index=False))
    else:
        replace_file(path, lambda staging: table.to_csv(staging, index=False))


def _write_json(path: Path, value: Any) -> None:
    replace_file(path, lambda staging: staging.write_text(json.dumps(value, indent=2)))


class RunFolder:
    """A study's folder: paths, atomic writers and readers of every file in it.

    Args:
        path: The folder (it need not exist yet).

    Example:
        >>> folder = RunFolder("runs/quick")
        >>> folder.stage_dir(0, "concept", "round2").as_posix()
        'runs/quick/seed0/concept/round2'
        >>> folder.stage_dir(0, "concept", "base").as_posix()  # the base stage is shared by the arms
        'runs/quick/seed0/base'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tables: dict[str, pd.DataFrame] = {}  # read once: plots and views ask again and again

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # Paths --------------------------------------------------------------------------------

    @property
    def report_path(self) -> Path:
        """Where the HTML report goes."""
        return self.path / REPORT_FILE

    def stage_dir(self, seed: int, arm: str, stage: str) -> Path:
        """The folder of one stage (``base`` is the seed's, whatever the arm)."""
        return self.path / f"seed{seed}" / ("base" if stage == "base" else f"{arm}/{stage}")

    def tagger_dir(self, seed: int, arm: str, stage: str) -> Path:
        """The saved tagger of a stage (``base`` and every round)."""
        return self.stage_dir(seed, arm, stage) / TAGGER_FOLDER

    def is_finished(self, seed: int, arm: str, stage: str) -> bool:
        """Whether a stage was described to the end."""
        return (self.stage_dir(seed, arm, stage) / STAGE_FILE).is_file()

    # The whole run ------------------------------------------------------------------------

    def has_config(self) -> bool:
        """Whether a study was started here."""
        return (self.path / CONFIG_FILE).is_file()

    def write_config(self, config: ExperimentConfig) -> None:
        replace_file(self.path / CONFIG_FILE, lambda staging: staging.write_text(config.to_json()))

    @cached_property
    def config(self) -> ExperimentConfig:
        """The study's config."""
        if not self.has_config():
            raise LensRelearnError(f"{self.path} holds no study (no {CONFIG_FILE}).")
        return ExperimentConfig.from_json((self.path / CONFIG_FILE).read_text())

    def is_complete(self) -> bool:
        """Whether the study finished (its summary is written)."""
        return (self.path / SUMMARY_FILE).is_file()

    def require_complete(self) -> RunFolder:
        """This folder, or ``LensRelearnError`` saying how to finish it."""
        if not self.is_complete():
            raise LensRelearnError(
                f"{self.path} holds no finished study ({SUMMARY_FILE} is missing); "
                f"run `lens-relearn run --out {self.path}` first."
            )
        return self

    def write_summary(self, summary: dict) -> None:
        _write_json(self.path / SUMMARY_FILE, summary)

    @property
    def summary(self) -> dict:
        """The study's ``summary.json``."""
        return json.loads((self.path / SUMMARY_FILE).read_text())

    def write_table(self, name: Table, table: pd.DataFrame) -> None:
        _write_table(self.path / TABLE_FILES[name], table)
        self._tables.pop(name, None)

    def table(self, name: Table) -> pd.DataFrame:
        """One of the study's tables: ``performance``, ``layers``, ``neurons`` or ``primed``.

        The file is read once; each call returns a copy, so a caller may change it freely.
        """
        if name not in self._tables:
            self._tables[name] = _read_table(self.path / TABLE_FILES[name])
        return self._tables[name].copy()

    # One stage ----------------------------------------------------------------------------

    def write_stage_table(self, seed: int, arm: str, stage: str, name: StageTable, table: pd.DataFrame) -> None:
        _write_table(self.stage_dir(seed, arm, stage) / TABLE_FILES[name], table)

    def stage_table(self, seed: int, arm: str, stage: str, name: StageTable = "neurons") -> pd.DataFrame:
        """A stage's neuron (sorted by layer and index) or layer table."""
        table = _read_table(self.stage_dir(seed, arm, stage) / TABLE_FILES[name])
        return table.sort_values(["layer", "index"]).reset_index(drop=True) if name == "neurons" else table

    def write_stage_record(self, seed: int, arm: str, stage: str, record: dict) -> None:
        """Mark a stage finished: write this last."""
        _write_json(self.stage_dir(seed, arm, stage) / STAGE_FILE, record)

    def stage_record(self, seed: int, arm: str, stage: str) -> dict:
        """A finished stage's ``stage.json``: scores, pruned count, regrowth, seconds."""
        return json.loads((self.stage_dir(seed, arm, stage) / STAGE_FILE).read_text())

    def has_pruned(self, seed: int, arm: str) -> bool:
        return (self.stage_dir(seed, arm, "pruned") / PRUNED_FILE).is_file()

    def write_pruned(self, seed: int, arm: str, neurons: list[Neuron]) -> None:
        _write_json(self.stage_dir(seed, arm, "pruned") / PRUNED_FILE, [list(n) for n in neurons])

    def pruned(self, seed: int, arm: str) -> list[Neuron]:
        """The neurons an arm pruned."""
        return [Neuron(*n) for n in json.loads((self.stage_dir(seed, arm, "pruned") / PRUNED_FILE).read_text())]

    def write_schedule(self, seed: int, arm: str, stage: str, state: dict) -> None:
        replace_file(self.stage_dir(seed, arm, stage) / SCHEDULE_FILE, lambda staging: torch.save(state, staging))

    def schedule(self, seed: int, arm: str, stage: str) -> dict:
        """The optimizer and schedule state saved after a round (continued schedules only)."""
        return torch.load(self.stage_dir(seed, arm, stage) / SCHEDULE_FILE, weights_only=False)

    def has_relocation(self, seed: int) -> bool:
        return (self.path / f"seed{seed}" / RELOCATION_FILE).is_file()

    def write_relocation(self, seed: int, record: dict) -> None:
        _write_json(self.path / f"seed{seed}" / RELOCATION_FILE, record)

    def relocation(self, seed: int) -> dict:
        """A seed's causal relocation test (``relocation.json``)."""
        return json.loads((self.path / f"seed{seed}" / RELOCATION_FILE).read_text())

    # What views need ----------------------------------------------------------------------

    @property
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
        return self.summary["concept"]

    def arm(self, arm: str | None) -> str:
        """An arm of this study (default: its first), or ``LensRelearnError`` listing them."""
        if arm is not None and arm not in self.config.arms:
            raise LensRelearnError(f"{self.path} has no {arm!r} arm; its arms are {', '.join(self.config.arms)}.")
        return self.config.arms[0] if arm is None else arm

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


def finished_run(run: str | Path | RunFolder) -> RunFolder:
    """A finished study's folder, from its path or as it is (keeping what it has read)."""
    return (run if isinstance(run, RunFolder) else RunFolder(run)).require_complete()


REMOVAL_CONFIG_FILE = "removal.json"
REMOVAL_TABLE_FILE = "removal.csv"
ITERATION_FILE = "iteration.json"


class RemovalFolder:
    """An iterative removal run's folder (``run_removal``): paths, atomic writers and readers.

    A removal folder holds::

        removal.json  summary.json  removal.csv  report.html
        seed{s}/base/{stage.json, tagger/}
        seed{s}/{arm}/iter{i}/{pruned.json, iteration.json, tagger/}

    An iteration is finished exactly when its ``iteration.json`` exists (written last).

    Example:
        >>> RemovalFolder("runs/removal").iteration_dir(0, "concept", 3).as_posix()
        'runs/removal/seed0/concept/iter3'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def report_path(self) -> Path:
        """Where the HTML report goes."""
        return self.path / REPORT_FILE

    def has_config(self) -> bool:
        """Whether a removal run was started here."""
        return (self.path / REMOVAL_CONFIG_FILE).is_file()

    def write_config(self, text: str) -> None:
        replace_file(self.path / REMOVAL_CONFIG_FILE, lambda staging: staging.write_text(text))

    def config_text(self) -> str:
        """The run's ``removal.json``."""
        return (self.path / REMOVAL_CONFIG_FILE).read_text()

    def base_dir(self, seed: int) -> Path:
        """The base tagger's stage (shared by the arms)."""
        return self.path / f"seed{seed}" / "base"

    def has_base(self, seed: int) -> bool:
        return (self.base_dir(seed) / STAGE_FILE).is_file()

    def write_base(self, seed: int, record: dict) -> None:
        """Mark the base stage finished: write this after its tagger."""
        _write_json(self.base_dir(seed) / STAGE_FILE, record)

    def base(self, seed: int) -> dict:
        """The base stage's record: its scores."""
        return json.loads((self.base_dir(seed) / STAGE_FILE).read_text())

    def iteration_dir(self, seed: int, arm: str, iteration: int) -> Path:
        """One iteration's folder."""
        return self.path / f"seed{seed}" / arm / f"iter{iteration}"

    def finished_iterations(self, seed: int, arm: str) -> int:
        """How many iterations of an arm are finished (they finish in order)."""
        done = 0
        while (self.iteration_dir(seed, arm, done + 1) / ITERATION_FILE).is_file():
            done += 1
        return done

    def write_iteration(self, seed: int, arm: str, iteration: int, pruned: list[Neuron], record: dict) -> None:
        """Write an iteration's cumulative pruned neurons, then its record (last: the iteration is finished)."""
        folder = self.iteration_dir(seed, arm, iteration)
        _write_json(folder / PRUNED_FILE, [list(n) for n in pruned])
        _write_json(folder / ITERATION_FILE, record)

    def iteration(self, seed: int, arm: str, iteration: int) -> dict:
        """A finished iteration's record."""
        return json.loads((self.iteration_dir(seed, arm, iteration) / ITERATION_FILE).read_text())

    def pruned(self, seed: int, arm: str, iteration: int) -> list[Neuron]:
        """Every neuron pruned up to and including an iteration."""
        return [Neuron(*n) for n in json.loads((self.iteration_dir(seed, arm, iteration) / PRUNED_FILE).read_text())]

    def write_table(self, table: pd.DataFrame) -> None:
        _write_table(self.path / REMOVAL_TABLE_FILE, table)

    def table(self) -> pd.DataFrame:
        """``removal.csv``: one row a seed, arm and iteration."""
        return _read_table(self.path / REMOVAL_TABLE_FILE)

    def write_summary(self, summary: dict) -> None:
        _write_json(self.path / SUMMARY_FILE, summary)

    @property
    def summary(self) -> dict:
        """The run's ``summary.json``."""
        return json.loads((self.path / SUMMARY_FILE).read_text())

    def require_complete(self) -> RemovalFolder:
        """This folder, or ``LensRelearnError`` saying how to finish it."""
        if not (self.path / SUMMARY_FILE).is_file():
            raise LensRelearnError(
                f"{self.path} holds no finished removal run ({SUMMARY_FILE} is missing); "
                f"run `lens-relearn remove --out {self.path}` first."
            )
        return self


def is_removal_run(path: str | Path) -> bool:
    """Whether a folder holds an iterative removal run (rather than a relearning study)."""
    return (Path(path) / REMOVAL_CONFIG_FILE).is_file()
