"""Writing result files so that an interruption never leaves a half-written one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def replace_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a file through ``write(staging_path)``, then move it over ``path`` in one step.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> replace_file(target, lambda staging: staging.write_text("done")).read_text()
        'done'
    """
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial")
    write(staging)
    staging.replace(path)
    return path
