"""Neuron views, plots and the report on a tiny study: escaping, no network, labelled figures."""

import html
import re
import socket
import urllib.request

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

import lens_relearn as lr
from lens_relearn import LensRelearnError, neuron_view
from lens_relearn.cli import main
from lens_relearn.data.sentences import Sentence
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.views import neuron_views
from lens_relearn.views.blend import plot_blend
from lens_relearn.views.collateral import plot_collateral
from lens_relearn.views.neuron_views import _examples
from lens_relearn.views.page import circuitsvis_script, html_page
from lens_relearn.views.plots import arm_style, f1_table, plot_f1, plot_layer_saliency, plot_saliency_heatmap
from lens_relearn.views.probes import plot_probes
from lens_relearn.views.redistribution import plot_redistribution, plot_similarity
from lens_relearn.views.relocation import plot_relocation

PAYLOAD = "<script>alert(1)</script>"
PLOTS = [
    plot_blend,
    plot_f1,
    plot_collateral,
    plot_layer_saliency,
    plot_probes,
    plot_relocation,
    plot_saliency_heatmap,
    plot_similarity,
    plot_redistribution,
]


def scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)


def test_f1_table_has_every_arm_metric_and_stage(tiny_run):
    table = f1_table(tiny_run)
    assert list(table.columns) == ["base", "pruned", "round1", "round2"]
    metrics = ("F1", "LOC F1", "PER F1", "ORG F1", "MISC F1", "other types F1", "selectivity")
    assert list(table.index) == [(arm, metric) for arm in ("concept", "random", "none") for metric in metrics]
    scores = table.drop(index="selectivity", level="metric").to_numpy()
    assert scores.min() >= 0 and scores.max() <= 1


@pytest.mark.parametrize("plot", PLOTS, ids=lambda plot: plot.__name__)
def test_plots_are_labelled_figures(plot, tiny_run, tmp_path):
    figure = plot(tiny_run)
    assert isinstance(figure, Figure)
    assert figure.get_suptitle() or figure.axes[0].get_title()
    assert any(axis.get_xlabel() and axis.get_ylabel() for axis in figure.axes)
    figure.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_f1_plot_draws_one_line_per_arm_on_each_panel(tiny_run):
    figure = plot_f1(tiny_run)
    overall, concept = figure.axes
    assert [t.get_text() for t in figure.legends[0].get_texts()] == [
        "concept pruning",
        "random pruning (baseline)",
        "no pruning (control)",
    ]
    assert len(overall.lines) >= 3 and concept.get_title() == "LOC F1"


# What the plots draw, read back from their artists and checked against the run's files ----

STAGES = ["base", "pruned", "round1", "round2"]


def stage_neurons(run, stage, arm="concept", seed=0):
    """One stage's neuron table from ``neurons.parquet``, in (layer, index) order."""
    neurons = pd.read_parquet(run / "neurons.parquet")
    rows = neurons[(neurons.arm == arm) & (neurons.seed == seed) & (neurons.stage == stage)]
    assert not rows.empty
    return rows.sort_values(["layer", "index"]).reset_index(drop=True)


def concept_layers(run):
    """``layers.csv`` rows of the first arm (concept), mean over seeds, indexed by (stage, layer)."""
    layers = pd.read_csv(run / "layers.csv")
    return layers[layers.arm == "concept"].groupby(["stage", "layer"])[["mean", "low", "high", "salient_share"]].mean()


def test_f1_plot_draws_the_mean_test_scores_of_each_arm_per_stage(tiny_run):
    performance = pd.read_csv(tiny_run / "performance.csv")
    test = performance[performance.split == "test"]
    means = test.groupby(["arm", "stage"])[["f1", "concept_f1"]].mean()
    figure = plot_f1(tiny_run)
    overall, concept = figure.axes
    for axis, column in ((overall, "f1"), (concept, "concept_f1")):
        assert [label.get_text() for label in axis.get_xticklabels()] == STAGES
        drawn = {container.get_label(): container.lines[0] for container in axis.containers}
        assert len(drawn) == 3
        for arm in ("concept", "random", "none"):
            name, colour, _ = arm_style(arm)
            line = drawn[name]
            assert to_rgb(line.get_color()) == to_rgb(colour)
            assert list(line.get_xdata()) == list(range(len(STAGES)))
            expected = [means.loc[(arm, stage), column] for stage in STAGES]
            np.testing.assert_allclose(line.get_ydata(), expected, rtol=0, atol=1e-9, err_msg=f"{arm} arm, {column}")


def test_layer_saliency_plot_draws_each_stage_mean_and_interval(tiny_run):
    layers = concept_layers(tiny_run)
    axis = plot_layer_saliency(tiny_run).axes[0]
    lines = {line.get_label(): line for line in axis.lines}
    assert sorted(lines) == sorted(STAGES)
    bands = list(axis.collections)
    assert len(bands) == len(STAGES)
    for stage in STAGES:
        expected = layers.loc[stage]
        line = lines[stage]
        assert list(line.get_xdata()) == list(expected.index)
        np.testing.assert_allclose(line.get_ydata(), expected["mean"], rtol=0, atol=1e-9, err_msg=stage)
        # The band of the same colour spans low..high at every layer.
        (band,) = [b for b in bands if np.allclose(b.get_facecolor()[0][:3], to_rgb(line.get_color()))]
        vertices = band.get_paths()[0].vertices
        for layer, row in expected.iterrows():
            ys = vertices[np.isclose(vertices[:, 0], layer), 1]
            np.testing.assert_allclose(
                [ys.min(), ys.max()], [row["low"], row["high"]], rtol=0, atol=1e-9, err_msg=f"{stage}, layer {layer}"
            )


def test_redistribution_plot_draws_the_salient_share_at_base_and_the_last_round(tiny_run):
    shares = concept_layers(tiny_run)["salient_share"]
    axis = plot_redistribution(tiny_run).axes[0]
    bars = {container.get_label(): container for container in axis.containers}
    assert sorted(bars) == ["base", "round2"]
    assert not np.allclose(shares.loc["base"], shares.loc["round2"]), "the check needs stages that differ"
    for stage, container in bars.items():
        expected = shares.loc[stage]
        centres = [patch.get_x() + patch.get_width() / 2 for patch in container]
        np.testing.assert_allclose(np.round(centres), expected.index)
        np.testing.assert_allclose(
            [patch.get_height() for patch in container], expected, rtol=0, atol=1e-9, err_msg=stage
        )


def test_saliency_heatmap_draws_each_stage_ordered_by_base_saliency(tiny_run):
    base = stage_neurons(tiny_run, "base")
    n_layers, units = base.layer.max() + 1, base["index"].max() + 1
    # Within each layer: descending base saliency, ties in index order.
    order = base.sort_values(["layer", "saliency", "index"], ascending=[True, False, True])
    columns = order["index"].to_numpy().reshape(n_layers, units)
    assert stage_neurons(tiny_run, "round2").pruned.any(), "the last round has pruned neurons to mask"
    panels = [axis for axis in plot_saliency_heatmap(tiny_run).axes if axis.images]
    assert [axis.get_title().split()[0] for axis in panels] == ["base", "round2"]
    for axis, stage in zip(panels, ("base", "round2"), strict=True):
        rows = stage_neurons(tiny_run, stage)
        saliency = np.where(rows.pruned, np.nan, rows.saliency).reshape(n_layers, units)
        expected = np.take_along_axis(saliency, columns, axis=1)
        drawn = np.ma.masked_invalid(axis.images[0].get_array())
        assert drawn.shape == (n_layers, units)
        np.testing.assert_array_equal(np.ma.getmaskarray(drawn), np.isnan(expected), err_msg=f"{stage}: pruned")
        np.testing.assert_allclose(drawn.filled(np.nan), expected, rtol=0, atol=1e-9, err_msg=stage)
    first_row = panels[0].images[0].get_array()[0]
    assert np.all(np.diff(first_row) <= 0), "base panel: saliency falls along each layer"


def test_similarity_plot_draws_the_surviving_neurons_at_the_last_round(tiny_run):
    rows = stage_neurons(tiny_run, "round2")
    alive = rows[~rows.pruned]
    assert 0 < len(alive) < len(rows)
    axis = plot_similarity(tiny_run).axes[0]
    points = axis.collections[0]
    drawn = np.column_stack([points.get_offsets(), points.get_array()])
    expected = alive[["saliency", "similarity_to_base", "layer"]].to_numpy(dtype=float)

    def by_rows(array):
        return array[np.lexsort(array.T[::-1])]

    np.testing.assert_allclose(by_rows(drawn), by_rows(expected), rtol=0, atol=1e-9)
    primed = pd.read_csv(tiny_run / "primed.csv")
    primed = primed[primed.seed == 0][["layer", "index"]].merge(alive, on=["layer", "index"])
    if not primed.empty:
        rings = axis.collections[1].get_offsets()
        np.testing.assert_allclose(
            by_rows(np.asarray(rings)),
            by_rows(primed[["saliency", "similarity_to_base"]].to_numpy(dtype=float)),
            rtol=0,
            atol=1e-9,
        )


def test_neuron_view_escapes_words_in_html_and_in_script_json():
    view = neuron_view(
        (1, 2),
        [[PAYLOAD, "in", "Oslo"]],
        {"base": [[1.0, 0.0, 0.5]], "round1": [[0.0, 0.2, 2.0]]},
        {"base": [PAYLOAD, "Oslo"], "round1": ["Oslo", "</script><!--"]},
        notes=[PAYLOAD],
        concept_words={"Oslo"},
    )
    html = view._repr_html_()
    assert PAYLOAD not in html and "</script><!--" not in html
    assert '<span class="token">&lt;script&gt;alert(1)&lt;/script&gt;</span>' in view.body
    assert '<span class="token new">&lt;/script&gt;&lt;!--</span>' in view.body, "new at round1: outlined"
    assert '<span class="token concept">Oslo</span>' in view.body
    assert '<td class="note">&lt;script&gt;' in view.body
    mounts = scripts(view.body)
    assert len(mounts) == 2 and all("<" not in script for script in mounts), "no raw < in a view's JSON"
    assert "\\u0026lt;script\\u0026gt;" in mounts[0], "circuitsvis gets the escaped word"


def test_a_view_shows_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    view = neuron_view((0, 0), [["Rain"]], {"base": [[1.0]]}, {"base": ["Rain"]})
    html = view._repr_html_()
    assert html.count("var CircuitsVis=") == 1 and "unpkg" not in html and "sourceMappingURL" not in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert repr(view) == "View('Neuron L0.0', 1 circuitsvis components)"


def test_the_bundle_cannot_end_its_script_early():
    body = circuitsvis_script()[len("<script>") : -len("</script>")]
    assert "</" not in body and "<!--" not in body
    page = html_page("two views", "<p>a</p><p>b</p>")
    assert page.count("var CircuitsVis=") == 1 and "Content-Security-Policy" in page


def test_examples_take_old_and_new_top_tokens_in_turn():
    corpus = [
        Sentence(words, ["O"] * 3)
        for words in (["Rain", "in", "Oslo"], ["Anna", "met", "Bob"], ["Oslo", "and", "Anna"], ["Snow", "in", "Bergen"])
    ]
    chosen = _examples(corpus, ("base", ["Oslo", "Rain"]), ("round2", ["Bergen", "Oslo"]), 3)
    assert chosen == [
        (0, "has “Rain”, a top token at base, not round2"),
        (3, "has “Bergen”, a top token at round2, not base"),
        (2, "has “Oslo”, a top token at base and round2"),
    ]


def test_neuron_views_of_a_run(tiny_run):
    views = neuron_views(tiny_run, [(0, 1), (1, 2)], n_sentences=2)
    assert [v.title for v in views] == ["Neuron L0.1", "Neuron L1.2"]
    for view in views:
        assert view.body.count("CircuitsVis.render(") == 2 * 3, "2 sentences x (base, round1, round2)"
        assert all(f"<th>{stage}</th>" in view.body for stage in ("base", "round1", "round2"))


def test_a_study_reads_each_neuron_view_once(tiny_run):
    run = lr.open_run(tiny_run)
    first = neuron_views(run, [(0, 1), (1, 2)], n_sentences=2)
    made = dict(run.view_makers)
    again = neuron_views(run, [(1, 2), (0, 3)], n_sentences=2)
    assert [key[-1] for key in run.view_makers] == [(0, 1), (1, 2), (0, 3)]
    assert all(run.view_makers[key] is maker for key, maker in made.items()), "asked again, read once"
    assert again[0].body != first[1].body, "a page may show a view twice: each gets ids of its own"
    page_ids = re.compile(r"lens-relearn-[0-9a-f]{12}")
    assert page_ids.sub("", again[0].body) == page_ids.sub("", first[1].body)


# Figures under each heading of the tiny study's report: the core's three, then each analysis that ran
# (in registry order; regrowth needs prune_mode="weights", so it is listed under "skipped" instead).
REPORT_FIGURES = {
    "Figures": 3,
    "analysis-collateral": 1,
    "analysis-probes": 1,
    "analysis-recovery": 1,
    "analysis-retraining": 0,
    "analysis-relocation": 1,
    "analysis-redistribution": 2,
    "analysis-blend": 1,
    "analysis-distance": 1,
    "analysis-attacks": 0,
    "analysis-comparison": 1,
    "skipped": 0,
    "Neuron browser": 0,
}


def figures_by_heading(page: str) -> dict[str, int]:
    """Inline figures under each ``<h2>`` from ``Figures`` on, by the heading's id (or its text)."""
    parts = re.split(r"<h2(?: id=\"([^\"]+)\")?>(.*?)</h2>", page)
    headings = zip(parts[1::3], parts[2::3], parts[3::3], strict=True)
    counts = {key or text: body.count('<img alt="') for key, text, body in headings}
    return {key: count for key, count in counts.items() if key not in ("F1 per stage", "Config")}


def test_report_command_writes_one_self_contained_page(tiny_run, capsys):
    assert main(["report", str(tiny_run)]) == 0
    path = tiny_run / "report.html"
    assert f"report: {path.resolve()}" in capsys.readouterr().out
    page = path.read_text()
    assert page.count("var CircuitsVis=") == 1
    assert page.count('<img alt="') == 12
    assert list(figures_by_heading(page).items()) == list(REPORT_FIGURES.items()), "sections in registry order"
    shown = re.sub(r"<template .*?</template>", "", page, flags=re.DOTALL)  # the neuron browser's, inert
    mounts = shown.count("CircuitsVis.render(")
    assert 0 < mounts <= 3 * 4 * 3 and mounts % 3 == 0, "up to three primed neurons x 4 sentences x 3 stages"
    assert re.search(r"""(src|href)=["'](?!data:)""", page) is None
    for section in ("F1 per stage", "Figures", "Config"):
        assert f"<h2>{section}</h2>" in page
    assert '<h2 id="analysis-blend">Primed neurons</h2>' in page
    skipped = page[page.index('<h2 id="skipped">Analyses not run</h2>') : page.index("<h2>Neuron browser</h2>")]
    why = ANALYSES.get("regrowth").applies(lr.open_run(tiny_run).config)
    assert why and f"<td>regrowth</td><td>{html.escape(why)}</td>" in skipped


def test_report_of_an_unfinished_folder_says_what_to_do(tmp_path, capsys):
    with pytest.raises(LensRelearnError, match="lens-relearn run"):
        f1_table(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "summary.json is missing" in capsys.readouterr().err


def test_neuron_views_refuse_what_the_study_lacks(tiny_run):
    with pytest.raises(LensRelearnError, match="no 'paper' arm"):
        neuron_views(tiny_run, [(0, 1)], arm="paper")
    with pytest.raises(LensRelearnError, match="Unknown stages"):
        neuron_views(tiny_run, [(0, 1)], stages=["round9"])
    with pytest.raises(LensRelearnError, match=r"no neurons \[\(9, 0\)\]"):
        neuron_views(tiny_run, [(9, 0)])


def test_open_run_is_one_handle_on_tables_plots_stages_and_neurons(tiny_run):
    run = lr.open_run(tiny_run)
    pd.testing.assert_frame_equal(run.f1_table(), f1_table(tiny_run))
    assert len(run.primed) == len(pd.read_csv(tiny_run / "primed.csv"))
    assert isinstance(run.plot_layer_saliency(), Figure)
    layer, index = int(run.primed.layer[0]), int(run.primed["index"][0])
    case = run.neuron(layer, index)
    assert case.trajectory.stage.tolist() == ["base", "pruned", "round1", "round2"]
    expected = run.neurons_at(0, "concept", "round2")
    expected = expected[(expected.layer == layer) & (expected["index"] == index)]
    assert case.trajectory.position.iloc[-1] == expected.position.iloc[0]
    page = case._repr_html_()
    assert f"Neuron {layer}.{index}" in page and "<table>" in page and "CircuitsVis.render" in page
    tagger = run.stage("round2")
    assert not tagger.training
    with pytest.raises(LensRelearnError, match="has no neuron \\(9, 0\\)"):
        run.neuron(9, 0)


def test_open_run_of_an_unfinished_folder_says_what_to_do(tmp_path):
    with pytest.raises(LensRelearnError, match="holds no finished study"):
        lr.open_run(tmp_path)


def test_a_study_without_seed_0_shows_its_first_seed_in_the_report_and_the_views(tmp_path):
    config = lr.preset(
        "quick",
        model="tiny-bert",
        n_train=30,
        n_validation=20,
        n_test=15,
        n_novel=0,
        base_epochs=1,
        rounds=1,
        seeds=(1,),
        arms=("concept",),
    )
    out = tmp_path / "run"
    lr.run_experiment(config, out, progress=False)
    page = lr.write_report(out).read_text()
    assert "(seed 1" in page and "seed 0" not in page
    run = lr.open_run(out)
    assert run.neuron(0, 0).seed == 1
    assert isinstance(run.plot_blend(), Figure)
    with pytest.raises(LensRelearnError, match="has no seed 0; its seeds are 1"):
        run.plot_similarity(seed=0)
