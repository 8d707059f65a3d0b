"""Atomic writers: a failing write leaves the old file or folder as it was, and no staging behind."""

import pytest

from lens_relearn.files import replace_file, replace_folder


class Interrupted(Exception):
    pass


def fail_halfway(staging):
    """Write part of the new content, then fail (an interruption inside ``write``)."""
    if staging.is_dir():
        (staging / "part.bin").write_bytes(b"half")
    else:
        staging.write_text("half")
    raise Interrupted


def test_replace_file_writes_and_replaces(tmp_path):
    target = tmp_path / "result.json"
    replace_file(target, lambda staging: staging.write_text("old"))
    assert replace_file(target, lambda staging: staging.write_text("new")) == target
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_replace_file_hands_write_a_path_with_the_target_suffix(tmp_path):
    seen = []
    replace_file(tmp_path / "plot.png", lambda staging: seen.append(staging) or staging.write_bytes(b""))
    assert seen[0].name == "plot.png" and seen[0].parent != tmp_path


def test_a_failing_write_leaves_the_old_file_and_no_staging(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(Interrupted):
        replace_file(target, fail_halfway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_failing_first_write_leaves_nothing(tmp_path):
    with pytest.raises(Interrupted):
        replace_file(tmp_path / "result.json", fail_halfway)
    assert list(tmp_path.iterdir()) == []


def test_replace_folder_writes_and_replaces(tmp_path):
    target = tmp_path / "model"
    replace_folder(target, lambda folder: (folder / "old.bin").write_bytes(b"old"))
    assert replace_folder(target, lambda folder: (folder / "new.bin").write_bytes(b"new")) == target
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failing_write_leaves_the_old_folder_and_no_staging(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old")
    with pytest.raises(Interrupted):
        replace_folder(target, fail_halfway)
    assert [p.name for p in target.iterdir()] == ["weights.bin"]
    assert (target / "weights.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failing_first_folder_write_leaves_nothing(tmp_path):
    with pytest.raises(Interrupted):
        replace_folder(tmp_path / "cache" / "model", fail_halfway)
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]
    assert list((tmp_path / "cache").iterdir()) == []


def test_if_missing_keeps_an_existing_folder_without_writing(tmp_path):
    target = tmp_path / "model"
    replace_folder(target, lambda folder: (folder / "first.bin").write_bytes(b"1"), if_missing=True)
    calls = []
    replace_folder(target, calls.append, if_missing=True)
    assert calls == [] and [p.name for p in target.iterdir()] == ["first.bin"]


def test_if_missing_keeps_the_folder_of_a_writer_that_finished_first(tmp_path):
    target = tmp_path / "model"

    def slow_write(folder):
        (folder / "mine.bin").write_bytes(b"mine")
        target.mkdir()  # a concurrent writer moves its folder into place meanwhile
        (target / "theirs.bin").write_bytes(b"theirs")

    assert replace_folder(target, slow_write, if_missing=True) == target
    assert [p.name for p in target.iterdir()] == ["theirs.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
