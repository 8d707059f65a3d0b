"""Writing files and folders so that an interruption never leaves a half-written one.

Both writers stage the new content in a hidden folder beside the target (same file system,
so the final move is a rename) and remove the staging folder whatever happens: an exception
in ``write`` leaves the old file or folder as it was and nothing else behind. Under ``torchrun``
only rank 0 writes files (``lens_relearn.parallel``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lens_relearn import parallel


@contextmanager
def _staging(path: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``path`` (created with its parents), removed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    room = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield room
    finally:
        shutil.rmtree(room, ignore_errors=True)


def replace_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a file through ``write(staging_path)``, then move it over ``path`` in one step.

    ``staging_path`` has the same name as ``path`` (so writers that look at the suffix see
    the right one) inside a staging folder; readers of ``path`` see the old file or the new
    one, never a part. If ``write`` raises, ``path`` is untouched and the error propagates.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> replace_file(target, lambda staging: staging.write_text("done")).read_text()
        'done'
    """
    path = Path(path)
    # Under torchrun only rank 0 writes, between two barriers: files change only while every rank waits
    # here, so every rank sees the same files whenever it looks (whether a stage is finished, say).
    parallel.barrier()
    if parallel.is_main():
        with _staging(path) as room:
            staging = room / path.name
            write(staging)
            staging.replace(path)
    parallel.barrier()
    return path


def replace_folder(path: str | Path, write: Callable[[Path], object], *, if_missing: bool = False) -> Path:
    """Fill a folder through ``write(staging_folder)``, then move it into place as ``path``.

    ``staging_folder`` exists and is empty when ``write`` is called. A folder already at
    ``path`` is moved aside and deleted only once the new one is in place (between the two
    renames ``path`` is briefly absent, never half-written). If ``write`` raises, ``path`` is
    untouched and the error propagates.

    Args:
        path: The folder to write.
        write: Fills the staging folder it is given.
        if_missing: Write only if ``path`` is not a folder yet (a cache): an existing folder,
            or one a concurrent writer moves into place first, is kept and ``write``'s result
            discarded.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "cache"
        >>> replace_folder(target, lambda folder: (folder / "a.txt").write_text("1")) == target
        True
        >>> replace_folder(target, lambda folder: (folder / "b.txt").write_text("2"), if_missing=True) == target
        True
        >>> sorted(p.name for p in target.iterdir())
        ['a.txt']
    """
    path = Path(path)
    if if_missing and path.is_dir():
        return path
    with _staging(path) as room:
        staging = room / path.name
        staging.mkdir()
        write(staging)
        old = room / f"{path.name}.old"
        if path.exists() and not if_missing:
            path.rename(old)
        try:
            staging.rename(path)
        except OSError:
            if if_missing and path.is_dir():  # a concurrent writer finished first: keep its folder
                return path
            if old.exists():
                old.rename(path)
            raise
    return path
