"""The handle a notebook holds on a finished study: its tables, plots, stage models and neurons."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lens_relearn.analyses.attacks import AttacksSummary
from lens_relearn.analyses.comparison import ComparisonSummary
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron
from lens_relearn.study.runner import load_stage
from lens_relearn.tagger.model import Tagger
from lens_relearn.views.attacks import attack_rows, plot_attacks
from lens_relearn.views.blend import plot_blend
from lens_relearn.views.collateral import plot_collateral
from lens_relearn.views.comparison import comparison_rows, plot_comparison
from lens_relearn.views.distance import plot_distance
from lens_relearn.views.finished import FinishedStudy
from lens_relearn.views.neuron_views import neuron_trajectory, neuron_views
from lens_relearn.views.page import View
from lens_relearn.views.plots import f1_table, plot_f1, plot_layer_saliency, plot_saliency_heatmap
from lens_relearn.views.probes import plot_probes
from lens_relearn.views.recovery import plot_recovery
from lens_relearn.views.redistribution import plot_redistribution, plot_similarity
from lens_relearn.views.regrowth import plot_regrowth
from lens_relearn.views.relocation import plot_relocation
from lens_relearn.views.report import write_report
from lens_relearn.views.sections import SECTIONS


@dataclass(frozen=True)
class NeuronCase:
    """One neuron of a study: its trajectory over the stages and its view; shows itself in Jupyter.

    Attributes:
        neuron: The neuron.
        arm: The arm it was followed in.
        seed: The seed.
        trajectory: One row a stage (``neuron_trajectory``): ranking position (0-based), saliency,
            whether it is pruned, similarity of its top tokens to the concept and to its base top
            tokens, the entropy of its class composition, top tokens.
        view: Its activations and top tokens at the base model and after each round.
    """

    neuron: Neuron
    arm: str
    seed: int
    trajectory: pd.DataFrame
    view: View

    def _repr_html_(self) -> str:
        layer, index = self.neuron
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(value))}</td>" for value in row) + "</tr>"
            for row in self.trajectory.itertuples(index=False)
        )
        head = "".join(f"<th>{html.escape(name)}</th>" for name in self.trajectory.columns)
        table = f"<table><tr>{head}</tr>{rows}</table>"
        title = f"<h3>Neuron {layer}.{index} ({html.escape(self.arm)} arm, seed {self.seed})</h3>"
        return title + table + self.view._repr_html_()


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


class RunTable:
    """A table of a finished study as an attribute of its ``Run`` (the attribute's name is the table's)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, run: FinishedStudy | None, owner: type) -> Any:
        if run is None:
            return self  # the descriptor itself, for help()
        return run.table(self.name)


class Run(FinishedStudy):
    """A finished study, for working with it in Python or Jupyter (see ``open_run``).

    Its typed ``summary`` (``summary.section(CollateralSummary)`` for an analysis's part), its tables by
    name (``table("probes")``; the core's and the primed neurons' as properties), each analysis's plot,
    every stage's model (``stage``) and any neuron's trajectory and view (``neuron``).
    """

    performance = RunTable("F1, concept F1 and the other types' mean F1 of every seed, arm, stage and split.")
    types = RunTable("F1 and support of every entity type at every seed, arm, stage and split.")
    layers = RunTable("Per-layer saliency and salient share of every seed, arm and stage.")
    neurons = RunTable("One row a neuron a seed, arm and stage.")
    probes = RunTable("Probe accuracy per residual layer of every seed, arm and stage (the probes analysis).")
    primed = RunTable("The primed neurons: newly among the top concept neurons after retraining (the blend analysis).")
    dynamics = RunTable("Every recovery-curve point: seed, arm, stage, steps and sentences since pruning, F1s.")

    def f1_table(self, *, split: str = "test") -> pd.DataFrame:
        """Overall, concept and other types' F1 and selectivity per arm and stage (``f1_table``)."""
        return f1_table(self, split=split)

    def plot_f1(self, *, split: str = "test") -> Figure:
        """F1 per stage and arm (``plot_f1``)."""
        return plot_f1(self, split=split)

    def plot_collateral(self, *, split: str = "test") -> Figure:
        """Every entity type's F1 per stage and arm (``plot_collateral``)."""
        return plot_collateral(self, split=split)

    def plot_layer_saliency(self, *, arm: str | None = None) -> Figure:
        """Mean saliency per layer at each stage (``plot_layer_saliency``)."""
        return plot_layer_saliency(self, arm=arm)

    def plot_probes(self, *, arm: str | None = None) -> Figure:
        """Probe accuracy per residual layer at each stage (``plot_probes``)."""
        return plot_probes(self, arm=arm)

    def plot_relocation(self) -> Figure:
        """The causal test of relocation (``plot_relocation``)."""
        return plot_relocation(self)

    def plot_saliency_heatmap(
        self, *, stages: Sequence[str] | None = None, arm: str | None = None, seed: int | None = None
    ) -> Figure:
        """Every neuron's saliency at some stages (``plot_saliency_heatmap``)."""
        return plot_saliency_heatmap(self, stages=stages, arm=arm, seed=seed)

    def plot_similarity(self, *, stage: str | None = None, arm: str | None = None, seed: int | None = None) -> Figure:
        """Similarity to base against saliency (``plot_similarity``)."""
        return plot_similarity(self, stage=stage, arm=arm, seed=seed)

    def plot_redistribution(self, *, arm: str | None = None) -> Figure:
        """Share of salient survivors per layer, base and last round (``plot_redistribution``)."""
        return plot_redistribution(self, arm=arm)

    def plot_recovery(self) -> Figure:
        """The concept's F1 step by step after pruning, one line an arm (``plot_recovery``)."""
        return plot_recovery(self)

    def plot_blend(self, *, seed: int | None = None) -> Figure:
        """Class-composition entropy before and after, primed neurons against all (``plot_blend``)."""
        return plot_blend(self, seed=seed)

    def plot_regrowth(self) -> Figure:
        """What regrown pruned units carry, per round (``plot_regrowth``; weights mode, unfrozen)."""
        return plot_regrowth(self)

    def plot_distance(self) -> Figure:
        """How far each stage moved from the base model: CKA per layer and weight distance (``plot_distance``)."""
        return plot_distance(self)

    def plot_attacks(self) -> Figure:
        """The concept's F1 after one round against N, one line a removal (``plot_attacks``)."""
        return plot_attacks(self)

    def attack_table(self) -> pd.DataFrame:
        """The relearning-attack table: a row a removal, a column a retraining condition (the ``attacks`` analysis)."""
        header, rows = attack_rows(self.section(AttacksSummary))
        return pd.DataFrame(rows, columns=header).set_index("removal")

    def plot_comparison(self) -> Figure:
        """Every arm's concept F1 after its removal and after retraining, and its cost (``plot_comparison``)."""
        return plot_comparison(self)

    def comparison_table(self) -> pd.DataFrame:
        """The removals side by side, one row an arm (the ``comparison`` analysis's table)."""
        header, rows = comparison_rows(self.section(ComparisonSummary))
        return pd.DataFrame(rows, columns=header).set_index("arm")

    def stage(self, stage: str, *, seed: int | None = None, arm: str | None = None) -> Tagger:
        """The tagger of a stage with its arm's pruning applied (``load_stage``; default: the first seed and arm)."""
        return load_stage(self.path, stage, seed=self.seed(seed), arm=self.arm(arm))

    def neuron(self, layer: int, index: int, *, seed: int | None = None, arm: str | None = None) -> NeuronCase:
        """One neuron's trajectory and view (default: the first seed and arm).

        Raises:
            LensRelearnError: The study has no such neuron, seed or arm.
        """
        arm, seed = self.arm(arm), self.seed(seed)
        neurons = self.neurons
        rows = neurons[
            (neurons.layer == layer) & (neurons["index"] == index) & (neurons.seed == seed) & (neurons.arm == arm)
        ]
        if rows.empty:
            raise LensRelearnError(f"{self.path} has no neuron ({layer}, {index}) for seed {seed}, arm {arm!r}.")
        trajectory = neuron_trajectory(rows, self.stages)
        (view,) = neuron_views(self, [(layer, index)], seed=seed, arm=arm)
        return NeuronCase(Neuron(layer, index), arm, seed, trajectory, view)

    def show(self, analysis: str, *, seed: int | None = None) -> View:
        """An analysis's report section (figures and tables) as a view for a notebook cell.

        Raises:
            LensRelearnError: The analysis did not run in this study (the message says why), or has no section.
        """
        if not self.ran(analysis):
            why = self.summary.analyses.skipped.get(analysis, "it is not one of the study's analyses")
            raise LensRelearnError(f"{self.path} has no {analysis!r} analysis: {why}.")
        section = SECTIONS.get(analysis)
        rendered = section.render(self, self.seed(seed))
        return View(section.title, f"<h2>{html.escape(section.title)}</h2>{rendered}")

    def write_report(self, *, seed: int | None = None) -> Path:
        """Write ``report.html`` (``write_report``) and return its path."""
        return write_report(self, seed=seed)


def open_run(path: str | Path) -> Run:
    """A finished study's folder, as one handle: tables, plots, stage models and neurons.

    Example:
        >>> # run = open_run("runs/quick")
        >>> # run.f1_table(); run.plot_layer_saliency(); run.primed.head()
        >>> # run.neuron(5, 200)          # its trajectory table and view in one notebook cell
        >>> # tagger = run.stage("round2")  # the retrained model, pruning re-applied

    Raises:
        LensRelearnError: The folder holds no finished study.
    """
    run = Run(path)
    run.require_complete()
    return run
