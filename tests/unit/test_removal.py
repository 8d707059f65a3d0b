"""Iterative removal on tiny-bert: each stopping reason, disjoint silent pruning, resume after SIGKILL, the views."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from lens_relearn import (
    LensRelearnError,
    RemovalConfig,
    Tagger,
    load_model,
    preset,
    run_removal,
    train_tagger,
    write_report,
)
from lens_relearn.cli import main
from lens_relearn.data import find_concept, load_ner
from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.masks import learn_mask
from lens_relearn.study import iterative, skeleton
from lens_relearn.study.folders import RemovalFolder
from lens_relearn.views import plot_removal

STUDY = preset("quick", model="tiny-bert", n_train=80, n_validation=30, n_test=20, n_novel=0, lr=2e-3, batch_size=8)
NEVER_GONE = {"gone_share": 0.0, "patience": 3}  # patience as long as the run: the concept cannot stay gone


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny tagger trained hard enough to tag some places and some other entities (F1 above 0), saved once."""
    data = load_ner(STUDY.data, seed=0, tag_column=STUDY.tag_column, **STUDY.sizes())  # the study's data
    tagger = Tagger(load_model("tiny-bert"), data.labels)
    train_tagger(tagger, data.train, epochs=10, lr=2e-3, batch_size=8, progress=False)
    return tagger.save(tmp_path_factory.mktemp("base") / "tagger")


@pytest.fixture(scope="module")
def tiny(base):
    """Removal of 26 of tiny-bert's 512 MLP neurons a step, from the saved base tagger, at most 3 iterations."""
    return RemovalConfig(
        study=STUDY.replace(base_checkpoint=str(base)), step_fraction=0.05, retrain_epochs=1, max_iterations=3
    )


@pytest.fixture(scope="module")
def capped(tiny, tmp_path_factory):
    """A run that stops at its maximum number of iterations, every retraining's silent units recorded."""
    out = tmp_path_factory.mktemp("removal") / "run"
    loudest: list = []  # per training call: the largest |activation| of each unit during the training steps
    train = skeleton.train_tagger

    def recording(tagger, sentences, **kwargs):
        site = neuron_site(tagger.model, "mlp")
        peak = torch.zeros(site.n_layers, site.units)

        def keeper(layer):
            def keep(activation, hook):
                peak[layer] = torch.maximum(peak[layer], activation.detach().abs().amax(dim=(0, 1)))

            return keep

        with tagger.model.hooks(fwd_hooks=[(name, keeper(i)) for i, name in enumerate(site.hook_names)]):
            history = train(tagger, sentences, **kwargs)
        loudest.append(peak)
        return history

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(skeleton, "train_tagger", recording)
        summary = run_removal(tiny.replace(floor_share=0.0, **NEVER_GONE), out, progress=False)
    return out, summary, loudest


def test_the_base_tagger_tags_places_and_other_entities(capped):
    _, summary, _ = capped
    assert summary.base["validation"]["concept_f1"] > 0.2 and summary.base["validation"]["other_f1"] > 0.05


def test_a_run_stops_at_its_maximum_number_of_iterations(capped):
    out, summary, _ = capped
    assert summary.stop == iterative.STOP_ITERATIONS and summary.iterations == 3
    table = RemovalFolder(out).table("removal")
    assert table.groupby("arm").iteration.max().to_dict() == {"concept": 3, "random": 3}
    assert table.pruned.tolist() == [26, 52, 78] * 2, "as many neurons a step in both arms"
    assert table[table.arm == "random"].stop.iloc[-1] == iterative.STOP_MATCHED


def test_iterations_prune_disjoint_sets_that_stay_silent_through_every_later_retraining(capped):
    out, _, loudest = capped
    folder = RemovalFolder(out)
    for arm, calls in (("concept", loudest[0:3]), ("random", loudest[3:6])):
        before: set = set()
        for iteration, peak in enumerate(calls, start=1):
            pruned = set(folder.pruned(0, arm, iteration))
            new = pruned - before
            assert before < pruned and len(new) == 26 == folder.iteration(0, arm, iteration)["new"]
            assert all(peak[layer, index] == 0.0 for layer, index in pruned), f"{arm}, iteration {iteration}"
            assert peak.sum() > 0, "the other units fire"
            before = pruned
    concept, random = (set(folder.pruned(0, arm, 3)) for arm in ("concept", "random"))
    assert concept != random


def test_the_concept_arm_prunes_the_best_ranked_survivors_of_the_current_model(capped):
    out, _, _ = capped
    folder = RemovalFolder(out)
    record = folder.iteration(0, "concept", 2)
    assert sum(record["new_per_layer"]) == 26 and sum(record["pruned_per_layer"]) == 52
    assert len(record["layer_saliency"]) == 2


def test_a_run_stops_once_the_concept_stays_gone(tiny, tmp_path):
    summary = run_removal(tiny.replace(gone_share=1.5, patience=2), tmp_path / "run", progress=False)
    assert summary.stop == iterative.STOP_GONE and summary.iterations == 2
    assert (summary.gone_at, summary.gone_share_removed) == (1, 26 / 512)
    assert summary.arms["random"].iterations == 2


def test_a_run_stops_when_the_other_types_fall_below_the_floor(tiny, tmp_path):
    summary = run_removal(tiny.replace(floor_share=1.5, **NEVER_GONE), tmp_path / "run", progress=False)
    assert summary.stop == iterative.STOP_FLOOR and summary.iterations == 1


def test_a_run_stops_before_it_would_remove_more_than_its_share(tiny, tmp_path):
    summary = run_removal(
        tiny.replace(max_fraction=0.1, floor_share=0.0, **NEVER_GONE), tmp_path / "run", progress=False
    )
    assert summary.stop == iterative.STOP_NEURONS and summary.iterations == 1  # 26 + 26 > 51


def test_a_learned_mask_chooses_each_iteration_among_the_neurons_not_yet_pruned(tiny, base, tmp_path):
    study = tiny.study.replace(mask_steps=3)
    config = tiny.replace(study=study, method="learned_mask", max_iterations=2, floor_share=0.0, **NEVER_GONE)
    summary = run_removal(config, tmp_path / "run", progress=False)
    folder = RemovalFolder(tmp_path / "run")
    first, second = (set(folder.pruned(0, "concept", iteration)) for iteration in (1, 2))
    assert len(first) == 26 and first < second and len(second) == 52
    data = load_ner(study.data, seed=0, tag_column=study.tag_column, **study.sizes())
    tagger = Tagger.load(base)
    mask = learn_mask(tagger, data.train, find_concept("LOC", data.labels), 26, steps=3, batch_size=8, seed=1)
    assert first == set(mask.neurons), "the first iteration prunes the mask learned on the base tagger"
    assert summary.method == "learned_mask" and summary.arms["random"].iterations == 2
    assert "learned a mask of 26 of the 512 mlp neurons" in write_report(tmp_path / "run").read_text()


def test_a_step_larger_than_the_limit_is_refused(tiny, tmp_path):
    with pytest.raises(LensRelearnError, match="lower the step or raise max_fraction"):
        run_removal(tiny.replace(step_fraction=0.2, max_fraction=0.1), tmp_path / "run", progress=False)
    with pytest.raises(LensRelearnError, match="Unknown removal method 'probeless'; choose one of ranking"):
        tiny.replace(method="probeless")


REMOVE = [  # the tiny study as flags; the base checkpoint is added by the test
    sys.executable,
    "-m",
    "lens_relearn.cli",
    "remove",
    "--quiet",
    "--no-report",
    "--model",
    "tiny-bert",
    "--n-train",
    "80",
    "--n-validation",
    "30",
    "--n-test",
    "20",
    "--n-novel",
    "0",
    "--lr",
    "2e-3",
    "--batch-size",
    "8",
    "--step-fraction",
    "0.05",
    "--max-iterations",
    "3",
    "--patience",
    "3",
    "--gone-share",
    "0",
    "--floor-share",
    "0",
]


def test_a_killed_run_resumes_to_the_same_table(base, tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [*REMOVE, "--base-checkpoint", str(base)]
    reference = tmp_path / "whole"
    subprocess.run([*command, "--out", str(reference)], check=True, env=environment, capture_output=True)
    out = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(out)], env=environment, stdout=subprocess.DEVNULL)
    first = RemovalFolder(out).iteration_dir(0, "concept", 1) / "iteration.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.is_file() and not (out / "summary.json").exists(), "killed after the first iteration"
    finished = subprocess.run(
        [*command, "--out", str(out)], check=True, env=environment, capture_output=True, text=True
    )
    assert "the maximum number of iterations" in finished.stdout
    pd.testing.assert_frame_equal(RemovalFolder(out).table("removal"), RemovalFolder(reference).table("removal"))


def test_another_config_in_the_same_folder_is_refused(capped, tiny):
    out, _, _ = capped
    with pytest.raises(LensRelearnError, match="holds a removal of a different config"):
        run_removal(tiny, out, progress=False)


def test_the_plot_draws_each_arms_concept_f1_against_the_share_removed(capped):
    out, summary, _ = capped
    table = RemovalFolder(out).table("removal")
    axis = plot_removal(out).axes[0]
    lines = {line.get_label(): line for line in axis.lines}
    concept = lines["concept pruning"]
    assert list(concept.get_xdata()) == pytest.approx([0.0, *table[table.arm == "concept"].pruned_share])
    expected = [summary.base["test"]["concept_f1"], *table[table.arm == "concept"].concept_f1_after]
    assert list(concept.get_ydata()) == pytest.approx(expected)
    assert "random pruning (baseline): other types' F1" in lines


def test_the_report_command_writes_a_removal_report(capped, capsys):
    out, summary, _ = capped
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "<h1>Removing LOC from tiny-bert for good?</h1>" in page
    assert f"The concept arm stopped after 3 iteration(s), {summary.pruned_share:.1%} of the neurons removed" in page
    assert page.count("<tr>") >= 1 + 6 and '<img alt="LOC F1 (solid)' in page
    assert write_report(out) == out / "report.html"
