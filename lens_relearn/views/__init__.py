"""Seeing relearning: neuron views, plots and the HTML report of a finished study."""

from lens_relearn.views.neuron_views import neuron_view, neuron_views
from lens_relearn.views.page import View
from lens_relearn.views.plots import (
    f1_table,
    plot_blend,
    plot_collateral,
    plot_f1,
    plot_layer_saliency,
    plot_probes,
    plot_recovery,
    plot_redistribution,
    plot_regrowth,
    plot_relocation,
    plot_saliency_heatmap,
    plot_similarity,
)
from lens_relearn.views.removal import plot_removal, write_removal_report
from lens_relearn.views.report import write_report
from lens_relearn.views.run import NeuronCase, Run, open_run
from lens_relearn.views.sweep import plot_sweep

__all__ = [
    "NeuronCase",
    "Run",
    "View",
    "f1_table",
    "neuron_view",
    "neuron_views",
    "open_run",
    "plot_blend",
    "plot_collateral",
    "plot_f1",
    "plot_layer_saliency",
    "plot_probes",
    "plot_recovery",
    "plot_redistribution",
    "plot_regrowth",
    "plot_relocation",
    "plot_removal",
    "plot_saliency_heatmap",
    "plot_similarity",
    "plot_sweep",
    "write_removal_report",
    "write_report",
]
