"""Studies on data as researchers bring it: a separate concept corpus, folders, any tag set, sizes."""

import json
import subprocess
import sys
from pathlib import Path

import datasets
import torch

from lens_relearn import collect_stats, load_ner, rank_neurons
from lens_relearn.cli import main
from lens_relearn.data import Sentence, write_conll
from lens_relearn.data.sentences import entity_class
from lens_relearn.models.loading import _tiny_model
from lens_relearn.study import skeleton, stage
from lens_relearn.study.config import preset
from lens_relearn.study.folders import StageKey, StudyFolder
from lens_relearn.study.runner import load_stage, run_experiment
from lens_relearn.study.summary import to_plain
from lens_relearn.tagger import concept_scores
from lens_relearn.views.report import write_report

WNUT = {"LOC": "location", "PER": "person", "ORG": "corporation", "MISC": "creative-work"}
TINY_RUN = [
    "run",
    "--preset",
    "quick",
    "--base-epochs",
    "1",
    "--rounds",
    "1",
    "--arms",
    "concept",
    "--quiet",
    "--no-report",
]


def relabelled(sentences: list[Sentence], rename) -> list[Sentence]:
    """Sentences whose entity classes are renamed by ``rename(class, sentence_number)``."""
    return [
        Sentence(s.words, [t if t == "O" else f"{t[:2]}{rename(entity_class(t), n)}" for t in s.tags])
        for n, s in enumerate(sentences)
    ]


def write_folder(folder: Path, train: list, validation: list, test: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in (("train.txt", train), ("dev.txt", validation), ("test.txt", test)):
        write_conll(split, folder / name)
    return folder


def small_synthetic(n_train: int = 40, **sizes: int):
    return load_ner("synthetic", n_train=n_train, n_validation=20, n_test=15, n_novel=0, **sizes)


def test_a_study_ranks_neurons_on_a_token_label_corpus_in_the_papers_format(tmp_path, monkeypatch):
    corpus = load_ner("synthetic", seed=7, n_train=0, n_validation=25, n_test=0, n_novel=0).validation
    tokens, labels = tmp_path / "tokens.txt", tmp_path / "labels.txt"
    tokens.write_text("".join(" ".join(s.words) + "\n" for s in corpus))
    concept = "SEM:named_entity:location"
    labels.write_text("".join(" ".join(concept if t.endswith("LOC") else "N/A" for t in s.tags) + "\n" for s in corpus))
    seen = []  # the sentences of every statistics and top-token pass of a stage's description
    shared, top = stage.shared_pass, stage.top_tokens

    def statistics(tagger, sentences, **kw):
        if kw.get("statistics"):
            seen.append(sentences)
        return shared(tagger, sentences, **kw)

    monkeypatch.setattr(stage, "shared_pass", statistics)
    monkeypatch.setattr(
        stage, "top_tokens", lambda model, sentences, *a, **k: seen.append(sentences) or top(model, sentences, *a, **k)
    )
    config = preset(
        "quick",
        model="tiny-bert",
        n_train=40,
        n_validation=20,
        n_test=15,
        n_novel=5,
        base_epochs=1,
        rounds=1,
        arms=("concept",),
        concept_corpus=f"{tokens},{labels}",
        corpus_concept=concept,
    )
    summary = run_experiment(config, tmp_path / "run", progress=False)

    n_concept = sum(t.endswith("LOC") for s in corpus for t in s.tags)
    assert summary.concept == "LOC"
    assert to_plain(summary.concept_corpus) == {
        "source": f"{tokens},{labels}",
        "concept": concept,
        "sentences": 25,
        "words": sum(len(s) for s in corpus),
        "concept_words": n_concept,
    }
    assert len(seen) == 2 * len(config.stages())  # statistics and top tokens, every stage
    for sentences in seen:
        assert [s.words for s in sentences] == [s.words for s in corpus]
        assert {t for s in sentences for t in s.tags} == {concept, "N/A"}
    page = write_report(tmp_path / "run").read_text()
    assert f"concept corpus <code>{tokens},{labels}</code>" in page and f"labelled {concept}" in page


def test_run_on_a_folder_uses_the_training_sentences_asked_for(tmp_path, monkeypatch, capsys):
    data = small_synthetic(n_train=600)
    folder = write_folder(tmp_path / "conll", data.train, data.validation, data.test)
    trained_on = []
    real = skeleton.train_tagger
    monkeypatch.setattr(
        skeleton,
        "train_tagger",
        lambda tagger, sentences, **k: trained_on.append(sentences) or real(tagger, sentences, **k),
    )
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--model", "tiny-bert", "--data", str(folder), "--n-train", "500", "--out", str(out)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"] == {"source": str(folder), "splits": {"train": 500, "validation": 20, "test": 15}}
    assert [len(sentences) for sentences in trained_on] == [500, 500]
    chosen = {tuple(s.words) for s in trained_on[0]}
    assert chosen <= {tuple(s.words) for s in data.train} and trained_on[1] == trained_on[0]
    assert "concept corpus: validation, 20 sentences" in capsys.readouterr().out


def test_a_wnut_style_folder_runs_with_its_own_tag_names(tmp_path):
    data = small_synthetic()
    splits = [relabelled(split, lambda kind, _: WNUT[kind]) for split in (data.train, data.validation, data.test)]
    folder = write_folder(tmp_path / "wnut", *splits)
    out = tmp_path / "run"
    assert (
        main([*TINY_RUN, "--model", "tiny-bert", "--data", str(folder), "--concept", "location", "--out", str(out)])
        == 0
    )

    summary = json.loads((out / "summary.json").read_text())
    assert summary["concept"] == "location" and summary["concept_classes"] == ["location"]
    tagger = load_stage(out, "base")
    assert tagger.labels == (
        "O",
        "B-corporation",
        "I-corporation",
        "B-creative-work",
        "I-creative-work",
        "B-location",
        "I-location",
        "B-person",
        "I-person",
    )
    folder_run = StudyFolder(out)
    performance = folder_run.table("performance")
    for name in ("base", "pruned", "round1"):
        scores = folder_run.stage_record(StageKey(0, "concept", name))["scores"]["test"]
        row = performance[(performance.stage == name) & (performance.split == "test")]
        assert row.concept_f1.item() == scores["per_type"].get("location", {"f1": 0.0})["f1"]


def test_an_ontonotes_style_concept_of_two_classes_counts_both_in_ranking_and_f1(tmp_path):
    data = small_synthetic(n_train=60)
    # Places are GPE in even sentences and LOC in odd ones; people PERSON, the rest NORP.
    rename = {"PER": "PERSON", "ORG": "ORG", "MISC": "NORP"}
    onto = [
        relabelled(split, lambda kind, n: ("GPE" if n % 2 == 0 else "LOC") if kind == "LOC" else rename[kind])
        for split in (data.train, data.validation, data.test)
    ]
    folder = write_folder(tmp_path / "onto", *onto)
    out = tmp_path / "run"
    assert (
        main([*TINY_RUN, "--model", "tiny-bert", "--data", str(folder), "--concept", "GPE,LOC", "--out", str(out)]) == 0
    )

    summary = json.loads((out / "summary.json").read_text())
    assert summary["concept"] == "GPE,LOC" and summary["concept_classes"] == ["GPE", "LOC"]
    validation = onto[1]
    places = sum(entity_class(t) in ("GPE", "LOC") for s in validation for t in s.tags)
    assert 0 < sum(entity_class(t) == "GPE" for s in validation for t in s.tags) < places
    assert summary["concept_corpus"]["concept_words"] == places

    # Ranking: the base table's scores are those of GPE and LOC pooled, not of either alone.
    tagger = load_stage(out, "base")
    stats = collect_stats(tagger.model, validation, progress=False)
    table = StudyFolder(out).stage_table(StageKey(0, None, "base"))
    scores = torch.tensor(table["score"].to_numpy(), dtype=torch.float32)
    rows = [stats.classes.index("GPE"), stats.classes.index("LOC")]
    pooled = stats.total[rows].sum(0) / stats.count[rows].sum()
    others = [i for i, c in enumerate(stats.classes) if c not in ("GPE", "LOC")]
    expected = (pooled - stats.class_means()[others]).abs().sum(0).flatten().float()
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(scores, rank_neurons(stats, "LOC").scores.flatten(), rtol=1e-3)

    # F1: the concept's F1 counts the entities of both classes.
    performance = StudyFolder(out).table("performance")
    gold_places = sum(kind in ("GPE", "LOC") for s in onto[2] for kind, _, _ in s.entities())
    for name in ("base", "pruned", "round1"):
        scores = StudyFolder(out).stage_record(StageKey(0, "concept", name))["scores"]["test"]
        expected = concept_scores(scores, ["GPE", "LOC"])
        assert expected["support"] == gold_places
        row = performance[(performance.stage == name) & (performance.split == "test")]
        assert row.concept_f1.item() == expected["f1"]


def test_a_saved_dataset_dict_runs_a_study(tmp_path):
    data = small_synthetic()
    names = [
        "O",
        "B-location",
        "I-location",
        "B-person",
        "I-person",
        "B-corporation",
        "I-corporation",
        "B-creative-work",
        "I-creative-work",
    ]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )

    def split(sentences):
        renamed = relabelled(sentences, lambda kind, _: WNUT[kind])
        rows = {"tokens": [s.words for s in renamed], "ner_tags": [[names.index(t) for t in s.tags] for s in renamed]}
        return datasets.Dataset.from_dict(rows, features=features)

    path = tmp_path / "wnut-saved"
    datasets.DatasetDict(
        {"train": split(data.train), "validation": split(data.validation), "test": split(data.test)}
    ).save_to_disk(str(path))
    config = preset(
        "quick", model="tiny-bert", data=str(path), concept="location", base_epochs=1, rounds=1, arms=("concept",)
    )
    summary = run_experiment(config, tmp_path / "run", progress=False)
    assert to_plain(summary.data) == {"source": str(path), "splits": {"train": 40, "validation": 20, "test": 15}}
    assert summary.concept == "location"
    assert summary.concept_corpus.concept_words == sum(t.endswith("LOC") for s in data.validation for t in s.tags)


def test_a_quiet_run_and_the_report_command_write_nothing_to_stderr(tmp_path, capsys):
    """A local checkpoint folder is loaded with ``from_pretrained``, which shows a bar unless told not to,
    at every stage and again for the report's neuron views."""
    model, tokenizer = _tiny_model("tiny-bert")
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    sizes = ["--n-train", "30", "--n-validation", "15", "--n-test", "10", "--n-novel", "5"]
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "lens_relearn.cli",
            *[flag for flag in TINY_RUN if flag != "--no-report"],
            "--model",
            str(checkpoint),
            *sizes,
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    capsys.readouterr()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().err == "", "the report command loads the stages' models without a bar"
    assert finished.stdout.splitlines()[-1] == f"report:  {(tmp_path / 'run' / 'report.html').resolve()}"
