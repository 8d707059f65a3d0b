"""Seeing relearning: the report, each analysis's section and figures, neuron views, and the notebook handle.

Importing this package registers the report section of each built-in analysis (``SECTIONS``).
"""

from lens_relearn.views.attacks import SECTION as ATTACKS
from lens_relearn.views.blend import SECTION as BLEND
from lens_relearn.views.collateral import SECTION as COLLATERAL
from lens_relearn.views.comparison import SECTION as COMPARISON
from lens_relearn.views.distance import SECTION as DISTANCE
from lens_relearn.views.neuron_views import neuron_view, neuron_views
from lens_relearn.views.page import View
from lens_relearn.views.probes import SECTION as PROBES
from lens_relearn.views.recovery import SECTION as RECOVERY
from lens_relearn.views.redistribution import SECTION as REDISTRIBUTION
from lens_relearn.views.regrowth import SECTION as REGROWTH
from lens_relearn.views.relocation import SECTION as RELOCATION
from lens_relearn.views.removal import plot_removal, write_removal_report
from lens_relearn.views.report import write_report
from lens_relearn.views.retraining import SECTION as RETRAINING
from lens_relearn.views.run import NeuronCase, Run, open_run
from lens_relearn.views.sections import SECTIONS, ReportSection, register_section
from lens_relearn.views.sweep import plot_sweep

for _section in (
    COLLATERAL,
    PROBES,
    RECOVERY,
    RETRAINING,
    RELOCATION,
    REDISTRIBUTION,
    BLEND,
    REGROWTH,
    DISTANCE,
    ATTACKS,
    COMPARISON,
):
    register_section(_section, replace=True)

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
