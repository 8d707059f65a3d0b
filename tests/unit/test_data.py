import pytest

from lens_relearn import LensRelearnError
from lens_relearn.data.conll import read_conll, read_token_label_files, write_conll
from lens_relearn.data.sentences import CONLL_TAGS, Sentence, find_concept
from lens_relearn.data.sources import load_ner

CONLL_SAMPLE = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP B-NP I-PER

He PRP B-NP O
flew VBD B-VP O
to TO B-PP O
New NNP B-NP I-LOC
York NNP I-NP I-LOC
and CC O O
Los NNP B-NP I-LOC
Angeles NNP I-NP I-LOC
Brussels NNP I-NP B-LOC
. . O O
"""


def test_conll_with_docstart_and_iob1_reads_as_iob2(tmp_path):
    path = tmp_path / "eng.sample"
    path.write_text(CONLL_SAMPLE)
    assert read_conll(path) == [
        Sentence(["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
        Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"]),
        Sentence(
            ["He", "flew", "to", "New", "York", "and", "Los", "Angeles", "Brussels", "."],
            ["O", "O", "O", "B-LOC", "I-LOC", "O", "B-LOC", "I-LOC", "B-LOC", "O"],
        ),
    ]


def test_two_column_tab_separated_conll(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("Rain\tO\nin\tO\nOslo\tB-LOC\n\n\nSun\tO\n")
    assert read_conll(path) == [
        Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"]),
        Sentence(["Sun"], ["O"]),
    ]


def test_token_label_files(tmp_path):
    (tmp_path / "tokens").write_text("Rain in New York\nNothing here .\n")
    (tmp_path / "labels").write_text("N/A N/A LOC LOC\nN/A N/A N/A\n")
    assert read_token_label_files(tmp_path / "tokens", tmp_path / "labels") == [
        Sentence(["Rain", "in", "New", "York"], ["N/A", "N/A", "LOC", "LOC"]),
        Sentence(["Nothing", "here", "."], ["N/A", "N/A", "N/A"]),
    ]


def test_synthetic_round_trips_through_conll(tmp_path):
    data = load_ner("synthetic", n_train=300, n_validation=50, n_test=50, n_novel=20)
    for split, sentences in data.splits().items():
        write_conll(sentences, tmp_path / split)
        assert read_conll(tmp_path / split) == sentences


def test_folder_of_conll_files(tmp_path):
    data = load_ner("synthetic", n_train=30, n_validation=10, n_test=10, n_novel=5)
    for name, split in (("eng.train", data.train), ("eng.testa", data.validation), ("eng.testb", data.test)):
        write_conll(split, tmp_path / name)
    loaded = load_ner(tmp_path)
    assert (loaded.train, loaded.validation, loaded.test) == (data.train, data.validation, data.test)


def test_folder_missing_a_split_names_the_expected_files(tmp_path):
    write_conll([Sentence(["Oslo"], ["B-LOC"])], tmp_path / "train.txt")
    with pytest.raises(LensRelearnError, match=r"no validation file; expected one of eng\.testa"):
        load_ner(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("Rain O\nOslo\n", r"line 2: expected 2 or 4 columns"),
        ("Rain O\nOslo S-CITY\n", r"line 2: 'S-CITY' is not an IOB tag"),
        ("", r"is empty"),
        ("\n\n", r"is empty"),
    ],
)
def test_bad_conll_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.conll"
    path.write_text(content)
    with pytest.raises(LensRelearnError, match=message) as error:
        read_conll(path)
    assert str(path) in str(error.value)


def test_token_label_count_mismatch_names_file_and_line(tmp_path):
    (tmp_path / "tokens").write_text("a b\nc d e\n")
    (tmp_path / "labels").write_text("X Y\nX Y\n")
    with pytest.raises(LensRelearnError, match=r"labels, line 2: 2 labels for the 3 tokens"):
        read_token_label_files(tmp_path / "tokens", tmp_path / "labels")


def test_token_label_files_of_different_lengths(tmp_path):
    (tmp_path / "tokens").write_text("a b\nc d\n")
    (tmp_path / "labels").write_text("X Y\n")
    with pytest.raises(LensRelearnError, match="line-aligned"):
        read_token_label_files(tmp_path / "tokens", tmp_path / "labels")


def test_empty_token_file(tmp_path):
    (tmp_path / "tokens").write_text("")
    (tmp_path / "labels").write_text("X\n")
    with pytest.raises(LensRelearnError, match="is empty"):
        read_token_label_files(tmp_path / "tokens", tmp_path / "labels")


def test_concept_by_name_and_its_contrast_classes():
    loc = find_concept("LOC", CONLL_TAGS)
    assert loc.tags == ("B-LOC", "I-LOC")
    assert set(loc.contrast) == {"O", "PER", "ORG", "MISC"}
    assert find_concept(loc, CONLL_TAGS) == loc
    assert find_concept("LOC", ("N/A", "LOC")).contrast == ("N/A",)


def test_absent_concept_lists_the_classes_present():
    with pytest.raises(LensRelearnError, match="'CITY' is not in the data; the classes present are O, PER"):
        find_concept("CITY", CONLL_TAGS)
    with pytest.raises(LensRelearnError, match="'LOC,GPE' is not in the data: no GPE;"):
        find_concept("LOC,GPE", CONLL_TAGS)


def test_a_concept_of_several_classes_covers_all_their_tags():
    ontonotes = ("O", "B-GPE", "I-GPE", "B-LOC", "I-LOC", "B-FAC", "I-FAC")
    places = find_concept("GPE, LOC", ontonotes)
    assert places.members == ("GPE", "LOC")
    assert places.tags == ("B-GPE", "I-GPE", "B-LOC", "I-LOC")
    assert places.contrast == ("O", "FAC")
    assert places.covers("I-GPE") and places.covers("LOC") and not places.covers("B-FAC")
    sentence = Sentence(["Paris", "and", "the", "Alps", "Louvre"], ["B-GPE", "O", "O", "B-LOC", "B-FAC"])
    assert places.words([sentence]) == ["Alps", "Paris"]


def test_conll2003_offline_suggests_synthetic():
    with pytest.raises(LensRelearnError, match="load_ner\\('synthetic'\\)"):
        load_ner("conll2003")


def test_unknown_source():
    with pytest.raises(LensRelearnError, match="Unknown NER source 'conll2012'"):
        load_ner("conll2012")
