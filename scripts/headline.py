"""The README's headline table: one column a finished study, the measures the finding rests on.

For each study folder (its ``summary.json``: means over the study's seeds): the model and the
neurons pruned, the concept's F1 on the test split at base, after pruning and after each round
for the main arm, and for the random arm after pruning and the last round, the selectivity after
pruning of each, the last residual layer's probe accuracy after pruning (with the majority
class's), the steps and sentences retraining took to bring the concept back to 90% of base on the
recovery monitor. Prints a Markdown table::

    python scripts/headline.py runs/default runs/decoder
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def column(summary: dict) -> dict[str, str]:
    """The headline measures of one study's summary, as table cells."""
    concept, random = summary["concept_f1"], summary["arms"]["random"]["concept_f1"]
    selectivity = {arm: values["selectivity"]["pruned"] for arm, values in summary["collateral"]["arms"].items()}
    probe = summary["probes"]["arms"][summary["pruned"]["arm"]]["pruned"]
    recovery = summary["recovery"]["arms"][summary["pruned"]["arm"]]
    cells = {
        "study": f"{summary['model']}, seed {', '.join(map(str, summary['seeds']))}",
        "neurons pruned": f"{summary['pruned']['count']:,} of {summary['pruned']['of']:,} ({summary['ranking']})",
        "base": f"{concept['base']:.3f}",
        "pruned": f"**{concept['pruned']:.3f}**",
    }
    cells |= {f"round {i}": f"{value:.3f}" for i, value in enumerate(concept["rounds"], 1)}
    cells |= {
        "random: pruned, last round": f"{random['pruned']:.3f}, {random['rounds'][-1]:.3f}",
        "selectivity after pruning (concept, random)": f"{selectivity['concept']:.2f}, {selectivity['random']:.2f}",
        "probe accuracy after pruning, last layer (majority)": (
            f"{probe['accuracy'][-1]:.3f} ({probe['majority'][-1]:.3f})"
        ),
        "steps (sentences) to 90% of base": _steps(recovery),
    }
    return cells


def _steps(recovery: dict) -> str:
    steps, examples = recovery["steps_to_90"]["mean"], recovery["examples_to_90"]["mean"]
    return "not reached" if steps is None else f"{steps:.0f} ({examples:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished study folders")
    args = parser.parse_args()
    columns = [column(json.loads((run / "summary.json").read_text())) for run in args.runs]
    rows = list(dict.fromkeys(row for cells in columns for row in cells))
    print("| measure | " + " | ".join(cells["study"] for cells in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for row in rows[1:]:
        print(f"| {row} | " + " | ".join(cells.get(row, "") for cells in columns) + " |")


if __name__ == "__main__":
    main()
