import numpy as np
import pytest
import torch

from lens_relearn import LensRelearnError, Sentence, load_model
from lens_relearn.activations import ActivationStats, collect_stats, top_tokens, word_activations
from lens_relearn.alignment import encode, pool_words
from lens_relearn.data import entity_class
from lens_relearn.ranking import normalised_saliency, rank_neurons

PLACES = ["Paris", "London", "Berlin", "Tokyo", "Rome", "Madrid"]
PEOPLE = ["Alice", "John", "Maria", "David"]
FILLER = ["the", "man", "visited", "and", "met", "in", "today", "saw", "friends"]


def corpus(n=60, seed=0):
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.integers(4, 9)):
            kind = rng.choice(["LOC", "PER", "O", "O"])
            pool = {"LOC": PLACES, "PER": PEOPLE, "O": FILLER}[kind]
            words.append(str(rng.choice(pool)))
            tags.append("O" if kind == "O" else f"B-{kind}")
        sentences.append(Sentence(words, tags))
    return sentences


@pytest.fixture(scope="module")
def planted():
    """tiny-gpt2 whose MLP unit (0, 7) fires only on place names."""
    model = load_model("tiny-gpt2")
    tokenizer = model.tokenizer
    place_ids = [tokenizer(" " + p, add_special_tokens=False)["input_ids"] for p in PLACES]
    assert all(len(ids) == 1 for ids in place_ids), "place names must be single tokens"
    with torch.no_grad():
        embed = model.embed.original_component.weight
        embed[:, 0] = 0.0
        embed[[ids[0] for ids in place_ids], 0] = 10.0
        model.pos_embed.original_component.weight[:, 0] = 0.0
        attention_out = model.blocks[0].attn.o.original_component
        attention_out.weight.zero_()
        attention_out.bias.zero_()
        mlp_in = getattr(model.blocks[0].mlp, "in").original_component  # Conv1D: [d_model, d_mlp]
        mlp_in.weight[:, 7] = 0.0
        mlp_in.weight[0, 7] = 3.0
        mlp_in.bias[7] = -1.0
    return model


def test_planted_location_neuron_ranks_first(planted):
    stats = collect_stats(planted, corpus(), progress=False)
    ranking = rank_neurons(stats, "LOC")
    assert ranking.top(1) == [(0, 7)]
    assert ranking.scores[0, 7] > 2 * ranking.scores.flatten().sort().values[-2]
    assert rank_neurons(stats, "LOC", method="binary").top(1) == [(0, 7)]


def test_planted_neuron_top_tokens_are_places(planted):
    sentences = corpus()
    stats = collect_stats(planted, sentences, progress=False)
    described = top_tokens(planted, sentences, stats, [(0, 7), (1, 3)], k=6, n_examples=3, progress=False)
    words = [word for word, _ in described.of((0, 7))]
    assert set(words) == set(PLACES)
    assert described.of((0, 7))[0][1] == 1.0
    assert len(described.examples[0]) == 3
    for index, peak in described.examples[0]:
        assert set(sentences[index].words) & set(PLACES) and peak > 0


def test_streamed_statistics_equal_a_direct_computation():
    model = load_model("tiny-llama")
    sentences = corpus(25, seed=3)
    stats = collect_stats(model, sentences, site="resid", aggregation="average", batch_size=4, progress=False)
    words, classes = [], []
    for sentence in sentences:  # one sentence at a time, through run_with_cache
        batch = encode(model.tokenizer, [sentence])
        names = ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(2)]
        _, cache = model.run_with_cache(batch.input_ids, names_filter=lambda n: n in names)
        words.append(torch.stack([pool_words(cache[n], batch.token_word, batch.n_words, "average") for n in names], 1))
        classes += [entity_class(t) for t in sentence.tags]
    activations = torch.cat(words).double()
    for c, name in enumerate(stats.classes):
        rows = activations[[k == name for k in classes]]
        assert stats.count[c] == len(rows)
        torch.testing.assert_close(stats.class_means()[c], rows.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stats.std(), activations.std(0, unbiased=False), rtol=1e-3, atol=1e-5)


def test_probeless_scores_equal_neurox_formula():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(500, 3 * 20))
    labels = rng.choice(["O", "PER", "LOC", "ORG", "MISC"], size=500)
    classes = ("O", "PER", "LOC", "ORG", "MISC")
    one_hot = np.stack([labels == c for c in classes]).astype(float)
    total = torch.tensor(one_hot @ activations).view(5, 3, 20)
    total_sq = torch.tensor(one_hot @ activations**2).view(5, 3, 20)
    stats = ActivationStats("mlp", "first", classes, torch.tensor(one_hot.sum(1), dtype=torch.long), total, total_sq)

    # NeuroX probeless.get_neuron_ordering_for_tag, written out in NumPy.
    concept_mean = activations[labels == "LOC"].mean(0)
    expected = sum(np.abs(concept_mean - activations[labels == c].mean(0)) for c in classes if c != "LOC")
    ranking = rank_neurons(stats, "LOC")
    np.testing.assert_allclose(ranking.scores.flatten().numpy(), expected, rtol=1e-5)
    assert [n.layer * 20 + n.index for n in ranking.neurons()] == list(np.argsort(-expected, kind="stable"))

    binary = rank_neurons(stats, "LOC", method="binary")
    rest = activations[labels != "LOC"].mean(0)
    np.testing.assert_allclose(binary.scores.flatten().numpy(), np.abs(concept_mean - rest), rtol=1e-5)


def test_normalised_saliency_buckets():
    saliency = normalised_saliency(5376)
    assert torch.all(saliency[:100] == 1.0)
    assert saliency[100] < 1.0
    assert saliency[-1] == pytest.approx(0.0045, abs=1e-4)
    assert torch.all(saliency[5300:] == saliency[-1])


def test_ranking_views():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    from lens_relearn.ranking import Ranking

    ranking = Ranking("LOC", "probeless", "mlp", scores)
    assert ranking.top(3) == [(0, 1), (1, 0), (0, 2)]
    assert ranking.top_fraction(0.5) == ranking.top(3)
    assert ranking.counts_per_layer(ranking.top(3)) == [2, 1]
    assert ranking.positions().tolist() == [[5, 0, 2], [1, 4, 3]]
    layers = ranking.layer_saliency()
    assert [row["n"] for row in layers] == [3, 3] and layers[0]["mean"] == pytest.approx(1.0)
    assert ranking.layer_saliency(exclude=[(0, 1)])[0]["n"] == 2
    with pytest.raises(LensRelearnError, match="k=7 is out of range: the site 'mlp' has 6 neurons"):
        ranking.top(7)


def test_word_activations_keep_sentence_order():
    model = load_model("tiny-bert")
    sentences = [Sentence(["a"] * n, ["O"] * n) for n in (5, 2, 4)]
    values = word_activations(model, sentences, [(1, 0)])
    assert [len(v) for v in values] == [5, 2, 4]


def test_bad_input():
    model = load_model("tiny-bert")
    with pytest.raises(LensRelearnError, match="corpus is empty"):
        collect_stats(model, [], progress=False)
    with pytest.raises(LensRelearnError, match="Unknown neuron site 'attn'"):
        collect_stats(model, corpus(3), site="attn", progress=False)
    stats = collect_stats(model, corpus(5), progress=False)
    with pytest.raises(LensRelearnError, match="'CITY' has no word in the corpus; the classes present are"):
        rank_neurons(stats, "CITY")
    with pytest.raises(LensRelearnError, match="Unknown ranking method"):
        rank_neurons(stats, "LOC", method="probe")


def test_stats_round_trip(tmp_path):
    stats = collect_stats(load_model("tiny-bert"), corpus(5), progress=False)
    stats.save(tmp_path / "stats.safetensors")
    again = ActivationStats.load(tmp_path / "stats.safetensors")
    assert again.classes == stats.classes and torch.equal(again.total, stats.total)
