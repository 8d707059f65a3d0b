import itertools

import pytest

from lens_relearn import LensRelearnError
from lens_relearn.data.sentences import CONLL_TAGS, Sentence
from lens_relearn.data.synthetic import (
    _AFFIX_WORDS,
    _corpus,
    _lexicon,
    _location_pools,
    _split_templates,
    generate_synthetic,
)

SMALL = {"n_train": 300, "n_validation": 100, "n_test": 100, "n_novel": 50}


@pytest.fixture(scope="module")
def data():
    """The default corpus, generated once."""
    return generate_synthetic()


@pytest.fixture(scope="module")
def real_names():
    return {place.name for place in _lexicon().places}


def spans(sentences: list[Sentence], kind: str) -> set[str]:
    """The strings of every entity of a kind."""
    return {" ".join(s.words[start:end]) for s in sentences for k, start, end in s.entities() if k == kind}


def word_sequences(sentences: list[Sentence], longest: int = 6) -> set[str]:
    """Every run of up to `longest` consecutive words, joined by spaces."""
    return {
        " ".join(s.words[start:end])
        for s in sentences
        for start in range(len(s))
        for end in range(start + 1, min(start + longest, len(s)) + 1)
    }


def names_inside(text: str, names: set[str]) -> list[str]:
    words = text.split()
    parts = (" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))
    return [part for part in parts if part in names]


def test_resources_hold_enough_real_location_names(real_names):
    assert len(real_names) >= 1500
    assert sum(not name.isascii() for name in real_names) >= 50
    assert sum(" " in name for name in real_names) >= 100
    assert {"São Paulo", "Zürich", "Bogotá", "Buenos Aires", "Rio de Janeiro", "New York", "Danube"} <= real_names


def test_filler_lists_contain_no_real_location_name(real_names):
    lexicon = _lexicon()
    fillers = [*lexicon.first_names, *lexicon.surnames]
    fillers += [entry for kind in ("name", "stem", "suffix") for entry in lexicon.organisations[kind]]
    fillers += [entry for entries in lexicon.misc.values() for entry in entries]
    assert len(lexicon.first_names) >= 200 and len(lexicon.surnames) >= 200
    assert len(lexicon.misc["nationality"]) >= 60
    assert {filler: names_inside(filler, real_names) for filler in fillers if names_inside(filler, real_names)} == {}
    # The place-person distractors ("Jack London") are all real places.
    assert {name for name, _ in lexicon.place_person_names} <= real_names


def test_same_seed_same_corpus_other_seed_other_corpus():
    first, again, other = (generate_synthetic(seed=seed, **SMALL) for seed in (3, 3, 4))
    assert first == again
    for split in ("train", "validation", "test", "novel_test"):
        assert getattr(first, split) != getattr(other, split)
    assert _location_pools(3) == _location_pools(3) != _location_pools(4)


def test_test_split_does_not_depend_on_train_size():
    assert generate_synthetic(n_train=10, n_test=50).test == generate_synthetic(n_train=40, n_test=50).test


def test_held_out_location_names_never_appear_in_train(data):
    train, validation, test = (spans(split, "LOC") for split in (data.train, data.validation, data.test))
    assert train and validation and test
    assert train & test == set()
    assert train & validation == set()
    assert validation & test == set()


def test_held_out_pools_are_not_mentioned_anywhere_in_train(data):
    pools = _location_pools(0)
    train_words = word_sequences(data.train)
    for split in ("validation", "test"):
        held_out = {place.name for places in pools[split].values() for place in places}
        assert held_out & train_words == set(), split
    train_pool = {place.name for places in pools["train"].values() for place in places}
    assert spans(data.train, "LOC") <= train_pool


def test_novel_places_are_invented_and_unseen_in_train(data, real_names):
    novel = spans(data.novel_test, "LOC")
    assert len(novel) >= 200
    assert novel & real_names == set()
    assert novel & word_sequences(data.train) == set()
    invented_words = {word for name in novel for word in name.split()} - _AFFIX_WORDS
    assert invented_words & word_sequences(data.train, longest=1) == set()
    assert all(any(kind == "LOC" for kind, _, _ in s.entities()) for s in data.novel_test)


def test_test_templates_never_occur_in_train():
    templates = _split_templates()
    assert len(set(templates["train"])) + len(set(templates["test"])) >= 60
    assert set(templates["train"]) & set(templates["test"]) == set()
    corpus = _corpus(0, {"train": 2000, "validation": 300, "test": 500, "novel_test": 100})
    used = {split: {template for template, _ in drawn} for split, drawn in corpus.items()}
    assert used["train"] == set(templates["train"])  # every template renders
    assert used["test"] == set(templates["test"])
    assert used["test"] & used["train"] == set()
    assert used["novel_test"] & used["train"] == set()
    assert used["validation"] <= used["train"]


def test_tags_are_conll_and_valid_iob2(data):
    for split in data.splits().values():
        for sentence in split:
            assert set(sentence.tags) <= set(CONLL_TAGS)
            previous = "O"
            for tag in sentence.tags:
                if tag.startswith("I-"):
                    assert previous in (f"B-{tag[2:]}", tag), sentence
                previous = tag


def test_loc_spans_both_tags_and_distractors_occur(data, real_names):
    for split in (data.train, data.test, data.novel_test):
        tags = {tag for sentence in split for tag in sentence.tags}
        assert {"B-LOC", "I-LOC", "B-PER", "B-ORG", "B-MISC"} <= tags
    place_orgs = [org for org in spans(data.train, "ORG") if names_inside(org, real_names)]
    place_people = [per for per in spans(data.train, "PER") if names_inside(per, real_names)]
    assert len(place_orgs) >= 50 and len(place_people) >= 20
    nationalities = set(_lexicon().misc["nationality"])

    def nationality_before_place(sentence: Sentence) -> bool:
        entities = sentence.entities()
        return any(
            kind == "MISC"
            and " ".join(sentence.words[start:end]) in nationalities
            and next_kind == "LOC"
            and next_start - end <= 2
            for (kind, start, end), (next_kind, next_start, _) in itertools.pairwise(entities)
        )

    near = [sentence for sentence in data.train if nationality_before_place(sentence)]
    assert near, "no nationality adjective right before a location"


def test_sentence_shapes_vary(data):
    train = data.train
    no_entity = sum(not sentence.entities() for sentence in train) / len(train)
    assert 0.03 <= no_entity <= 0.15
    assert all(6 <= len(sentence) <= 40 for split in data.splits().values() for sentence in split)
    assert any(sentence.words[0].islower() for sentence in train)
    assert any(sentence.tags[0] == "B-LOC" for sentence in train)
    assert any(sentence.tags[-2] in ("B-LOC", "I-LOC") for sentence in train)
    assert any(sum(kind == "LOC" for kind, _, _ in sentence.entities()) >= 3 for sentence in train)
    words = {word for sentence in train for word in sentence.words}
    assert {",", ".", "(", ")", '"', "'s", "March"} <= words
    assert any(word.replace(",", "").replace(".", "").isdigit() for word in words)
    only_other = [s for s in train if s.entities() and all(kind != "LOC" for kind, _, _ in s.entities())]
    assert len(only_other) >= 100


def test_default_sizes_are_respected(data):
    assert (len(data.train), len(data.validation), len(data.test), len(data.novel_test)) == (6000, 1000, 1000, 300)
    assert data.source == "synthetic" and data.labels == CONLL_TAGS


def test_small_and_empty_sizes_work():
    small = generate_synthetic(n_train=50, n_validation=0, n_test=3, n_novel=0)
    assert (len(small.train), len(small.validation), len(small.test), len(small.novel_test)) == (50, 0, 3, 0)
    assert list(small.splits()) == ["train", "test"]


@pytest.mark.parametrize("bad", [{"n_train": -1}, {"n_test": -5}, {"n_novel": 2.5}, {"n_validation": "10"}])
def test_bad_sizes_are_user_errors(bad):
    with pytest.raises(LensRelearnError, match=next(iter(bad))):
        generate_synthetic(**bad)
