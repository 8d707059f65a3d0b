"""Compare a study's ``summary.json`` written before the typed summary with one written after, value by value.

The typed summary (docs/design.md §23) moved some keys into sections; this script follows them
(``data.{split}`` is ``data.splits.{split}``, ``random_baseline`` is ``arms.random``, ``control`` is
``arms.none``, ``primed_neurons`` is ``blend.neurons``, ``saliency_similarity_spearman`` is
``redistribution.saliency_similarity_spearman``, and ``collateral.X``, ``probes.X``,
``retraining.X``, ``regrowth.X`` are ``collateral.arms.X``, ``probes.arms.X``,
``retraining.arms.X``, ``regrowth.rounds.X``), compares every number (``seconds`` left out), and
prints how many it compared, the largest difference and each value further apart than the
tolerance. It exits 1 when a value differs or is missing::

    python scripts/compare_summaries.py OLD/summary.json NEW/summary.json --tolerance 1e-9
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

KeyPath = tuple[str, ...]

MOVED: list[tuple[KeyPath, KeyPath]] = [  # an old key path's prefix, and where it is now
    (("random_baseline",), ("arms", "random")),
    (("control",), ("arms", "none")),
    (("primed_neurons",), ("blend", "neurons")),
    (("saliency_similarity_spearman",), ("redistribution", "saliency_similarity_spearman")),
    (("collateral",), ("collateral", "arms")),
    (("probes",), ("probes", "arms")),
    (("retraining",), ("retraining", "arms")),
    (("regrowth",), ("regrowth", "rounds")),
]


def leaves(value: object, path: KeyPath = ()) -> Iterator[tuple[KeyPath, object]]:
    """Every value that is not a dict or a list, with its key path (list items by position)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, str(index)))
    else:
        yield path, value


def moved(path: KeyPath) -> KeyPath:
    """Where an old key path is in the typed summary."""
    if path[0] == "data" and path[1] != "source":
        return ("data", "splits", *path[1:])
    for old, new in MOVED:
        if path[: len(old)] == old:
            return (*new, *path[len(old) :])
    return path


def compare(old: dict, new: dict, tolerance: float) -> tuple[int, float, list[str]]:
    """How many values were compared, the largest difference, and what differs or is missing."""
    found = dict(leaves(new))
    largest, problems, compared = 0.0, [], 0
    for path, value in leaves(old):
        if path[-1] == "seconds":
            continue
        target = moved(path)
        if target not in found:
            problems.append(f"missing {'.'.join(target)} (was {'.'.join(path)})")
            continue
        other, compared = found[target], compared + 1
        if isinstance(value, int | float) and isinstance(other, int | float) and not isinstance(value, bool):
            if math.isnan(value) and math.isnan(other):
                continue
            difference = abs(value - other)
            largest = max(largest, difference)
            if not difference <= tolerance:
                problems.append(f"{'.'.join(path)}: {value} -> {other} (difference {difference:.3g})")
        elif value != other:
            problems.append(f"{'.'.join(path)}: {value!r} -> {other!r}")
    return compared, largest, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="summary.json written before the typed summary")
    parser.add_argument("new", type=Path, help="summary.json written after it")
    parser.add_argument("--tolerance", type=float, default=1e-9, help="largest difference allowed")
    args = parser.parse_args()
    old, new = (json.loads(path.read_text()) for path in (args.old, args.new))
    compared, largest, problems = compare(old, new, args.tolerance)
    sections = sorted(
        {".".join(path[:2]) for path, _ in leaves(new)} - {".".join(moved(p)[:2]) for p, _ in leaves(old)}
    )
    print(f"{compared} values compared; largest difference {largest:.3g}")
    print(f"only in the new summary: {', '.join(sections)}")
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
