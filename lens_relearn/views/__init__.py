"""Seeing relearning: the report, each analysis's section and figures, neuron views, and the notebook handle.

Importing this package registers the report section of each built-in analysis (``SECTIONS``).
"""

from lens_relearn.views import blend, collateral, probes, recovery, redistribution, regrowth, relocation, retraining
from lens_relearn.views.neuron_views import neuron_view, neuron_views
from lens_relearn.views.page import View
from lens_relearn.views.removal import plot_removal, write_removal_report
from lens_relearn.views.report import write_report
from lens_relearn.views.run import NeuronCase, Run, open_run
from lens_relearn.views.sections import SECTIONS, ReportSection, register_section
from lens_relearn.views.sweep import plot_sweep

for _module in (collateral, probes, recovery, retraining, relocation, redistribution, blend, regrowth):
    register_section(_module.SECTION, replace=True)

__all__ = [
    "SECTIONS",
    "NeuronCase",
    "ReportSection",
    "Run",
    "View",
    "neuron_view",
    "neuron_views",
    "open_run",
    "plot_removal",
    "plot_sweep",
    "register_section",
    "write_removal_report",
    "write_report",
]
