"""The seams: an analysis and a removal defined here, in the test file only, plug into a study through the
registries and appear in its tables, its summary, its report and its arms, with no file of the package changed."""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import lens_relearn
from lens_relearn import Analysis, NeuronRemoval, ReportSection, open_run, preset, run_experiment, write_report
from lens_relearn.models.sites import Neuron
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.folders import StageKey, StudyFolder
from lens_relearn.study.removal import REMOVALS
from lens_relearn.views.page import html_table
from lens_relearn.views.plots import arm_style
from lens_relearn.views.sections import SECTIONS

TOY = "toy_top_layer"


@dataclass(frozen=True)
class LayerShareSummary:
    """The share of the first arm's top ten neurons in the last layer, by stage (mean over seeds)."""

    shares: dict[str, float]
    steps_watched: int


class LayerShare(Analysis):
    """A toy analysis: where a stage's ten best-ranked neurons lie, and how many training steps it watched."""

    name = TOY
    summary_type = LayerShareSummary

    def monitor(self, study, key, tagger, start, steps):
        return StepCounter()

    def at_stage(self, study, outcome):
        top = outcome.neurons.sort_values("position").head(10)
        watched = outcome.monitors[TOY].steps if outcome.trained and TOY in outcome.monitors else 0
        share = float((top.layer == study.inputs.site.n_layers - 1).mean())
        return {TOY: pd.DataFrame({"share": [share], "steps": [watched]})}

    def summarise(self, study):
        table = study.stage_tables(TOY)
        study.folder.write_table(TOY, table)
        main = table[table.arm == study.main_arm]
        shares = main.groupby("stage", sort=False).share.mean()
        return LayerShareSummary({stage: float(shares[stage]) for stage in study.stages}, int(main.steps.sum()))


class StepCounter:
    """A training monitor that remembers the last step it saw."""

    every = 1

    def __init__(self):
        self.steps = 0

    def __call__(self, steps, seen):
        self.steps = steps


class FirstUnits(NeuronRemoval):
    """A toy removal: the first ``count`` units of layer 0."""

    name = "toy_first_units"
    description = "the first units of layer 0"

    def choose(self, tagger, context):
        return [Neuron(0, index) for index in range(context.count)]


def render(run, seed):
    section = run.section(LayerShareSummary)
    return html_table(["stage", "share of the top ten in the last layer"], section.shares.items())


CONFIG = preset(
    "quick",
    model="tiny-bert",
    n_train=40,
    n_validation=20,
    n_test=15,
    n_novel=5,
    base_epochs=1,
    rounds=1,
    prune_count=7,
    arms=("toy_first_units", "concept"),
)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A tiny study with the toy analysis, its report section and the toy removal registered."""
    out = tmp_path_factory.mktemp("seams") / "run"
    section = ReportSection(TOY, "Where the best neurons lie", render)
    with ANALYSES.registered(LayerShare()), SECTIONS.registered(section), REMOVALS.registered(FirstUnits()):
        summary = run_experiment(CONFIG, out, progress=False)
        write_report(out)
        yield out, summary, open_run(out)


def test_the_package_does_not_know_the_toys():
    package = Path(lens_relearn.__file__).parent
    sources = "\n".join(path.read_text() for path in package.rglob("*.py"))
    assert TOY not in sources and "toy_first_units" not in sources


def test_a_registered_analysis_writes_its_tables_summary_and_report_section(toy_run):
    out, summary, run = toy_run
    folder = StudyFolder(out)
    for arm in CONFIG.arms:
        for stage in CONFIG.stages():
            table = folder.stage_table(StageKey(0, arm, stage), TOY)
            assert table.share.between(0, 1).all()
    trained = {
        stage: folder.stage_table(StageKey(0, "toy_first_units", stage), TOY).steps.item() for stage in CONFIG.stages()
    }
    assert trained == {"base": 3, "pruned": 0, "round1": 3}  # 40 sentences, batches of 16, one epoch
    assert len(run.table(TOY)) == len(CONFIG.arms) * len(CONFIG.stages())
    assert TOY in summary.analyses.ran and summary.section(LayerShareSummary) == run.summary.section(LayerShareSummary)
    written = json.loads((out / "summary.json").read_text())[TOY]
    assert set(written["shares"]) == set(CONFIG.stages()) and written["steps_watched"] > 0
    report = (out / "report.html").read_text()
    section = report[report.index(f'id="analysis-{TOY}"') :]
    assert "Where the best neurons lie" in section and "share of the top ten in the last layer" in section
    assert run.show(TOY).title == "Where the best neurons lie"


def test_a_registered_removal_runs_as_an_arm(toy_run):
    out, summary, _ = toy_run
    folder = StudyFolder(out)
    chosen = {Neuron(0, index) for index in range(7)}
    assert json.loads((folder.stage_dir(StageKey(0, "toy_first_units", "pruned")) / "pruned.json").read_text()) == [
        [0, index] for index in range(7)
    ]
    table = folder.stage_table(StageKey(0, "toy_first_units", "round1"))
    flagged = table[table.pruned]
    assert {Neuron(int(l), int(i)) for l, i in zip(flagged.layer, flagged["index"], strict=True)} == chosen
    tagger = lens_relearn.load_stage(out, "round1", arm="toy_first_units")
    ids = tagger.model.tokenizer(["Rain in Oslo"], return_tensors="pt")["input_ids"]
    _, cache = tagger.model.run_with_cache(ids, names_filter="blocks.0.mlp.hook_post")
    assert cache["blocks.0.mlp.hook_post"][..., :7].abs().max().item() == 0.0
    assert cache["blocks.0.mlp.hook_post"][..., 7:].abs().max().item() > 0.0
    assert set(summary.arms) == {"toy_first_units", "concept"} and summary.pruned.arm == "toy_first_units"
    assert summary.arms["toy_first_units"].concept_f1.pruned >= 0
    assert "<td>toy_first_units</td>" in (out / "report.html").read_text()  # its rows in the F1 tables
    label = arm_style("toy_first_units@without_concept")[0]
    assert label == "the first units of layer 0, retrained without the concept's sentences"


def test_an_unregistered_removal_stops_the_study_before_anything_is_written(tmp_path):
    with pytest.raises(
        lens_relearn.LensRelearnError, match="names the removal 'unregistered_units', which is not registered"
    ):
        run_experiment(CONFIG.replace(arms=("unregistered_units",)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
