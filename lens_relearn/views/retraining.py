"""Retraining conditions, seen: what each arm retrained on, and where the concept stood before and after."""

from __future__ import annotations

import html

from lens_relearn.analyses.retraining import RetrainingSummary
from lens_relearn.study.summary import Interval
from lens_relearn.views.finished import FinishedStudy
from lens_relearn.views.page import html_table
from lens_relearn.views.plots import number_or_nan
from lens_relearn.views.sections import ReportSection


def _with_interval(value: Interval) -> str:
    """A mean, with its interval over seeds when there are several.

    Example:
        >>> _with_interval(Interval(0.5, 0.4, 0.6, 3)), _with_interval(Interval(0.5, 0.5, 0.5, 1))
        ('0.500 [0.400, 0.600]', '0.500')
    """
    return f"{value.mean:.3f}" + (f" [{value.low:.3f}, {value.high:.3f}]" if value.n > 1 else "")


def _render(run: FinishedStudy, seed: int) -> str:
    final, concept = run.final, run.concept
    rows = [
        (
            arm,
            f"{r.data} ({r.sentences} sentences)",
            _with_interval(r.concept_f1_intervals["pruned"]),
            _with_interval(r.concept_f1_intervals[final]),
            number_or_nan(r.other_f1[final]),
            r.probe_accuracy_last_layer["pruned"],
            r.probe_accuracy_last_layer[final],
        )
        for arm, r in run.section(RetrainingSummary).arms.items()
    ]
    header = [
        "arm",
        "retrained on",
        f"{concept} F1 pruned",
        f"{concept} F1 {final}",
        f"others F1 {final}",
        "probe accuracy pruned",
        f"probe accuracy {final}",
    ]
    intro = (
        f"<p>Each arm's {html.escape(concept)} F1 on the test split (95% intervals over seeds when there are several) "
        "and the accuracy of the last layer's probe. An arm retrained without the concept's sentences shows what "
        "comes back untaught; one retrained with the concept tagged O, whether the representation survives being "
        "taught to ignore it.</p>"
    )
    return intro + html_table(header, rows)


SECTION = ReportSection("retraining", "From what the concept returns", _render)
