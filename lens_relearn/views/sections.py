"""Each analysis's part of the report, registered under the analysis's name (``write_report`` iterates them).

A section renders what its analysis recorded in a finished study: figures (``figure_html``) and
tables (``html_table``). The report shows the section of every analysis that ran, in the order
the analyses are registered, and names the ones that did not run and why.

Example:
    >>> from lens_relearn.views.page import html_table
    >>> section = ReportSection("words", "Words", lambda run, seed: html_table(["words"], [(414,)]))
    >>> with SECTIONS.registered(section):
    ...     SECTIONS.get("words").title
    'Words'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lens_relearn.study.registry import Registry
from lens_relearn.views.finished import FinishedStudy


@dataclass(frozen=True)
class ReportSection:
    """An analysis's section of the report.

    Attributes:
        name: The analysis's name.
        title: The section's heading.
        render: Its HTML for a finished study and the seed whose neurons it shows (escaped, figures inline).
    """

    name: str
    title: str
    render: Callable[[FinishedStudy, int], str]


SECTIONS: Registry[ReportSection] = Registry("report section")


def register_section(section: ReportSection, *, replace: bool = False) -> ReportSection:
    """Show ``section`` in the report of every study its analysis ran in."""
    return SECTIONS.register(section, replace=replace)
