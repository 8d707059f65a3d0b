"""Collateral damage of pruning on the tiny study: summary.json, the F1 table, the plot and the report
say what the run's own tables say about every entity type, and selectivity is None where undefined."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

import lens_relearn as lr
from lens_relearn.analyses.collateral import ArmCollateral, CollateralSummary
from lens_relearn.stats import selectivity
from lens_relearn.study.analysis import mean_f1
from lens_relearn.views.collateral import kept_sentence, plot_collateral
from lens_relearn.views.plots import arm_style, f1_table

STAGES = ["base", "pruned", "round1", "round2"]
OTHERS = ["PER", "ORG", "MISC"]
PRUNING_ARMS = ["concept", "random"]


def on_test_split(run, name):
    """One table of the run, its test split only."""
    table = pd.read_csv(run / f"{name}.csv")
    return table[table.split == "test"]


def type_means(run, arm):
    """Each entity type's test F1 per stage, mean over seeds, from ``types.csv``."""
    types = on_test_split(run, "types")
    return types[types.arm == arm].groupby(["type", "stage"]).f1.mean()


def other_means(run, arm):
    """The other types' mean test F1 per stage: per seed over the types the split has, then over seeds."""
    types = on_test_split(run, "types")
    rows = types[(types.arm == arm) & types.type.isin(OTHERS) & (types.support > 0)]
    return rows.groupby(["seed", "stage"]).f1.mean().groupby("stage").mean()


def concept_means(run, arm):
    """The concept's test F1 per stage, mean over seeds, from ``performance.csv``."""
    performance = on_test_split(run, "performance")
    return performance[performance.arm == arm].groupby("stage").concept_f1.mean()


def by_hand(concept, others, stage):
    """Selectivity as defined: the share of the other types' F1 kept minus the share of the concept's."""
    return others[stage] / others["base"] - concept[stage] / concept["base"]


@pytest.mark.parametrize("arm", PRUNING_ARMS)
def test_summary_collateral_is_what_the_tables_say(tiny_run, arm):
    types = on_test_split(tiny_run, "types")
    assert sorted(types.type.unique()) == sorted(["LOC", *OTHERS])
    assert (types.support > 0).all(), "every type has entities in the test split"
    collateral = lr.open_run(tiny_run).summary.section(CollateralSummary).arms[arm]
    per_type = type_means(tiny_run, arm)
    assert list(collateral.per_type) == ["PER", "ORG", "LOC", "MISC"], "label order"
    for kind, values in collateral.per_type.items():
        np.testing.assert_allclose([values[s] for s in STAGES], per_type.loc[kind][STAGES], rtol=0, atol=1e-12)
    concept, others = concept_means(tiny_run, arm), other_means(tiny_run, arm)
    np.testing.assert_allclose([collateral.concept_f1[s] for s in STAGES], concept[STAGES], rtol=0, atol=1e-12)
    np.testing.assert_allclose(concept[STAGES], per_type.loc["LOC"][STAGES], rtol=0, atol=1e-12)
    np.testing.assert_allclose([collateral.other_f1[s] for s in STAGES], others[STAGES], rtol=0, atol=1e-12)
    assert list(collateral.selectivity) == STAGES[1:]
    for stage in STAGES[1:]:
        assert collateral.selectivity[stage] == pytest.approx(by_hand(concept, others, stage), abs=1e-9)


def test_performance_other_f1_is_the_mean_over_the_other_types_of_each_seed(tiny_run):
    types = on_test_split(tiny_run, "types")
    expected = types[types.type.isin(OTHERS) & (types.support > 0)].groupby(["arm", "stage", "seed"]).f1.mean()
    performance = on_test_split(tiny_run, "performance").set_index(["arm", "stage", "seed"]).other_f1
    assert len(performance) == len(expected) == 3 * len(STAGES)
    np.testing.assert_allclose(performance.loc[expected.index], expected, rtol=0, atol=1e-12)


def test_the_other_types_mean_skips_the_types_a_split_lacks():
    scores = {"per_type": {"PER": {"f1": 0.4, "support": 3}, "ORG": {"f1": 0.0, "support": 0}, "LOC": {"f1": 0.9}}}
    assert mean_f1(scores, ["PER", "ORG", "MISC"]) == pytest.approx(0.4)
    assert math.isnan(mean_f1(scores, ["ORG", "MISC"]))


@pytest.mark.parametrize(
    ("concept", "others", "expected"),
    [
        ({"base": 0.8, "pruned": 0.0}, {"base": 0.6, "pruned": 0.6}, 1.0),
        ({"base": 0.8, "pruned": 0.4}, {"base": 0.6, "pruned": 0.3}, 0.0),
        ({"base": 0.8, "pruned": 0.8}, {"base": 0.6, "pruned": 0.3}, -0.5),
        ({"base": 0.0, "pruned": 0.0}, {"base": 0.6, "pruned": 0.3}, None),
        ({"base": 0.8, "pruned": 0.4}, {"base": 0.0, "pruned": 0.3}, None),
        ({"base": 0.8, "pruned": 0.4}, {"base": math.nan, "pruned": math.nan}, None),
        ({"base": 0.8, "pruned": 0.4}, {"base": 0.6, "pruned": math.nan}, None),
    ],
    ids=["concept-gone", "same-share", "others-lost-more", "concept-base-0", "others-base-0", "no-others", "nan-stage"],
)
def test_selectivity_is_one_for_the_concept_only_and_none_where_undefined(concept, others, expected):
    value = selectivity(concept, others, "pruned")
    assert value == (None if expected is None else pytest.approx(expected))


def test_f1_table_has_every_type_the_other_types_mean_and_selectivity(tiny_run):
    table = f1_table(tiny_run)
    metrics = ["F1", "LOC F1", *(f"{kind} F1" for kind in OTHERS), "other types F1", "selectivity"]
    assert list(table.index) == [(arm, metric) for arm in ("concept", "random", "none") for metric in metrics]
    for arm in PRUNING_ARMS:
        per_type, concept, others = type_means(tiny_run, arm), concept_means(tiny_run, arm), other_means(tiny_run, arm)
        for kind in OTHERS:
            np.testing.assert_allclose(table.loc[(arm, f"{kind} F1")], per_type.loc[kind][STAGES], rtol=0, atol=1e-12)
        np.testing.assert_allclose(table.loc[(arm, "LOC F1")], concept[STAGES], rtol=0, atol=1e-12)
        np.testing.assert_allclose(table.loc[(arm, "other types F1")], others[STAGES], rtol=0, atol=1e-12)
        row = table.loc[(arm, "selectivity")]
        assert math.isnan(row["base"])
        np.testing.assert_allclose(row[STAGES[1:]], [by_hand(concept, others, s) for s in STAGES[1:]], atol=1e-9)


def copy_tables(run, to):
    """The files the F1 table and the collateral plot read, copied so a test may change them."""
    to.mkdir()
    for name in ("run.json", "summary.json", "performance.csv", "types.csv"):
        shutil.copy(run / name, to / name)
    return to


def test_a_type_the_split_lacks_gets_no_row_and_no_line(tiny_run, tmp_path):
    run = copy_tables(tiny_run, tmp_path / "run")
    types = pd.read_csv(run / "types.csv")
    types.loc[(types.split == "test") & (types.type == "ORG"), ["f1", "support"]] = 0
    types.to_csv(run / "types.csv", index=False)
    metrics = list(f1_table(run).loc["concept"].index)
    assert metrics == ["F1", "LOC F1", "PER F1", "MISC F1", "other types F1", "selectivity"]
    assert "ORG F1" in f1_table(run, split="validation").loc["concept"].index
    assert [line.get_label() for line in plot_collateral(run).axes[0].lines] == ["PER", "LOC (concept)", "MISC"]


def test_a_concept_of_several_classes_has_one_row_and_a_thick_red_line_each(tiny_run, tmp_path):
    run = copy_tables(tiny_run, tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary |= {"concept": "LOC,MISC", "concept_classes": ["LOC", "MISC"]}
    (run / "summary.json").write_text(json.dumps(summary))
    metrics = list(f1_table(run).loc["concept"].index)
    assert metrics == ["F1", "LOC,MISC F1", "PER F1", "ORG F1", "other types F1", "selectivity"]
    lines = {line.get_label(): line for line in plot_collateral(run).axes[0].lines}
    assert list(lines) == ["PER", "ORG", "LOC (concept)", "MISC (concept)"]
    concept = [lines["LOC (concept)"], lines["MISC (concept)"]]
    assert all(to_rgb(line.get_color()) == to_rgb("tab:red") and line.get_linewidth() > 2 for line in concept)
    assert concept[0].get_linestyle() != concept[1].get_linestyle()
    assert all(lines[kind].get_linewidth() < 2 for kind in ("PER", "ORG"))


def test_undefined_selectivity_is_nan_in_the_table_and_said_in_the_plot(tiny_run, tmp_path):
    run = copy_tables(tiny_run, tmp_path / "run")
    performance = pd.read_csv(run / "performance.csv")
    performance.loc[(performance.arm == "random") & (performance.stage == "base"), "concept_f1"] = 0.0
    performance.to_csv(run / "performance.csv", index=False)
    assert f1_table(run).loc[("random", "selectivity")].isna().all()
    assert not f1_table(run).loc[("concept", "selectivity"), STAGES[1:]].isna().any()
    titles = [axis.get_title() for axis in plot_collateral(run).axes]
    assert titles[1] == "random pruning (baseline)\nselectivity after pruning: undefined"


def test_collateral_plot_draws_every_type_per_arm(tiny_run):
    collateral = lr.open_run(tiny_run).summary.section(CollateralSummary)
    figure = lr.open_run(tiny_run).plot_collateral()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3
    for axis, arm in zip(figure.axes, ("concept", "random", "none"), strict=True):
        chosen = collateral.arms[arm].selectivity["pruned"]
        assert axis.get_title() == f"{arm_style(arm)[0]}\nselectivity after pruning: {chosen:.2f}"
        assert [label.get_text() for label in axis.get_xticklabels()] == STAGES
        lines = {line.get_label(): line for line in axis.lines}
        assert list(lines) == ["PER", "ORG", "LOC (concept)", "MISC"]
        per_type = type_means(tiny_run, arm)
        for kind in ["LOC", *OTHERS]:
            line = lines[f"{kind} (concept)" if kind == "LOC" else kind]
            assert list(line.get_xdata()) == list(range(len(STAGES)))
            np.testing.assert_allclose(line.get_ydata(), per_type.loc[kind][STAGES], rtol=0, atol=1e-12, err_msg=kind)
        concept = lines["LOC (concept)"]
        others = [lines[kind] for kind in OTHERS]
        assert to_rgb(concept.get_color()) == to_rgb("tab:red")
        assert all(concept.get_linewidth() > line.get_linewidth() for line in others)
        colours = [to_rgb(line.get_color()) for line in others]
        assert len(set(colours)) == len(OTHERS) and to_rgb("tab:red") not in colours


def kept_after_pruning(run, arm):
    """The shares of the concept's and the other types' test F1 an arm kept after pruning, and its selectivity."""
    concept, others = concept_means(run, arm), other_means(run, arm)
    return (
        f"{concept['pruned'] / concept['base']:.0%}",
        f"{others['pruned'] / others['base']:.0%}",
        f"{by_hand(concept, others, 'pruned'):.2f}",
    )


def test_report_says_what_pruning_kept_of_the_concept_and_the_other_types(tiny_run, tiny_page):
    concept, others, chosen = kept_after_pruning(tiny_run, "concept")
    random_concept, random_others, random_chosen = kept_after_pruning(tiny_run, "random")
    sentence = (
        f"Pruning kept {concept} of LOC's F1 and {others} of the other types' mean F1 (selectivity {chosen} after "
        f"pruning); random pruning kept {random_concept} and {random_others} (selectivity {random_chosen})."
    )
    start = tiny_page.index("<p>", tiny_page.index('<h2 id="analysis-collateral">'))
    assert sentence in tiny_page[start : tiny_page.index("</p>", start)]
    assert "<figcaption>F1 of every entity type on the test split at every stage" in tiny_page
    assert tiny_page.count('<img alt="') == 12
    assert "<td>other types F1</td>" in tiny_page
    assert tiny_page.count('<td>selectivity</td><td class="number">–</td>') == 2 * 3, "none at base: 2 splits x 3 arms"


def test_the_collateral_sentence_names_each_pruning_arm_in_turn():
    def arm(concept, others, chosen):
        return ArmCollateral(
            concept_f1={"base": 0.5, "pruned": concept},
            other_f1={"base": 0.8, "pruned": others},
            per_type={},
            selectivity={"pruned": chosen},
        )

    arms = {"none": arm(0.5, 0.8, 0.0)}
    assert kept_sentence(CollateralSummary(split="test", arms=arms), "GPE,LOC") == ""
    arms |= {"concept": arm(0.06, 0.44, 0.43), "random": arm(0.48, 0.728, -0.05)}
    assert kept_sentence(CollateralSummary(split="test", arms=arms), "GPE,LOC") == (
        "Pruning kept 12% of GPE,LOC's F1 and 55% of the other types' mean F1 (selectivity 0.43 after pruning); "
        "random pruning kept 96% and 91% (selectivity -0.05). "
    )
    assert kept_sentence(CollateralSummary(split="test", arms={"random": arm(0.0, None, None)}), "GPE,LOC") == (
        "Random pruning kept 0% of GPE,LOC's F1 and an unknown share of the other types' mean F1 "
        "(selectivity undefined after pruning). "
    )
