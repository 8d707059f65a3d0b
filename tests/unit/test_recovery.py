"""Recovery curves and retraining conditions: monitored training, dynamics.csv, the recovery block, three conditions."""

import json

import pandas as pd
import pytest
import torch

from lens_relearn import (
    LensRelearnError,
    Tagger,
    evaluate_tagger,
    load_model,
    load_ner,
    load_stage,
    open_run,
    preset,
    run_experiment,
    write_report,
)
from lens_relearn.analyses.attacks import AttacksSummary
from lens_relearn.analyses.recovery import RecoverySummary
from lens_relearn.analyses.retraining import RetrainingSummary
from lens_relearn.data.sentences import entity_spans, find_concept
from lens_relearn.data.sources import subsample
from lens_relearn.study.inputs import load_inputs
from lens_relearn.study.tables import recovery_measures
from lens_relearn.tagger import training
from lens_relearn.tagger.scores import concept_scores
from lens_relearn.views.recovery import plot_recovery

ARMS = ("concept", "concept@without_concept", "concept@concept_as_o", "concept@few:0", "concept@few:2")
DATA = ("full", "without_concept", "concept_as_o", "few:0", "few:2")
CONDITIONS = preset(
    "quick",
    model="tiny-bert",
    n_train=60,
    n_validation=30,
    n_test=20,
    n_novel=0,
    base_epochs=1,
    rounds=2,
    seeds=(0, 1),
    arms=ARMS,
    monitor_sentences=20,
)


def test_monitoring_leaves_the_trained_weights_unchanged():
    data = load_ner("synthetic", n_train=40, n_validation=10, n_test=1, n_novel=0)

    def trained(monitored: bool) -> tuple[dict, list]:
        tagger = Tagger(load_model("tiny-bert"), data.labels)
        calls: list = []

        def monitor(steps: int, seen: int) -> None:
            calls.append((steps, seen, evaluate_tagger(tagger, data.validation)["f1"]))
            torch.rand(3)  # a monitor that draws random numbers still leaves training alone

        train_kwargs = {"monitor": monitor, "monitor_every": 2} if monitored else {}
        history = training.train_tagger(tagger, data.train, epochs=2, batch_size=8, progress=False, **train_kwargs)
        return {name: p.detach().clone() for name, p in tagger.named_parameters()}, calls, history.losses

    before = torch.random.get_rng_state()
    plain, _, plain_losses = trained(False)
    watched, calls, watched_losses = trained(True)
    assert torch.equal(torch.random.get_rng_state(), before), "the global random state is left as it was"
    assert watched_losses == plain_losses
    for name, value in plain.items():
        assert torch.equal(value, watched[name]), name
    assert [(steps, seen) for steps, seen, _ in calls] == [(2, 16), (4, 32), (6, 48), (8, 64), (10, 80)]


def test_recovery_measures_say_never_when_a_share_is_not_reached():
    curve = pd.DataFrame({"step": [0, 5, 10], "examples": [0, 80, 160], "concept_f1": [0.0, 0.4, 0.6]})
    measures = recovery_measures(curve, 0.8)
    assert (measures["steps_to_50"], measures["examples_to_50"]) == (5, 80)
    assert measures["steps_to_90"] is None and measures["examples_to_90"] is None
    assert measures["auc"] == pytest.approx((0.25 + 0.625) / 2)


@pytest.fixture(scope="module")
def conditions(tmp_path_factory):
    """A tiny two-seed study of the three retraining conditions, with every batch each arm trained on.

    A stage trains before it is described, and the observer hears of it once it is finished, so the
    batches drawn since the last stage finished are that stage's (its arm's; the base stage's under None).
    """
    out = tmp_path_factory.mktemp("conditions") / "run"
    batches: dict = {}
    drawn: list = []
    grouped = training.length_grouped_batches

    def recording_batches(sentences, batch_size, generator):
        chosen = grouped(sentences, batch_size, generator)
        drawn.extend(chosen)
        return chosen

    def file_the_batches(outcome):
        batches.setdefault(outcome.key.arm, []).extend(drawn)
        drawn.clear()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "length_grouped_batches", recording_batches)
        summary = run_experiment(CONDITIONS, out, progress=False, observer=file_the_batches)
    assert not drawn, "every batch belongs to a stage"
    return out, summary, batches


@pytest.fixture(scope="module")
def page(conditions):
    """The conditions study's report."""
    return write_report(conditions[0]).read_text()


def test_without_concept_never_trains_on_a_sentence_with_a_concept_tag(conditions):
    _, summary, batches = conditions
    data = load_inputs(CONDITIONS).data
    loc = find_concept("LOC", data.labels)
    untaught = [s for s in data.train if not any(loc.covers(t) for t in s.tags)]
    seen = [s for batch in batches["concept@without_concept"] for s in batch]
    assert len(seen) == 2 * 2 * len(untaught), "two seeds, two rounds of one epoch"
    assert not any(loc.covers(t) for s in seen for t in s.tags)
    retraining = summary.section(RetrainingSummary).arms
    assert retraining["concept@without_concept"].sentences == len(untaught) < len(data.train)
    relabelled = [s for batch in batches["concept@concept_as_o"] for s in batch]
    assert len(relabelled) == 2 * 2 * len(data.train) and not any(loc.covers(t) for s in relabelled for t in s.tags)
    assert sorted(" ".join(s.words) for s in relabelled[: len(relabelled) // 4]) == sorted(
        " ".join(s.words) for s in data.train
    ), "every training sentence, its LOC tags relabelled"
    assert any(loc.covers(t) for batch in batches["concept"] for s in batch for t in s.tags)


def test_few_trains_on_that_many_sentences_of_the_concept_drawn_by_the_seed_and_every_one_without_it(conditions):
    _, summary, batches = conditions
    data = load_inputs(CONDITIONS).data
    loc = find_concept("LOC", data.labels)
    untaught = sorted(" ".join(s.words) for s in data.train if not any(loc.covers(t) for t in s.tags))
    assert batches["concept@few:0"] == batches["concept@without_concept"], "few:0 is without_concept"
    seen = [s for batch in batches["concept@few:2"] for s in batch]
    epoch = len(untaught) + 2
    assert len(seen) == 2 * 2 * epoch, "two seeds, two rounds of one epoch"
    drawn = []
    for start in range(0, len(seen), epoch):
        sentences = seen[start : start + epoch]
        holding = sorted(" ".join(s.words) for s in sentences if any(loc.covers(t) for t in s.tags))
        assert len(holding) == 2 and sorted(" ".join(s.words) for s in sentences) == sorted(untaught + holding)
        drawn.append(holding)
    assert drawn[0] == drawn[1] and drawn[2] == drawn[3] and drawn[0] != drawn[2], "one draw a seed"
    assert summary.section(RetrainingSummary).arms["concept@few:2"].sentences == epoch


def test_the_attack_table_puts_each_condition_in_its_column_with_the_f1_after_one_round(conditions, page):
    out, summary, _ = conditions
    attacks = summary.section(AttacksSummary)
    assert attacks.stage == "round1"
    assert attacks.conditions == ["few:0", "few:2", "without_concept", "full", "concept_as_o"], "few:N by N first"
    performance = pd.read_csv(out / "performance.csv")
    recovery = summary.section(RecoverySummary)
    names = sum(kind == "LOC" for s in load_inputs(CONDITIONS).data.test for kind, _, _ in entity_spans(s.tags))
    for arm, data in zip(ARMS, DATA, strict=True):
        cell = attacks.removals["concept"][data]
        after = performance[(performance.arm == arm) & (performance.split == "test") & (performance.stage == "round1")]
        assert cell.arm == arm and cell.concept_f1.n == 2
        assert cell.concept_f1.mean == pytest.approx(after.concept_f1.mean())
        assert cell.steps_to_50 == recovery.arms[arm].steps_to_50
        assert cell.seen_names + cell.unseen_names == names, "every test name is seen or unseen"
    table = open_run(out).attack_table()
    assert list(table.columns) == attacks.conditions and list(table.index) == ["concept"]
    section = page[page.index('<h2 id="analysis-attacks">') :].split("<h2")[1]
    assert "<th>few:0</th><th>few:2</th>" in section and section.count('<img alt="') == 1


def test_few_asking_for_more_sentences_of_the_concept_than_the_split_has_is_refused_before_training(tmp_path):
    config = preset("quick", model="tiny-bert", n_train=20, n_validation=5, n_test=5, n_novel=0)
    with pytest.raises(LensRelearnError, match="'few:500' asks for 500 training sentences with LOC; the training"):
        run_experiment(config.replace(arms=("concept", "concept@few:500")), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "seed0").exists(), "refused before any training"


def test_the_conditions_share_one_base_model_and_one_pruning(conditions):
    out, _, _ = conditions
    for seed in (0, 1):
        pruned = {
            json.dumps(json.loads((out / f"seed{seed}" / a / "pruned" / "pruned.json").read_text())) for a in ARMS
        }
        assert len(pruned) == 1, "the same neurons pruned in every condition"
    assert sorted(p.name for p in (out / "seed0").iterdir() if p.is_dir()) == sorted(["base", *ARMS])


def test_every_arm_and_seed_has_a_recovery_curve_from_the_pruned_model(conditions):
    out, summary, _ = conditions
    dynamics = pd.read_csv(out / "dynamics.csv")
    assert set(dynamics.columns) == {"seed", "arm", "stage", "step", "examples", "f1", "concept_f1", "other_f1"}
    data = load_inputs(CONDITIONS).data
    loc = find_concept("LOC", data.labels)
    monitor_set = subsample(data.validation, 20, 0, "monitor")
    recovery = summary.section(RecoverySummary)
    for seed in (0, 1):
        base = dynamics[(dynamics.seed == seed) & (dynamics.stage == "base")]
        assert base.arm.isna().all() and len(base) >= 2
        for arm in ARMS:
            curve = dynamics[(dynamics.seed == seed) & (dynamics.arm == arm)].sort_values("step")
            assert curve.stage.iloc[0] == "pruned" and curve.step.iloc[0] == 0
            assert curve.step.is_monotonic_increasing and set(curve.stage) == {"pruned", "round1", "round2"}
            last = curve.iloc[-1]
            tagger = load_stage(out, "round2", seed=seed, arm=arm)
            assert last.concept_f1 == concept_scores(evaluate_tagger(tagger, monitor_set), loc.members)["f1"]
            measures = recovery.arms[arm].per_seed[str(seed)]
            reference = float(base.sort_values("step").concept_f1.iloc[-1])
            assert measures == {"base_concept_f1": reference, **recovery_measures(curve, reference)}
    assert recovery.sentences == 20
    assert recovery.arms["concept"].auc.n == 2


def test_the_pruned_point_scores_the_pruned_model(conditions):
    out, _, _ = conditions
    dynamics = pd.read_csv(out / "dynamics.csv")
    point = dynamics[(dynamics.seed == 1) & (dynamics.arm == "concept") & (dynamics.stage == "pruned")].iloc[0]
    monitor_set = subsample(load_inputs(CONDITIONS).data.validation, 20, 0, "monitor")
    assert point.f1 == evaluate_tagger(load_stage(out, "pruned", seed=1, arm="concept"), monitor_set)["f1"]


def test_the_summary_and_the_report_compare_the_conditions(conditions, page):
    out, summary, _ = conditions
    retraining = summary.section(RetrainingSummary).arms
    assert list(retraining) == list(ARMS)
    assert [retraining[a].data for a in ARMS] == list(DATA)
    performance = pd.read_csv(out / "performance.csv")
    for arm in ARMS:
        test = performance[(performance.arm == arm) & (performance.split == "test") & (performance.stage == "round2")]
        assert retraining[arm].concept_f1["round2"] == pytest.approx(test.concept_f1.mean())
        assert retraining[arm].concept_f1_intervals["round2"].n == 2
    heading = '<h2 id="analysis-retraining">From what the concept returns</h2>'
    section = page[page.index(heading) + len(heading) :].split("<h2")[0]
    for arm, data in zip(ARMS, DATA, strict=True):
        assert f"<td>{arm}</td><td>{data} ({retraining[arm].sentences} sentences)</td>" in section
    assert '<img alt="Recovery curves' in page


def test_the_recovery_plot_draws_each_arms_mean_curve(conditions):
    out, _, _ = conditions
    dynamics = pd.read_csv(out / "dynamics.csv")
    concept_axis = plot_recovery(out).axes[0]
    lines = {line.get_label(): line for line in concept_axis.lines}
    drawn = lines["concept pruning, retrained without the concept's sentences"]
    curve = dynamics[dynamics.arm == "concept@without_concept"].groupby("step").concept_f1.mean()
    assert list(drawn.get_xdata()) == list(curve.index)
    assert list(drawn.get_ydata()) == pytest.approx(curve.tolist())


def test_an_arm_with_nothing_to_retrain_on_is_refused(tmp_path):
    config = preset("quick", model="tiny-bert", n_train=5, n_validation=5, n_test=5, n_novel=0, concept="O")
    with pytest.raises(LensRelearnError, match="'concept@without_concept' has no sentences to retrain on"):
        run_experiment(config.replace(arms=("concept@without_concept",)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "seed0").exists(), "refused before any training"


def test_an_unknown_condition_is_refused_before_anything_loads():
    with pytest.raises(LensRelearnError, match="Unknown arm 'concept@never'"):
        preset("quick", arms=("concept@never",))
