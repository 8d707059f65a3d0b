"""Inputs are read and checked once, before anything trains: a word the tokenizer drops is fed as its unknown token
(or refused, naming where it is), and each corpus says once that some sentences are too long."""

import copy
import warnings

import pytest

from lens_relearn import LensRelearnError, load_model, load_ner, preset, run_experiment
from lens_relearn.data.alignment import check_sentences
from lens_relearn.data.conll import write_conll
from lens_relearn.data.sentences import Sentence
from lens_relearn.study import skeleton
from lens_relearn.study.folders import StageKey, StudyFolder

ZERO_WIDTH = "\u200b"


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("tiny-bert").tokenizer  # MiniLM's WordPiece tokenizer


def test_a_word_without_a_token_is_fed_as_the_unknown_token_keeping_its_label(tokenizer):
    sentence = Sentence(["Rain", ZERO_WIDTH, "in", "\x07", "Oslo"], ["O", "B-LOC", "O", "O", "B-LOC"])
    checked = check_sentences(tokenizer, [sentence, Sentence(["fine"], ["O"])])
    assert checked.sentences[0] == Sentence(["Rain", "[UNK]", "in", "[UNK]", "Oslo"], sentence.tags)
    assert checked.sentences[1].words == ["fine"] and checked.replaced == [ZERO_WIDTH, "\x07"]


def test_without_an_unknown_token_the_word_is_refused_naming_where_it_is(tokenizer):
    without = copy.deepcopy(tokenizer)
    without.unk_token = None
    sentences = [Sentence(["fine"], ["O"]), Sentence(["Rain", ZERO_WIDTH], ["O", "O"])]
    with pytest.raises(LensRelearnError, match=r"Sentence 2 of the test split of data/ner .*'\\u200b'"):
        check_sentences(without, sentences, where="the test split of data/ner")


def test_sentences_past_the_context_are_counted(tokenizer):
    long = Sentence(["word"] * 600, ["O"] * 600)
    assert check_sentences(tokenizer, [long, Sentence(["short"], ["O"])], max_length=512).truncated == 1


def test_a_study_handles_a_dropped_word_before_training_and_warns_of_a_long_sentence_once(tmp_path, monkeypatch):
    """On a CoNLL folder whose test split holds a zero-width space, and a concept corpus with one sentence past
    the context: both are said before the base fine-tune starts, each once, and the study runs to the end."""
    data = load_ner("synthetic", n_train=40, n_validation=20, n_test=15, n_novel=0)
    last = data.test[-1]
    test = [
        *data.test[:-1],
        Sentence([last.words[0], ZERO_WIDTH, *last.words[1:]], [last.tags[0], "O", *last.tags[1:]]),
    ]
    folder = tmp_path / "ner"
    folder.mkdir()
    for name, split in (("train.txt", data.train), ("dev.txt", data.validation), ("test.txt", test)):
        write_conll(split, folder / name)
    corpus = [*data.validation, Sentence(["the"] * 700, ["O"] * 700)]
    write_conll(corpus, tmp_path / "corpus.conll")
    caught: list[warnings.WarningMessage] = []
    said_before_training = []
    train = skeleton.train_tagger

    def training(*args, **kwargs):
        said_before_training.append(len(caught))
        return train(*args, **kwargs)

    monkeypatch.setattr(skeleton, "train_tagger", training)
    config = preset(
        "quick",
        model="tiny-bert",
        data=str(folder),
        concept_corpus=str(tmp_path / "corpus.conll"),
        base_epochs=1,
        rounds=1,
        arms=("concept",),
        analyses=("collateral",),
    )
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        caught = recorded
        run_experiment(config, tmp_path / "run", progress=False)
    said = [str(warning.message) for warning in caught]
    dropped = [i for i, message in enumerate(said) if "have no token of their own" in message]
    long = [i for i, message in enumerate(said) if "longer than" in message]
    assert len(dropped) == 1 and "the test split of" in said[dropped[0]] and "'[UNK]'" in said[dropped[0]]
    assert len(long) == 1 and "1 of 21 sentences of the concept corpus" in said[long[0]]
    assert said_before_training and max(*dropped, *long) < said_before_training[0]  # said before the fine-tune
    record = StudyFolder(tmp_path / "run").stage_record(StageKey(0, "concept", "round1"))
    assert record["scores"]["test"]["f1"] >= 0
