"""Run folders: the one place that knows the files of a study, a sweep and an iterative removal.

Every folder holds ``run.json``: what kind of run it is and its config. A command given a folder
of another kind, or of another config, stops before it writes anything (``RunFolder.check``). A
study's folder holds::

    run.json  summary.json  report.html  performance.csv  types.csv  layers.csv  neurons.parquet
    <each analysis's tables>  (primed.csv, probes.csv, dynamics.csv, ...)
    seed{s}/base/{stage.json, neurons.parquet, layers.csv, <analysis tables>, tagger/}
    seed{s}/{arm}/pruned/{<the removal's files>, stage.json, neurons.parquet, layers.csv, <analysis tables>}
    seed{s}/{arm}/round{r}/{stage.json, neurons.parquet, layers.csv, <analysis tables>, tagger/, schedule.pt}
    seed{s}/<analysis>.json  (an analysis's record of a seed, e.g. relocation.json)

Every file is written atomically; a stage's ``stage.json`` is written last, so a stage is finished
exactly when its ``stage.json`` exists. A file that cannot be read (cut short, say) raises
``LensRelearnError`` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch

from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron
from lens_relearn.study.config import ExperimentConfig, RemovalConfig

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
STAGE_FILE = "stage.json"
SCHEDULE_FILE = "schedule.pt"
TAGGER_FOLDER = "tagger"
NEURON_TABLE = "neurons"  # the one table kept as parquet (a row a neuron a stage)
LEGACY_FILES = ("config.json", "removal.json")  # what a run folder held before it recorded its kind


def read_json(path: Path) -> Any:
    """A JSON file's value, or ``LensRelearnError`` naming a file that is missing or damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LensRelearnError(f"{path} is missing.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LensRelearnError(f"{path} is damaged ({error}); delete it and rerun to write it again.") from None


def write_json(path: Path, value: Any) -> None:
    replace_file(path, lambda staging: staging.write_text(json.dumps(value, indent=2), encoding="utf-8"))


def table_path(folder: Path, name: str) -> Path:
    """Where a table of that name lies in a folder: ``neurons.parquet``, else ``{name}.csv``."""
    return folder / (f"{name}.parquet" if name == NEURON_TABLE else f"{name}.csv")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or parquet table, or ``LensRelearnError`` naming a file that is missing or damaged."""
    if not path.is_file():
        raise LensRelearnError(f"{path} is missing.")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as error:  # pyarrow and pandas raise many kinds for a damaged file
        raise LensRelearnError(f"{path} is damaged ({type(error).__name__}); delete it and rerun.") from None


def write_table(path: Path, table: pd.DataFrame) -> None:
    if path.suffix == ".parquet":
        replace_file(path, lambda staging: table.to_parquet(staging, index=False))
    else:
        replace_file(path, lambda staging: table.to_csv(staging, index=False))


class RunFolder:
    """A run's folder: its kind and config, its summary and its tables.

    Subclasses name their ``KIND``, the ``COMMAND`` that writes them and their config's class.
    """

    KIND: ClassVar[str] = ""
    COMMAND: ClassVar[str] = ""
    CONFIG: ClassVar[type[ExperimentConfig] | type[RemovalConfig]] = ExperimentConfig

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tables: dict[str, pd.DataFrame] = {}  # read once: plots and views ask again and again

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # What it holds ------------------------------------------------------------------------

    def holds(self) -> str | None:
        """The kind of run the folder holds (``study``, ``sweep``, ``removal``), None if it is new.

        Raises:
            LensRelearnError: It holds files of a run that did not record its kind.
        """
        if (self.path / RUN_FILE).is_file():
            return str(read_json(self.path / RUN_FILE)["kind"])
        if found := [name for name in (*LEGACY_FILES, SUMMARY_FILE) if (self.path / name).is_file()]:
            raise LensRelearnError(
                f"{self.path} holds {found[0]} but no {RUN_FILE}: a run of an earlier version of lens_relearn. "
                "Choose another folder, or delete it to start again."
            )
        return None

    def check(self, config: ExperimentConfig | RemovalConfig) -> None:
        """Stop, writing nothing, unless the folder is new or holds this kind of run with this config."""
        held = self.holds()
        if held is None:
            return
        if held != self.KIND:
            raise LensRelearnError(
                f"{self.path} holds a {held}, not a {self.KIND}: `{self.COMMAND}` will not write into it. "
                "Give --out another folder."
            )
        # Read back through the config class: a field added since the folder was written takes its default.
        stored, wanted = json.loads(self.config.to_json()), json.loads(config.to_json())
        if stored != wanted:
            changed = sorted(k for k in {*stored, *wanted} if stored.get(k) != wanted.get(k))
            raise LensRelearnError(
                f"{self.path} holds a {held} of a different config (it differs in {', '.join(changed)}); "
                "choose another folder, or delete it to start again."
            )

    def claim(self, config: ExperimentConfig | RemovalConfig) -> None:
        """Record the kind and config (after ``check``): from now on the folder is this run's."""
        if not (self.path / RUN_FILE).is_file():
            write_json(self.path / RUN_FILE, {"kind": self.KIND, "config": json.loads(config.to_json())})

    @property
    def config(self) -> Any:
        """The run's config (an ``ExperimentConfig``; a ``RemovalConfig`` for an iterative removal)."""
        return self.CONFIG.from_json(json.dumps(self.config_values()))

    def config_values(self) -> dict:
        """The run's config as recorded, field by field."""
        if self.holds() != self.KIND:
            raise LensRelearnError(f"{self.path} holds no {self.KIND}; run `{self.COMMAND} --out {self.path}` first.")
        return read_json(self.path / RUN_FILE)["config"]

    # The finished run ---------------------------------------------------------------------

    @property
    def report_path(self) -> Path:
        """Where the HTML report goes."""
        return self.path / REPORT_FILE

    def is_complete(self) -> bool:
        """Whether the run finished (its summary is written)."""
        return self.holds() == self.KIND and (self.path / SUMMARY_FILE).is_file()

    def require_complete(self) -> RunFolder:
        """This folder, or ``LensRelearnError`` saying how to finish it."""
        if not self.is_complete():
            raise LensRelearnError(
                f"{self.path} holds no finished {self.KIND} ({SUMMARY_FILE} is missing); "
                f"run `{self.COMMAND} --out {self.path}` first."
            )
        return self

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / SUMMARY_FILE, summary)

    def summary_values(self) -> dict:
        """``summary.json`` as written."""
        return read_json(self.path / SUMMARY_FILE)

    def has_table(self, name: str) -> bool:
        return table_path(self.path, name).is_file()

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        write_table(table_path(self.path, name), table)
        self._tables.pop(name, None)

    def table(self, name: str) -> pd.DataFrame:
        """One of the run's tables; read once, each call returns a copy the caller may change."""
        if name not in self._tables:
            self._tables[name] = read_table(table_path(self.path, name))
        return self._tables[name].copy()


@dataclass(frozen=True)
class StageKey:
    """Which stage: a seed, an arm (None for the base stage, which the arms share) and a stage name.

    Example:
        >>> StageKey(0, "concept", "base")
        StageKey(seed=0, arm=None, stage='base')
    """

    seed: int
    arm: str | None
    stage: str

    def __post_init__(self) -> None:
        if self.stage == "base":
            object.__setattr__(self, "arm", None)
        elif self.arm is None:
            raise LensRelearnError(f"The stage {self.stage!r} belongs to an arm; name it.")


class StudyFolder(RunFolder):
    """A relearning study's folder (``run_experiment``).

    Example:
        >>> folder = StudyFolder("runs/quick")
        >>> folder.stage_dir(StageKey(0, "concept", "round2")).as_posix()
        'runs/quick/seed0/concept/round2'
        >>> folder.stage_dir(StageKey(0, "concept", "base")).as_posix()  # the base stage is shared by the arms
        'runs/quick/seed0/base'
    """

    KIND = "study"
    COMMAND = "lens-relearn run"

    def seed_dir(self, seed: int) -> Path:
        return self.path / f"seed{seed}"

    def stage_dir(self, key: StageKey) -> Path:
        """The folder of one stage (``base`` is the seed's, whatever the arm)."""
        return self.seed_dir(key.seed) / ("base" if key.arm is None else f"{key.arm}/{key.stage}")

    def tagger_dir(self, key: StageKey) -> Path:
        """The saved tagger of a stage (``base`` and every round)."""
        return self.stage_dir(key) / TAGGER_FOLDER

    def is_finished(self, key: StageKey) -> bool:
        """Whether a stage was described to the end."""
        return (self.stage_dir(key) / STAGE_FILE).is_file()

    def write_stage_table(self, key: StageKey, name: str, table: pd.DataFrame) -> None:
        write_table(table_path(self.stage_dir(key), name), table)

    def stage_table(self, key: StageKey, name: str = NEURON_TABLE) -> pd.DataFrame:
        """A finished stage's table; the neuron table sorted by layer and index."""
        table = read_table(table_path(self.stage_dir(key), name))
        return table.sort_values(["layer", "index"]).reset_index(drop=True) if name == NEURON_TABLE else table

    def write_stage_record(self, key: StageKey, record: dict) -> None:
        """Mark a stage finished: write this last."""
        write_json(self.stage_dir(key) / STAGE_FILE, record)

    def stage_record(self, key: StageKey) -> dict:
        """A finished stage's ``stage.json``: scores, neurons removed, regrowth, seconds."""
        return read_json(self.stage_dir(key) / STAGE_FILE)

    def write_schedule(self, key: StageKey, state: dict) -> None:
        replace_file(self.stage_dir(key) / SCHEDULE_FILE, lambda staging: torch.save(state, staging))

    def schedule(self, key: StageKey) -> dict:
        """The optimizer and schedule state saved after a round (continued schedules only)."""
        return torch.load(self.stage_dir(key) / SCHEDULE_FILE, weights_only=False)

    def seed_record_path(self, seed: int, name: str) -> Path:
        """Where an analysis keeps its record of a seed (``seed{s}/{name}.json``)."""
        return self.seed_dir(seed) / f"{name}.json"

    def seed_record(self, seed: int, name: str) -> dict:
        return read_json(self.seed_record_path(seed, name))


class SweepFolder(RunFolder):
    """A selectivity sweep's folder (``selectivity_sweep``): ``run.json``, ``base/`` (the tagger),
    ``sweep.csv`` (a row a pruning, written as each finishes) and ``summary.json`` (the best pruning)."""

    KIND = "sweep"
    COMMAND = "lens-relearn sweep"

    @property
    def base_dir(self) -> Path:
        return self.path / "base"


class RemovalFolder(RunFolder):
    """An iterative removal's folder (``run_removal``).

    It holds::

        run.json  summary.json  removal.csv  report.html
        seed{s}/base/{stage.json, tagger/}
        seed{s}/{arm}/iter{i}/{pruned.json, iteration.json, tagger/}

    An iteration is finished exactly when its ``iteration.json`` exists (written last).

    Example:
        >>> RemovalFolder("runs/removal").iteration_dir(0, "concept", 3).as_posix()
        'runs/removal/seed0/concept/iter3'
    """

    KIND = "removal"
    COMMAND = "lens-relearn remove"
    CONFIG = RemovalConfig

    def base_dir(self, seed: int) -> Path:
        """The base tagger's stage (shared by the arms)."""
        return self.path / f"seed{seed}" / "base"

    def has_base(self, seed: int) -> bool:
        return (self.base_dir(seed) / STAGE_FILE).is_file()

    def write_base(self, seed: int, record: dict) -> None:
        """Mark the base stage finished: write this after its tagger."""
        write_json(self.base_dir(seed) / STAGE_FILE, record)

    def base(self, seed: int) -> dict:
        """The base stage's record: its scores."""
        return read_json(self.base_dir(seed) / STAGE_FILE)

    def iteration_dir(self, seed: int, arm: str, iteration: int) -> Path:
        """One iteration's folder."""
        return self.path / f"seed{seed}" / arm / f"iter{iteration}"

    def finished_iterations(self, seed: int, arm: str) -> int:
        """How many iterations of an arm are finished (they finish in order)."""
        done = 0
        while (self.iteration_dir(seed, arm, done + 1) / "iteration.json").is_file():
            done += 1
        return done

    def write_iteration(self, seed: int, arm: str, iteration: int, pruned: list[Neuron], record: dict) -> None:
        """Write an iteration's cumulative pruned neurons, then its record (last: the iteration is finished)."""
        folder = self.iteration_dir(seed, arm, iteration)
        write_json(folder / "pruned.json", [list(n) for n in pruned])
        write_json(folder / "iteration.json", record)

    def iteration(self, seed: int, arm: str, iteration: int) -> dict:
        """A finished iteration's record."""
        return read_json(self.iteration_dir(seed, arm, iteration) / "iteration.json")

    def pruned(self, seed: int, arm: str, iteration: int) -> list[Neuron]:
        """Every neuron pruned up to and including an iteration."""
        return [Neuron(*n) for n in read_json(self.iteration_dir(seed, arm, iteration) / "pruned.json")]


FOLDER_KINDS: dict[str, type[RunFolder]] = {kind.KIND: kind for kind in (StudyFolder, SweepFolder, RemovalFolder)}


def open_folder(path: str | Path) -> RunFolder:
    """A finished run's folder as the kind it holds.

    Raises:
        LensRelearnError: The folder holds no finished run.
    """
    held = RunFolder(path).holds()
    if held is None:
        raise LensRelearnError(f"{path} holds no run ({RUN_FILE} is missing); give the folder a run wrote.")
    return FOLDER_KINDS[held](path).require_complete()
