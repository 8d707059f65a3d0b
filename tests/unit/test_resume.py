"""Resuming an interrupted study, in process, at four kill points, with and without a restarted optimizer.

Each kill point raises ``Killed`` (a ``BaseException``, so nothing in the study can catch it)
at one moment of a tiny run, through public seams only: after the base stage, before any arm
(the stage observer, called once a stage is finished); before the concept arm's second round
trains (``skeleton.train_tagger``; with ``restart_optimizer=False`` the rerun must reload
``schedule.pt``); in that round once everything but its ``stage.json`` is written
(``StudyFolder.write_stage_record``; the half-written stage must be redone); after every stage,
before the summary (``StudyFolder.write_table``, which writes the run's own tables first when it
summarises, before ``summary.json``). The tests check what the kill left, that
the rerun into the same folder redoes only the unfinished stages, and that it ends with
exactly the files of an uninterrupted run: JSON without its timings, tables as frames,
tensors bit for bit. Complements the SIGKILL test in
tests/integration/test_relearning_study.py, which kills a real process once.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import safetensors.torch
import torch

from lens_relearn.study import skeleton
from lens_relearn.study.analysis import StageOutcome
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.folders import StageKey, StudyFolder
from lens_relearn.study.runner import StageObserver, run_experiment

# Two optimizer steps an epoch, a rate high enough that rankings move (so primed.csv has rows),
# the concept in every split; about two seconds a run.
SMALL = {
    "model": "tiny-bert",
    "n_train": 24,
    "n_validation": 12,
    "n_test": 8,
    "n_novel": 4,
    "base_epochs": 1,
    "batch_size": 12,
    "lr": 1e-3,
    "rounds": 2,
    "arms": ("concept", "random"),
    "top_k": 3,
    "max_types": 100,
    "primed_top": 20,
}
STAGES = ["seed0/base"] + [f"seed0/{arm}/{stage}" for arm in SMALL["arms"] for stage in ("pruned", "round1", "round2")]
SUMMARY_FILES = [
    "summary.json",
    "performance.csv",
    "types.csv",
    "layers.csv",
    "neurons.parquet",
    "primed.csv",
    "probes.csv",
    "dynamics.csv",
    "distance.csv",
]


class Killed(BaseException):
    """The interruption: not an ``Exception``, so no handler in the study swallows it."""


def _kill(*args: Any, **kwargs: Any) -> None:
    raise Killed


def _kill_arms(patch: pytest.MonkeyPatch) -> StageObserver:
    """Once the base stage is finished (its stage.json written), before any arm starts."""

    def kill_after_base(outcome: StageOutcome) -> None:
        if outcome.key.stage == "base":
            raise Killed

    return kill_after_base


def _kill_concept_round2(patch: pytest.MonkeyPatch) -> None:
    train = skeleton.train_tagger

    def train_or_kill(*args: Any, **kwargs: Any) -> Any:
        if kwargs["seed"] == 2:  # seed * 1000 + round; the concept arm comes first
            raise Killed
        return train(*args, **kwargs)

    patch.setattr(skeleton, "train_tagger", train_or_kill)


def _kill_concept_round2_stage_json(patch: pytest.MonkeyPatch) -> None:
    write = StudyFolder.write_stage_record

    def write_or_kill(folder: StudyFolder, key: StageKey, record: dict) -> None:
        if (key.arm, key.stage) == ("concept", "round2"):
            raise Killed
        write(folder, key, record)

    patch.setattr(StudyFolder, "write_stage_record", write_or_kill)


def _kill_summary(patch: pytest.MonkeyPatch) -> None:
    """After every stage and every seed's record, before the run's own tables and its summary.json."""
    patch.setattr(StudyFolder, "write_table", _kill)


@dataclass(frozen=True)
class KillPoint:
    name: str
    patch: Callable[[pytest.MonkeyPatch], StageObserver | None]  # patches; returns the run's observer, if any
    finished: int  # how many of STAGES, in order, are finished when the kill comes
    started: int  # how many have written files (one more than finished if one is half-written)


KILL_POINTS = [
    KillPoint("after_base", _kill_arms, 1, 1),
    KillPoint("before_concept_round2", _kill_concept_round2, 3, 3),
    KillPoint("before_concept_round2_stage_json", _kill_concept_round2_stage_json, 3, 4),
    KillPoint("before_summary", _kill_summary, len(STAGES), len(STAGES)),
]


@dataclass(frozen=True)
class Resumed:
    config: ExperimentConfig
    point: KillPoint
    out: Path
    reference: Path
    left: dict[str, tuple[int, int]]  # each file the kill left: (inode, mtime_ns)
    trained: list[int]  # the seed of every train_tagger call of the rerun
    described: list[str]  # the stage folders the rerun described


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        path.relative_to(root).as_posix(): (stat.st_ino, stat.st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and (stat := path.stat())
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Runs on one intra-op thread, put back afterwards.

    Two OpenMP threads fighting other jobs for two cores make a run ten times slower. The
    thread count changes float sums, hence every result, but each comparison here is between
    runs made with the same setting.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def whole_runs(tmp_path_factory):
    """Whole runs of the small config, one per ``restart_optimizer``, each made once when first asked.

    (pytest sets a parametrized module fixture up again whenever another one's parameter
    changes, so the runs are kept here rather than in ``uninterrupted`` itself.)
    """
    runs: dict[bool, tuple[ExperimentConfig, Path]] = {}

    def whole_run(restart_optimizer: bool) -> tuple[ExperimentConfig, Path]:
        if restart_optimizer not in runs:
            config = ExperimentConfig(**SMALL, restart_optimizer=restart_optimizer)
            out = tmp_path_factory.mktemp("uninterrupted")
            run_experiment(config, out, progress=False)
            runs[restart_optimizer] = config, out
        return runs[restart_optimizer]

    yield whole_run
    for _, out in runs.values():
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module", params=[True, False], ids=lambda r: f"restart_optimizer={r}")
def uninterrupted(request, whole_runs):
    """The config and folder of an uninterrupted run."""
    return whole_runs(request.param)


@pytest.fixture(scope="module", params=KILL_POINTS, ids=lambda point: point.name)
def resumed(request, uninterrupted, tmp_path_factory):
    """A run killed at one point, then rerun unpatched into the same folder, its work recorded."""
    config, reference = uninterrupted
    point = request.param
    out = tmp_path_factory.mktemp(point.name)
    with pytest.MonkeyPatch.context() as patch:
        observer = point.patch(patch)
        with pytest.raises(Killed):
            run_experiment(config, out, progress=False, observer=observer)
    left = _files(out)

    trained, described = [], []
    train = skeleton.train_tagger

    def training(*args: Any, **kwargs: Any) -> Any:
        trained.append(kwargs["seed"])
        return train(*args, **kwargs)

    def describing(outcome: StageOutcome) -> None:  # called once for every stage the rerun describes
        described.append(StudyFolder(out).stage_dir(outcome.key).relative_to(out).as_posix())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(skeleton, "train_tagger", training)
        run_experiment(config, out, progress=False, observer=describing)
    yield Resumed(config, point, out, reference, left, trained, described)
    shutil.rmtree(out, ignore_errors=True)


# Comparing two run folders ----------------------------------------------------------------


def _without_seconds(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def _difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two nested values (dicts, lists, tensors, scalars) first differ, or None."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: tensor against {type(b if isinstance(a, torch.Tensor) else a).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: {a.dtype}{list(a.shape)} against {b.dtype}{list(b.shape)}"
        if torch.equal(a, b):
            return None
        same = (a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b
        return None if bool(same.all()) else f"{where}: {int((~same).sum())} of {a.numel()} entries differ"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(map(str, a.keys() ^ b.keys()))} in one only"
        return next((d for k in a if (d := _difference(a[k], b[k], f"{where}[{k!r}]"))), None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return f"{where}: {type(a).__name__} of {len(a)} against {type(b).__name__} of {len(b)}"
        return next(
            (d for i, (x, y) in enumerate(zip(a, b, strict=False)) if (d := _difference(x, y, f"{where}[{i}]"))), None
        )
    if type(a) is not type(b) or (a != b and not (isinstance(a, float) and math.isnan(a) and math.isnan(b))):
        return f"{where}: {a!r} against {b!r}"
    return None


def _compare_file(a: Path, b: Path) -> str | None:
    """How two result files differ, or None: each kind compared as what it holds."""
    if a.suffix == ".json":
        return _difference(_without_seconds(json.loads(a.read_text())), _without_seconds(json.loads(b.read_text())))
    if a.suffix in (".csv", ".parquet"):
        read = pd.read_csv if a.suffix == ".csv" else pd.read_parquet
        try:
            pd.testing.assert_frame_equal(read(a), read(b), check_exact=True)
        except AssertionError as error:
            return " ".join(str(error).split())[:300]
        return None
    if a.suffix == ".safetensors":
        return _difference(safetensors.torch.load_file(a), safetensors.torch.load_file(b))
    if a.suffix == ".pt":
        return _difference(torch.load(a, weights_only=False), torch.load(b, weights_only=False))
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def assert_same_results(a: Path, b: Path) -> None:
    """Assert two run folders hold the same files with the same contents, timings aside."""
    files_a, files_b = set(_files(a)), set(_files(b))
    assert files_a == files_b, f"only in {a}: {sorted(files_a - files_b)}; only in {b}: {sorted(files_b - files_a)}"
    differences = [f"{name}: {d}" for name in sorted(files_a) if (d := _compare_file(a / name, b / name))]
    if differences:
        raise AssertionError("files differ:\n" + "\n".join(differences))


# The tests --------------------------------------------------------------------------------


def test_the_small_run_writes_every_kind_of_result_file(uninterrupted):
    config, out = uninterrupted
    for name in ["run.json", *SUMMARY_FILES]:
        assert (out / name).is_file(), name
    for name in SUMMARY_FILES[1:]:
        table = pd.read_csv(out / name) if name.endswith(".csv") else pd.read_parquet(out / name)
        assert len(table), f"{name} is empty"
    for stage in STAGES:
        names = {"stage.json", "neurons.parquet", "layers.csv", "probes.csv", "dynamics.csv", "distance.csv"}
        names.add("forms.csv" if stage != "seed0/base" else "distance_words.safetensors")
        if stage.endswith("pruned"):
            names.add("pruned.json")
        else:
            names |= {"tagger/tagger.json", "tagger/tagger.safetensors"}
        if "round" in stage and not config.restart_optimizer:
            names.add("schedule.pt")
        assert set(_files(out / stage)) == names, stage
    assert json.loads((out / "seed0/concept/pruned/pruned.json").read_text()), "nothing was pruned"
    assert json.loads((out / "seed0/relocation.json").read_text())["carriers"], "no relocation test"


def test_the_kill_leaves_only_the_earlier_stages_finished(resumed):
    point, left = resumed.point, resumed.left
    started = STAGES[: point.started]
    assert [s for s in STAGES if f"{s}/stage.json" in left] == STAGES[: point.finished]
    assert [s for s in STAGES if any(f.startswith(f"{s}/") for f in left)] == started
    assert [f for f in left if "/" not in f] == ["run.json"]
    assert not [f for f in left if Path(f).name.startswith(".")], "staging files left behind"
    schedules = sorted(f for f in left if f.endswith("schedule.pt"))
    rounds = [f"{s}/schedule.pt" for s in started if "round" in s]
    assert schedules == ([] if resumed.config.restart_optimizer else rounds)


def test_resuming_redoes_only_the_unfinished_stages(resumed):
    redone = STAGES[resumed.point.finished :]
    assert resumed.described == redone
    # seed * 1000 + round for a round; the base (seed 0) is never trained again
    assert resumed.trained == [int(s[-1]) for s in redone if "round" in s]
    now = _files(resumed.out)
    rewritten = sorted(f for f, stat in resumed.left.items() if now.get(f) != stat)
    assert rewritten == sorted(f for f in resumed.left if f.startswith(tuple(f"{s}/" for s in redone)))


def test_the_resumed_run_matches_an_uninterrupted_one_file_by_file(resumed):
    assert_same_results(resumed.out, resumed.reference)


def _summary(f1: float = 0.5, seconds: float = 3.0) -> str:
    return json.dumps({"f1": f1, "rho": math.nan, "seconds": seconds, "at": [{"seconds": seconds}]})


def _weights() -> torch.Tensor:
    return torch.tensor([math.nan, 0.25, 0.5, 1.0])


def _tree(root: Path) -> None:
    """A run folder in miniature, one file of each kind, NaNs included (equal to themselves)."""
    root.mkdir()
    (root / "summary.json").write_text(_summary())
    pd.DataFrame({"f1": [0.25, 0.5]}).to_csv(root / "performance.csv", index=False)
    pd.DataFrame({"score": [0.25, 0.5], "top_tokens": ["a b", "c"]}).to_parquet(root / "neurons.parquet")
    (root / "tagger").mkdir()
    safetensors.torch.save_file({"w": _weights()}, root / "tagger" / "tagger.safetensors")
    torch.save(
        {"optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 0.1}]}}, root / "schedule.pt"
    )
    (root / "notes.txt").write_bytes(b"done")


def _nudge(t: torch.Tensor) -> torch.Tensor:
    return torch.cat([t[:-1], torch.nextafter(t[-1:], t[-1:] + 1)])


CHANGES = {
    "seconds": (lambda r: (r / "summary.json").write_text(_summary(seconds=9.0)), None),
    "json": (lambda r: (r / "summary.json").write_text(_summary(f1=0.5000001)), r"summary.json: \['f1'\]"),
    "csv": (
        lambda r: pd.DataFrame({"f1": [0.25, 0.5 + 1e-12]}).to_csv(r / "performance.csv", index=False),
        "performance.csv",
    ),
    "parquet": (
        lambda r: pd.DataFrame({"score": [0.25, 0.5], "top_tokens": ["a b", "d"]}).to_parquet(r / "neurons.parquet"),
        "neurons.parquet",
    ),
    "safetensors": (
        lambda r: safetensors.torch.save_file({"w": _nudge(_weights())}, r / "tagger" / "tagger.safetensors"),
        r"tagger.safetensors: \['w'\]: 1 of 4 entries differ",
    ),
    "schedule": (
        lambda r: torch.save(
            {"optimizer": {"state": {0: {"exp_avg": _nudge(torch.ones(3))}}, "param_groups": [{"lr": 0.1}]}},
            r / "schedule.pt",
        ),
        r"schedule.pt: \['optimizer'\]\['state'\]\[0\]\['exp_avg'\]: 1 of 3",
    ),
    "bytes": (lambda r: (r / "notes.txt").write_bytes(b"Done"), "notes.txt: bytes differ"),
    "extra file": (
        lambda r: (r / "tagger" / ".tagger.safetensors.partial").write_bytes(b""),
        r"only in .*b: \['tagger/.tagger.safetensors.partial'\]",
    ),
    "missing file": (lambda r: (r / "notes.txt").unlink(), r"only in .*a: \['notes.txt'\]"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_the_comparison_ignores_only_seconds(tmp_path, change):
    edit, message = CHANGES[change]
    _tree(tmp_path / "a")
    _tree(tmp_path / "b")
    edit(tmp_path / "b")
    if message is None:
        assert_same_results(tmp_path / "a", tmp_path / "b")
    else:
        with pytest.raises(AssertionError, match=message):
            assert_same_results(tmp_path / "a", tmp_path / "b")
