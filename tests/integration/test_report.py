"""The HTML report and the notebooks on a real quick-preset MiniLM study (and on a tiny decoder's), checked in Chromium.

Chromium opens each page from ``file://`` with its proxy pointed at an unroutable address; a
test fails on any page error, dialog or request other than the page's own file.
"""

import dataclasses
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lens_relearn import RemovalConfig, load_model, open_run, preset, run_experiment, run_removal
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.sweep import selectivity_sweep
from lens_relearn.views.report import write_report

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
RENDERED = "[...document.querySelectorAll('.circuitsvis')].every(e => e.querySelector('.colored-tokens span'))"
READY = f"document.readyState === 'complete' && {RENDERED}"
PROBES = {
    "views": "document.querySelectorAll('.circuitsvis').length",
    "rendered": "document.querySelectorAll('.circuitsvis .colored-tokens').length",
    "images": "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length",
    "scripts": "document.scripts.length",
    "text": "document.body.innerText",
    "view_text": "[...document.querySelectorAll('.circuitsvis')].map(e => e.textContent).join(' ')",
    "sections": "[...document.querySelectorAll('h2[id]')].map(h => h.id)",
}
OUTSIDE = ("unpkg", "jsdelivr", "cdnjs", "googleapis", "//cdn.")


class _Addresses(HTMLParser):
    """Every address a page could load: src/href attributes, link elements, CSS url()."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        self.addresses += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "data")]
        if tag in ("link", "iframe", "object", "embed", "base"):
            self.addresses.append(f"<{tag}>")

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.addresses += re.findall(r"url\(([^)]*)\)|@import", data)


def outside_addresses(page: str) -> list[str]:
    """Addresses in an HTML page that point outside it (inline ``data:`` is inside)."""
    parser = _Addresses()
    parser.feed(page)
    found = [a for a in parser.addresses if not a.startswith("data:")]
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    return found + [name for name in OUTSIDE if name in text]


@pytest.fixture(scope="session")
def quick_report(quick_run) -> Path:
    return write_report(quick_run)


def test_report_renders_offline_in_chromium(quick_report, chromium, tmp_path_factory):
    screenshot = tmp_path_factory.mktemp("screenshots") / "report.png"
    page = chromium.load(quick_report, ready=READY, probes=PROBES, screenshot=screenshot)
    assert page.errors == [] and page.dialogs == []
    assert page.requests == [page.url], "the report asked for more than its own file"
    values = page.values
    assert values["views"] >= 3 * 3 and values["views"] % 3 == 0, "3 neurons x sentences x (base, round1, round2)"
    assert values["rendered"] == values["views"]
    assert values["images"] == 12
    assert values["scripts"] == values["views"] + 2, "the circuitsvis bundle and the neuron browser, one script a view"
    ran = ["collateral", "probes", "recovery", "retraining", "relocation", "redistribution", "blend"]
    ran += ["distance", "attacks", "comparison"]
    assert values["sections"] == [f"analysis-{name}" for name in ran] + ["skipped"], "regrowth needs weights mode"
    for heading in ("F1 per stage", "Figures", "Primed neurons", "Where the concept went", "Neuron browser", "Config"):
        assert heading in values["text"]
    assert (
        "NER data: synthetic (400 train, 150 validation, 150 test, 50 novel_test sentences); concept: LOC."
        in values["text"]
    )
    assert "Neurons were ranked on the concept corpus validation: 150 sentences" in values["text"]
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000


def test_report_holds_no_outside_address(quick_report):
    page = quick_report.read_text()
    assert outside_addresses(page) == []
    assert page.count("var CircuitsVis=") == 1


def test_tokens_from_the_data_show_as_text(payload_run, payloads, chromium):
    report = write_report(payload_run)
    page_text = report.read_text()
    for payload in payloads:
        assert payload not in page_text
    page = chromium.load(report, ready=READY, probes=PROBES)
    assert page.dialogs == [], "a payload from the data ran"
    assert page.errors == [] and page.requests == [page.url]
    for payload in payloads:
        assert payload in page.values["text"], "the tables and top tokens show it as text"
        assert payload in page.values["view_text"], "the circuitsvis tokens show it as text"
    assert page.values["scripts"] == page.values["views"] + 2


BROWSER = "document.getElementById('neuron-browser-view')"
PICK_LAST = (
    "(() => { const select = document.getElementById('neuron-browser-select');"
    " select.value = select.options[select.options.length - 1].value;"
    " select.dispatchEvent(new Event('change')); return select.value; })()"
)
PICKED = (
    f"{BROWSER}.querySelector('h3').textContent === 'Neuron ' + "
    "document.getElementById('neuron-browser-select').value.replace('neuron-', '').replace('-', '.')"
    f" && [...{BROWSER}.querySelectorAll('.circuitsvis')].every(e => e.querySelector('.colored-tokens span'))"
)


def test_the_neuron_browser_shows_the_neuron_a_reader_picks(quick_report, chromium):
    probes = {
        "options": "[...document.getElementById('neuron-browser-select').options].map(o => o.textContent)",
        "picked": "document.getElementById('neuron-browser-select').value",
        "title": f"{BROWSER}.querySelector('h3').textContent",
        "views": f"{BROWSER}.querySelectorAll('.circuitsvis').length",
        "rendered": f"{BROWSER}.querySelectorAll('.circuitsvis .colored-tokens').length",
        "bars": f"{BROWSER}.querySelectorAll('.composition').length",
        "headings": f"[...{BROWSER}.querySelectorAll('h4')].map(h => h.textContent)",
        "trajectory": f"[...{BROWSER}.querySelectorAll('table')].at(-1).rows.length",
    }
    page = chromium.load(quick_report, ready=READY, probes=probes, actions=[(PICK_LAST, PICKED)])
    assert page.errors == [] and page.dialogs == [] and page.requests == [page.url]
    values = page.values
    primed = pd.read_csv(quick_report.parent / "primed.csv")
    assert len(values["options"]) >= 100, "the last round's top 100 neurons at least"
    assert sum(", primed" in option for option in values["options"]) == len(primed[primed.seed == 0])
    layer, index = values["picked"].removeprefix("neuron-L").split("-")
    assert values["title"] == f"Neuron L{layer}.{index}"
    assert values["views"] > 0 and values["rendered"] == values["views"], "its circuitsvis view rendered"
    assert values["bars"] == 3, "a composition bar for base, round1 and round2"
    assert values["headings"] == ["Blend", "Trajectory"]
    assert values["trajectory"] == 1 + 4, "a header and base, pruned, round1, round2"


@pytest.fixture(scope="session")
def chosen_report(tmp_path_factory) -> Path:
    """The report of a tiny-bert study that ran only the collateral and probes analyses."""
    config = preset(
        "quick",
        model="tiny-bert",
        n_train=60,
        n_validation=30,
        n_test=20,
        n_novel=0,
        base_epochs=1,
        rounds=1,
        arms=("concept",),
        analyses=("collateral", "probes"),
    )
    out = tmp_path_factory.mktemp("chosen") / "run"
    run_experiment(config, out, progress=False)
    return write_report(out)


def test_the_report_shows_the_analyses_that_ran_and_names_the_others(chosen_report, chromium):
    page_text = chosen_report.read_text()
    sections = re.findall(r'<h2 id="([^"]+)">', page_text)
    assert sections == ["analysis-collateral", "analysis-probes", "skipped"], "no other analysis's section"
    skipped = page_text[page_text.index('<h2 id="skipped">Analyses not run</h2>') : page_text.index("<h2>Neuron")]
    not_run = [name for name in ANALYSES.names() if name not in ("collateral", "probes")]
    assert len(not_run) == 9
    for name in not_run:
        assert f"<td>{name}</td><td>{html.escape('not among the analyses asked for')}</td>" in skipped, name
    assert outside_addresses(page_text) == []
    page = chromium.load(chosen_report, ready=READY, probes=PROBES)
    assert page.errors == [] and page.dialogs == [] and page.requests == [page.url]
    assert page.values["sections"] == sections
    assert page.values["images"] == 3 + 1 + 1, "the core's three figures, collateral's and probes' one each"
    text = page.values["text"]
    for heading in ("What else the removal took", "Is the concept still readable?", "Analyses not run"):
        assert heading in text
    assert "Primed neurons" not in text and "Where the concept went" not in text
    assert all(f"{name}\tnot among the analyses asked for" in text for name in not_run)


def test_the_report_of_the_quick_preset_stays_small(quick_report):
    assert quick_report.stat().st_size < 15_000_000


def test_the_page_check_catches_a_script_that_runs(payloads, chromium, tmp_path):
    page_path = tmp_path / "unsafe.html"
    page_path.write_text(f"<!DOCTYPE html><html><body><p>{payloads[1]}</p></body></html>")
    page = chromium.load(page_path, ready="document.readyState === 'complete'", probes={})
    assert page.dialogs == ["2"]


def executed_outputs(name: str) -> list:
    """Every output of the notebook ``name`` run top to bottom; it was committed stripped and raised no error."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells), "commit notebooks with outputs stripped"
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_neuron_case_study.ipynb"])
def test_notebook_runs(name, quick_run, monkeypatch):
    monkeypatch.setenv("LENS_RELEARN_NOTEBOOK_RUN", str(quick_run))
    outputs = executed_outputs(name)
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    if name.startswith("01"):
        assert len(images) == 11, "the eleven plots show inline"
        texts = [o.data["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
        shown = next(t for t in texts if "'concept_corpus'" in t)  # pretty-printed over several lines
        assert "source='validation'" in shown and "sentences=150" in shown and "concept='LOC'" in shown
        assert any("concept_corpus='tokens.txt,labels.txt'" in t for t in texts), "the own-data config shows"
        analyses = next(t for t in texts if t.startswith("AnalysesRun("))
        assert "'collateral'" in analyses and "skipped={'regrowth': " in analyses, "which analyses ran and which not"
        (section,) = [h for h in html if "<h2>What else the removal took</h2>" in h]
        assert section.count('<img alt="') == 1 and outside_addresses(section) == [], "run.show('collateral')"
        assert any("<th>removal</th>" in h and "<th>full</th>" in h for h in html), "run.attack_table()"
    else:
        views = [h for h in html if "CircuitsVis.render(" in h]
        assert len(views) == 1 and outside_addresses(views[0]) == []
        assert "<h3>Neuron " in views[0] and "<th>position</th>" in views[0], "run.neuron shows its trajectory and view"


@pytest.fixture(scope="session")
def removal_report(tmp_path_factory) -> Path:
    """The report of a finished two-iteration removal run on tiny-bert."""
    study = preset("quick", model="tiny-bert", n_train=40, n_validation=20, n_test=15, n_novel=0, base_epochs=1)
    out = tmp_path_factory.mktemp("removal") / "run"
    config = RemovalConfig(study=study, max_iterations=2, gone_share=0.0, patience=2, floor_share=0.0)
    run_removal(config, out, progress=False)
    return write_report(out)


def test_the_report_of_a_removal_run_renders_offline_in_chromium(removal_report, chromium):
    probes = {"images": PROBES["images"], "text": PROBES["text"], "rows": "document.querySelectorAll('tr').length"}
    page = chromium.load(removal_report, ready="document.readyState === 'complete'", probes=probes)
    assert page.errors == [] and page.dialogs == [] and page.requests == [page.url]
    assert page.values["images"] == 1, "the figure of F1 against the share removed"
    assert "Removing LOC from tiny-bert for good?" in page.values["text"]
    assert "stopped after 2 iteration(s)" in page.values["text"]
    assert outside_addresses(removal_report.read_text()) == []


def test_the_removal_notebook_runs(removal_report, monkeypatch):
    monkeypatch.setenv("LENS_RELEARN_NOTEBOOK_REMOVAL", str(removal_report.parent))
    outputs = executed_outputs("03_iterative_removal.ipynb")
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 1
    tables = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) == 1 and tables[0].count("</tr>") == 1 + 4, "a header and two iterations of two arms"


DECODER_STUDY = preset(  # the decoder preset's settings on a tiny Llama: SmolLM2's code path
    "decoder", model="tiny-llama", n_train=60, n_validation=30, n_test=20, n_novel=10, base_epochs=1, rounds=2
)
THE_STUDYS_ANALYSES = ("collateral", "probes", "recovery", "relocation", "redistribution", "blend", "distance")


@dataclasses.dataclass(frozen=True)
class DecoderRun:
    """A finished study of the decoder preset's settings on tiny-llama, and whether each AdamW it stepped was fused."""

    out: Path
    fused: list[bool]  # an optimizer each, in the order they first stepped


@pytest.fixture(scope="session")
def decoder_study(tmp_path_factory) -> DecoderRun:
    out = tmp_path_factory.mktemp("decoder") / "run"
    stepped = []  # kept alive, so that no two are taken for one

    def record(optimizer, args, kwargs):
        if not any(optimizer is seen for seen in stepped):
            stepped.append(optimizer)

    hook = register_optimizer_step_pre_hook(record)
    try:
        run_experiment(DECODER_STUDY, out, progress=False)
    finally:
        hook.remove()
    return DecoderRun(out, [bool(optimizer.defaults.get("fused")) for optimizer in stepped])


def test_every_analysis_and_the_report_run_on_a_decoder_study(decoder_study, chromium):
    decoder_run = decoder_study.out
    assert decoder_study.fused == [True] * 5, "the base fine-tune and each arm's two rounds, fused as the preset says"
    run = open_run(decoder_run)
    assert set(THE_STUDYS_ANALYSES) <= set(run.summary.analyses.ran)
    assert list(run.summary.analyses.skipped) == ["regrowth"], "as on MiniLM's quick study: it needs weights mode"
    layers = load_model("tiny-llama").cfg.n_layers
    assert sorted(pd.read_csv(decoder_run / "probes.csv").layer.unique()) == list(range(layers + 1))
    report = write_report(decoder_run)
    assert outside_addresses(report.read_text()) == []
    page = chromium.load(report, ready=READY, probes=PROBES)
    assert page.errors == [] and page.dialogs == [] and page.requests == [page.url]
    assert page.values["sections"] == [f"analysis-{name}" for name in run.summary.analyses.ran] + ["skipped"]
    assert page.values["rendered"] == page.values["views"] > 0 and page.values["images"] == 12
    assert "tiny-llama" in page.values["text"] and "importance_ratio" in page.values["text"]


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_neuron_case_study.ipynb"])
def test_the_notebooks_run_on_a_decoder_study(name, decoder_study, monkeypatch):
    monkeypatch.setenv("LENS_RELEARN_NOTEBOOK_RUN", str(decoder_study.out))
    outputs = executed_outputs(name)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    views = [o for o in outputs if "CircuitsVis.render(" in o.get("data", {}).get("text/html", "")]
    assert (len(images), len(views)) == ((11, 0) if name.startswith("01") else (len(images), 1))


def test_the_selectivity_sweep_runs_on_a_decoder(decoder_study, tmp_path):
    decoder_run = decoder_study.out
    base = str(decoder_run / "seed0" / "base" / "tagger")
    config = dataclasses.replace(DECODER_STUDY, base_checkpoint=base)
    table = selectivity_sweep(
        config, tmp_path, methods=("importance_ratio",), fractions=(0.1,), random_seeds=(0,), progress=False
    )
    model = load_model("tiny-llama")
    assert table.method.tolist() == ["base", "importance_ratio", "random"]
    assert table.pruned.tolist()[1:] == [round(0.1 * model.cfg.n_layers * model.cfg.d_mlp)] * 2
    study_base = json.loads((decoder_run / "seed0" / "base" / "stage.json").read_text())["scores"]["test"]
    assert table.f1[0] == pytest.approx(study_base["f1"], abs=1e-9), "the sweep scores the study's base tagger"
