"""Neuron views, plots and the report on a tiny study: escaping, no network, labelled figures."""

import re
import socket
import urllib.request

import pytest
from matplotlib.figure import Figure

from lens_relearn import (
    LensRelearnError,
    f1_table,
    neuron_view,
    neuron_views,
    plot_f1,
    plot_layer_saliency,
    plot_redistribution,
    plot_saliency_heatmap,
    plot_similarity,
)
from lens_relearn.cli import main
from lens_relearn.data import Sentence
from lens_relearn.experiment import preset, run_experiment
from lens_relearn.viz import _examples, circuitsvis_script, html_page

PAYLOAD = "<script>alert(1)</script>"
PLOTS = [plot_f1, plot_layer_saliency, plot_saliency_heatmap, plot_similarity, plot_redistribution]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny-bert study with every arm and two rounds."""
    out = tmp_path_factory.mktemp("viz") / "run"
    config = preset("quick", model="tiny-bert", n_train=60, n_validation=30, n_test=20, n_novel=10,
                    base_epochs=1, rounds=2, arms=("concept", "random", "none"))
    run_experiment(config, out, progress=False)
    return out


def scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)


def test_f1_table_has_every_arm_metric_and_stage(tiny_run):
    table = f1_table(tiny_run)
    assert list(table.columns) == ["base", "pruned", "round1", "round2"]
    assert list(table.index) == [(arm, metric) for arm in ("concept", "random", "none")
                                 for metric in ("F1", "LOC F1")]
    assert table.to_numpy().min() >= 0 and table.to_numpy().max() <= 1


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
        "concept pruning", "random pruning (baseline)", "no pruning (control)"]
    assert len(overall.lines) >= 3 and concept.get_title() == "LOC F1"


def test_neuron_view_escapes_words_in_html_and_in_script_json():
    view = neuron_view((1, 2), [[PAYLOAD, "in", "Oslo"]], {"base": [[1.0, 0.0, 0.5]], "round1": [[0.0, 0.2, 2.0]]},
                       {"base": [PAYLOAD, "Oslo"], "round1": ["Oslo", "</script><!--"]}, notes=[PAYLOAD],
                       concept_words={"Oslo"})
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
    body = circuitsvis_script()[len("<script>"):-len("</script>")]
    assert "</" not in body and "<!--" not in body
    page = html_page("two views", "<p>a</p><p>b</p>")
    assert page.count("var CircuitsVis=") == 1 and "Content-Security-Policy" in page


def test_examples_take_old_and_new_top_tokens_in_turn():
    corpus = [Sentence(words, ["O"] * 3) for words in (
        ["Rain", "in", "Oslo"], ["Anna", "met", "Bob"], ["Oslo", "and", "Anna"], ["Snow", "in", "Bergen"])]
    chosen = _examples(corpus, ("base", ["Oslo", "Rain"]), ("round2", ["Bergen", "Oslo"]), 3)
    assert chosen == [(0, "has “Rain”, a top token at base, not round2"),
                      (3, "has “Bergen”, a top token at round2, not base"),
                      (2, "has “Oslo”, a top token at base and round2")]


def test_neuron_views_of_a_run(tiny_run):
    views = neuron_views(tiny_run, [(0, 1), (1, 2)], n_sentences=2)
    assert [v.title for v in views] == ["Neuron L0.1", "Neuron L1.2"]
    for view in views:
        assert view.body.count("CircuitsVis.render(") == 2 * 3, "2 sentences x (base, round1, round2)"
        assert all(f"<th>{stage}</th>" in view.body for stage in ("base", "round1", "round2"))


def test_report_command_writes_one_self_contained_page(tiny_run, capsys):
    assert main(["report", str(tiny_run), "--neurons", "1"]) == 0
    path = tiny_run / "report.html"
    assert f"report: {path.resolve()}" in capsys.readouterr().out
    page = path.read_text()
    assert page.count("var CircuitsVis=") == 1
    assert page.count('<img alt="') == 5
    mounts = page.count("CircuitsVis.render(")
    assert 0 < mounts <= 4 * 3 and mounts % 3 == 0, "one neuron x up to 4 sentences x 3 stages"
    assert re.search(r"""(src|href)=["'](?!data:)""", page) is None
    for section in ("F1 per stage", "Figures", "Primed neurons", "Config"):
        assert f"<h2>{section}</h2>" in page


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
