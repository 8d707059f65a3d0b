import pytest
import torch
from transformers import AutoTokenizer

from lens_relearn import LensRelearnError
from lens_relearn.data.alignment import AGGREGATIONS, encode, is_byte_level, pool_words
from lens_relearn.data.sentences import Sentence
from lens_relearn.models.loading import _minilm_folder, _smollm2_tokenizer

SENTENCES = [
    Sentence(
        ["In", "1998", ",", "São", "Paulo", "hosted", "3.5", "million", "visitors", "."],
        ["O", "O", "O", "B-LOC", "I-LOC", "O", "O", "O", "O", "O"],
    ),
    Sentence(
        ["Zürich", "'s", "mayor", "met", "Jean-Pierre", "Dubois", "in", "Rio", "de", "Janeiro", "!"],
        ["B-LOC", "O", "O", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O"],
    ),
    Sentence(["Kraków", "(", "Poland", ")"], ["B-LOC", "O", "B-LOC", "O"]),
]


@pytest.fixture(scope="module", params=["minilm", "smollm2"])
def tokenizer(request):
    if request.param == "minilm":
        return AutoTokenizer.from_pretrained(_minilm_folder())
    return _smollm2_tokenizer()


def normalised(tokenizer, word):
    normalizer = tokenizer.backend_tokenizer.normalizer
    return normalizer.normalize_str(word) if normalizer else word


def test_tokenizer_families():
    assert not is_byte_level(AutoTokenizer.from_pretrained(_minilm_folder()))
    assert is_byte_level(_smollm2_tokenizer())


def test_each_word_gets_exactly_its_own_tokens(tokenizer):
    batch = encode(tokenizer, SENTENCES)
    words = [word for sentence in SENTENCES for word in sentence.words]
    assert batch.n_words == len(words)
    assert batch.tags == [tag for sentence in SENTENCES for tag in sentence.tags]
    for index, word in enumerate(words):
        ids = batch.input_ids[batch.token_word == index]
        text = tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(ids.tolist()))
        assert text.replace(" ", "") == normalised(tokenizer, word)
    special = set(tokenizer.all_special_ids)
    for token in batch.input_ids[batch.token_word == -1].tolist():  # special, or a lone space
        assert token in special or not tokenizer.decode([token]).strip()


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_pooling_picks_the_right_sub_tokens(tokenizer, aggregation):
    batch = encode(tokenizer, SENTENCES)
    batch_size, length = batch.input_ids.shape
    positions = torch.arange(batch_size * length, dtype=torch.float).reshape(batch_size, length, 1)
    pooled = pool_words(positions, batch.token_word, batch.n_words, aggregation).squeeze(-1)
    flat_words = batch.token_word.reshape(-1)
    for index in range(batch.n_words):
        where = (flat_words == index).nonzero().squeeze(-1).float()
        expected = {"first": where.min(), "last": where.max(), "average": where.mean()}[aggregation]
        assert pooled[index] == expected
    multi = [i for i in range(batch.n_words) if (flat_words == i).sum() > 1]
    assert multi, "the sentences must contain words split into several tokens"


def test_byte_level_words_start_with_a_space():
    tokenizer = _smollm2_tokenizer()
    first = encode(tokenizer, [Sentence(["Paris", "is", "far"], ["B-LOC", "O", "O"])])
    later = encode(tokenizer, [Sentence(["Far", "from", "Paris"], ["O", "O", "B-LOC"])])
    assert first.input_ids[first.token_word == 0].tolist() == later.input_ids[later.token_word == 2].tolist()


def test_long_sentences_are_cut_between_words_with_a_warning(tokenizer):
    long = Sentence(["Kraków"] * 40 + ["Oslo"], ["B-LOC"] * 40 + ["B-LOC"])
    with pytest.warns(UserWarning, match="longer than 16 tokens"):
        batch = encode(tokenizer, [long, SENTENCES[2]], max_length=16)
    kept = batch.words_kept[0]
    assert 0 < kept < 40
    assert batch.words_kept[1] == 4
    assert batch.n_words == kept + 4
    for index in range(kept):
        ids = batch.input_ids[batch.token_word == index]
        text = tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(ids.tolist()))
        assert text.strip() == normalised(tokenizer, "Kraków")


def test_bad_words_are_refused(tokenizer):
    with pytest.raises(LensRelearnError, match="white space"):
        encode(tokenizer, [Sentence(["New York"], ["B-LOC"])])
    with pytest.raises(LensRelearnError, match="empty"):
        encode(tokenizer, [])


def test_unknown_aggregation():
    with pytest.raises(LensRelearnError, match="Unknown aggregation 'max'"):
        pool_words(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), 1, "max")
