"""NER sources: files as they come (byte-order mark, CRLF, Latin-1), any IOB tag set, sizes, Hugging Face datasets."""

import datasets
import huggingface_hub
import pytest

from lens_relearn.data.conll import read_conll, read_token_label_files, write_conll
from lens_relearn.data.sentences import CONLL_TAGS, Sentence
from lens_relearn.data.sources import load_ner
from lens_relearn.errors import LensRelearnError

WNUT_TAGS = ["O", "B-location", "I-location", "B-person", "I-person"]
WNUT_TYPES = {"LOC": "location", "PER": "person"}
CONLL_TEXT = "-DOCSTART- -X- -X- O\n\nRain NN B-NP O\nin IN B-PP O\nOslo NNP B-NP I-LOC\n\nAda NNP B-NP I-PER\n"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No Hugging Face network, whatever the environment the tests run in."""
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # both read their variable once, on import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def wnut_style(sentences: list[Sentence]) -> list[Sentence]:
    """Synthetic sentences tagged as WNUT-17 tags them: LOC and PER renamed, ORG and MISC dropped."""
    return [
        Sentence(s.words, [t[:2] + WNUT_TYPES[t[2:]] if t[2:] in WNUT_TYPES else "O" for t in s.tags])
        for s in sentences
    ]


@pytest.fixture(scope="module")
def corpus():
    """A WNUT-style corpus with more sentences than the sizes the tests ask for."""
    data = load_ner("synthetic", n_train=800, n_validation=150, n_test=150, n_novel=0)
    return {"train": wnut_style(data.train), "validation": wnut_style(data.validation), "test": wnut_style(data.test)}


@pytest.fixture
def conll_folder(tmp_path, corpus):
    for name, split in (("train.txt", "train"), ("dev.txt", "validation"), ("test.txt", "test")):
        write_conll(corpus[split], tmp_path / name)
    return tmp_path


def dataset(sentences: list[Sentence]) -> datasets.Dataset:
    """A split as the Hub holds WNUT-17: ``tokens``, and ``ner_tags`` as class labels."""
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=WNUT_TAGS)),
        }
    )
    rows = {
        "tokens": [s.words for s in sentences],
        "ner_tags": [[WNUT_TAGS.index(t) for t in s.tags] for s in sentences],
    }
    return datasets.Dataset.from_dict(rows, features=features)


def in_order_within(sample: list[Sentence], sentences: list[Sentence]) -> bool:
    """Whether ``sample`` is drawn from ``sentences`` in their order (the synthetic corpus repeats a few sentences)."""
    remaining = iter(sentences)
    return all(sentence in remaining for sentence in sample)


def save(tmp_path, corpus, **names):
    """Save the corpus as a DatasetDict; ``names`` renames splits (``validation="dev"``)."""
    splits = {names.get(split, split): dataset(sentences) for split, sentences in corpus.items()}
    folder = tmp_path / "saved"
    datasets.DatasetDict(splits).save_to_disk(folder)
    return folder


# Files as they come


def test_bom_and_crlf_read_like_a_clean_file(tmp_path):
    clean, windows = tmp_path / "clean.txt", tmp_path / "windows.txt"
    clean.write_text(CONLL_TEXT, encoding="utf-8")
    windows.write_bytes(b"\xef\xbb\xbf" + CONLL_TEXT.replace("\n", "\r\n").encode("utf-8"))
    expected = [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"]), Sentence(["Ada"], ["B-PER"])]
    assert read_conll(clean) == expected
    assert read_conll(windows) == expected


def test_bom_and_crlf_token_label_files(tmp_path):
    (tmp_path / "tokens").write_bytes(b"\xef\xbb\xbfRain in Oslo\r\nAda\r\n")
    (tmp_path / "labels").write_bytes(b"\xef\xbb\xbfN/A N/A LOC\r\nPER\r\n")
    assert read_token_label_files(tmp_path / "tokens", tmp_path / "labels") == [
        Sentence(["Rain", "in", "Oslo"], ["N/A", "N/A", "LOC"]),
        Sentence(["Ada"], ["PER"]),
    ]


def test_line_numbers_count_line_ends_only(tmp_path):
    path = tmp_path / "feeds.txt"
    path.write_bytes(b"Rain O\x0c\r\nin O\r\nOslo\r\n")
    with pytest.raises(
        LensRelearnError, match=r"line 3: expected 2 or 4 columns \(token ... NER tag\), found 1: 'Oslo'$"
    ):
        read_conll(path)


def test_latin1_file_names_the_file_the_line_and_the_fix(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Rain O\nin O\nZürich B-LOC\n".encode("latin-1"))
    with pytest.raises(LensRelearnError, match=r"line 3: not UTF-8 \(byte 0xfc\)") as error:
        read_conll(path)
    assert str(path) in str(error.value)
    assert f"iconv -f latin1 -t utf-8 {path} > {path}.utf8" in str(error.value)


# Any IOB tag set


def test_wnut_style_folder_reads_with_labels_from_the_data(conll_folder, corpus):
    data = load_ner(conll_folder)
    assert (data.train, data.validation, data.test) == (corpus["train"], corpus["validation"], corpus["test"])
    assert data.labels == tuple(WNUT_TAGS)
    assert data.source == str(conll_folder)


def test_ontonotes_style_iob1_reads_as_iob2(tmp_path):
    path = tmp_path / "ontonotes.txt"
    path.write_text("In O\nNew I-GPE\nYork I-GPE\nJersey B-GPE\n")
    assert read_conll(path) == [Sentence(["In", "New", "York", "Jersey"], ["O", "B-GPE", "I-GPE", "B-GPE"])]


@pytest.mark.parametrize("tag", ["S-LOC", "LOC", "B-", "b-LOC"])
def test_a_tag_that_is_not_iob_names_file_and_line(tmp_path, tag):
    path = tmp_path / "bioes.txt"
    path.write_text(f"Rain O\nOslo {tag}\n")
    with pytest.raises(
        LensRelearnError, match=rf"line 2: '{tag}' is not an IOB tag; tags must be IOB1 or IOB2"
    ) as error:
        read_conll(path)
    assert str(path) in str(error.value)


# Sizes


def test_sizes_subsample_each_split_by_seed_in_file_order(conll_folder, corpus):
    data = load_ner(conll_folder, n_train=500, n_validation=100, n_test=100, seed=1)
    assert (len(data.train), len(data.validation), len(data.test)) == (500, 100, 100)
    for split, sentences in data.splits().items():
        assert in_order_within(sentences, corpus[split]), split
    assert data.labels == tuple(WNUT_TAGS)
    again = load_ner(conll_folder, n_train=500, n_validation=100, n_test=100, seed=1)
    assert (again.train, again.validation, again.test) == (data.train, data.validation, data.test)
    other = load_ner(conll_folder, n_train=500, n_validation=100, n_test=100, seed=2)
    assert other.train != data.train and other.validation != data.validation and other.test != data.test


def test_a_size_beyond_the_split_takes_it_whole(conll_folder, corpus):
    data = load_ner(conll_folder, n_train=10_000, n_test=150)
    assert (data.train, data.validation, data.test) == (corpus["train"], corpus["validation"], corpus["test"])


def test_a_larger_size_keeps_the_sentences_of_a_smaller_one(conll_folder):
    small, large = load_ner(conll_folder, n_train=100).train, load_ner(conll_folder, n_train=300).train
    assert in_order_within(small, large)


def test_n_novel_is_for_the_synthetic_corpus_only(conll_folder):
    with pytest.raises(LensRelearnError, match=r"n_novel=10: .* synthetic corpus only"):
        load_ner(conll_folder, n_novel=10)


@pytest.mark.parametrize("size", [-1, 2.5, True, "10"])
def test_a_size_is_a_whole_number(conll_folder, size):
    with pytest.raises(LensRelearnError, match=r"n_train=.* is not a size: give a whole number >= 0"):
        load_ner(conll_folder, n_train=size)


def test_synthetic_sizes_go_to_the_generator():
    data = load_ner("synthetic", n_train=7, n_validation=3, n_test=2, n_novel=1, seed=3)
    assert [len(s) for s in (data.train, data.validation, data.test, data.novel_test)] == [7, 3, 2, 1]


# Hugging Face datasets


def test_saved_dataset_dict_with_class_labels(tmp_path, corpus):
    folder = save(tmp_path, corpus)
    data = load_ner(folder)
    assert (data.train, data.validation, data.test) == (corpus["train"], corpus["validation"], corpus["test"])
    assert data.labels == tuple(WNUT_TAGS)
    assert data.source == str(folder)
    sample = load_ner(folder, n_train=50, n_validation=20, n_test=10, seed=4)
    assert (len(sample.train), len(sample.validation), len(sample.test)) == (50, 20, 10)
    assert in_order_within(sample.train, corpus["train"])


def test_saved_dataset_dict_with_a_dev_split(tmp_path, corpus):
    data = load_ner(save(tmp_path, corpus, validation="dev"))
    assert data.validation == corpus["validation"]


def test_string_tags_in_a_named_column_and_iob1(tmp_path):
    split = datasets.Dataset.from_dict(
        {"tokens": [["New", "York", "Ada"], []], "labels": [["I-loc", "I-loc", "I-per"], []]}
    )
    folder = tmp_path / "strings"
    datasets.DatasetDict(train=split, validation=split, test=split).save_to_disk(folder)
    data = load_ner(folder, tag_column="labels")
    assert data.train == [Sentence(["New", "York", "Ada"], ["B-loc", "I-loc", "B-per"])]
    assert data.labels == ("O", "B-loc", "I-loc", "B-per", "I-per")


def test_a_missing_split_names_the_splits_present(tmp_path, corpus):
    folder = tmp_path / "two"
    datasets.DatasetDict(train=dataset(corpus["train"]), test=dataset(corpus["test"])).save_to_disk(folder)
    with pytest.raises(LensRelearnError, match=r"no validation or valid or dev split; its splits are train, test"):
        load_ner(folder)


def test_a_missing_column_names_the_columns_present(tmp_path, corpus):
    with pytest.raises(LensRelearnError, match=r"no 'tags' column; its columns are tokens, ner_tags"):
        load_ner(save(tmp_path, corpus), tag_column="tags")


def test_a_bad_tag_in_a_dataset_names_split_and_row(tmp_path):
    split = datasets.Dataset.from_dict({"tokens": [["Rain"], ["Oslo"]], "ner_tags": [["O"], ["S-LOC"]]})
    folder = tmp_path / "bioes"
    datasets.DatasetDict(train=split, validation=split, test=split).save_to_disk(folder)
    with pytest.raises(LensRelearnError, match=r"bioes, train row 1: 'S-LOC' is not an IOB tag"):
        load_ner(folder)


def test_numbers_without_class_names_are_not_tags(tmp_path):
    split = datasets.Dataset.from_dict({"tokens": [["Oslo"]], "ner_tags": [[1]]})
    folder = tmp_path / "numbers"
    datasets.DatasetDict(train=split, validation=split, test=split).save_to_disk(folder)
    with pytest.raises(LensRelearnError, match=r"'ner_tags' column is List\(Value\('int64'\)\), not tags"):
        load_ner(folder)


def test_a_single_saved_split_asks_for_a_dataset_dict(tmp_path, corpus):
    folder = tmp_path / "train-only"
    dataset(corpus["train"]).save_to_disk(folder)
    with pytest.raises(
        LensRelearnError, match=r"holds a single split, written by Dataset.save_to_disk; .* DatasetDict"
    ):
        load_ner(folder)


def test_tag_column_is_for_hugging_face_datasets_only(conll_folder):
    with pytest.raises(LensRelearnError, match=r"tag_column='labels' names a column of a Hugging Face dataset"):
        load_ner(conll_folder, tag_column="labels")


@pytest.mark.parametrize(
    "source, call",
    [
        ("hf:wnut_17", 'datasets.load_dataset("wnut_17").save_to_disk("FOLDER")'),
        ("hf:unimelb-nlp/wikiann:en", 'datasets.load_dataset("unimelb-nlp/wikiann", "en").save_to_disk("FOLDER")'),
    ],
)
def test_a_hub_dataset_offline_says_how_to_save_it(source, call):
    with pytest.raises(LensRelearnError, match=r"could not be loaded .* needs the network") as error:
        load_ner(source)
    message = str(error.value)
    assert f"The Hugging Face dataset {source[3:].split(':')[0]!r} could not be loaded" in message
    assert call in message
    assert 'load_ner("FOLDER")' in message


def test_a_hub_dataset_is_loaded_by_id_and_config(monkeypatch, corpus):
    calls = []

    def load_dataset(*arguments):
        calls.append(arguments)
        return datasets.DatasetDict({split: dataset(sentences) for split, sentences in corpus.items()})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    data = load_ner("hf:unimelb-nlp/wikiann:en", n_test=10)
    assert calls == [("unimelb-nlp/wikiann", "en")]
    assert (data.train, len(data.test), data.labels) == (corpus["train"], 10, tuple(WNUT_TAGS))
    assert data.source == "hf:unimelb-nlp/wikiann:en"
    load_ner("hf:wnut_17")
    assert calls[-1] == ("wnut_17", None)


def test_conll2003_tries_the_next_mirror_and_reads_its_rows(monkeypatch):
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    split = datasets.Dataset.from_dict({"tokens": [["Rain", "in", "Oslo"], []], "ner_tags": [[0, 0, 6], []]}, features)
    mirrors = []

    def load_dataset(repo, revision=None):
        mirrors.append(repo)
        if len(mirrors) == 1:
            raise ConnectionError("the first mirror is down")
        return datasets.DatasetDict(train=split, validation=split, test=split)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    data = load_ner("conll2003")
    assert mirrors == ["eriktks/conll2003", "lhoestq/conll2003"]
    assert data.test == [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])]
    assert (data.labels, data.source) == (CONLL_TAGS, "conll2003")


def test_an_unknown_source_lists_every_form(tmp_path):
    with pytest.raises(LensRelearnError) as error:
        load_ner(tmp_path / "absent")
    for form in ("'synthetic'", "CoNLL files", "DatasetDict.save_to_disk", "'hf:ID'", "'hf:ID:CONFIG'", "'conll2003'"):
        assert form in str(error.value)
