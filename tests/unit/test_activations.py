import numpy as np
import pytest
import torch

from lens_relearn import LensRelearnError, load_model, load_ner
from lens_relearn.data import Sentence
from lens_relearn.data.alignment import encode, pool_words
from lens_relearn.data.sentences import entity_class, find_concept
from lens_relearn.models.sites import Neuron, neuron_site
from lens_relearn.neurons.activations import (
    ActivationStats,
    collect_stats,
    composition_entropy,
    top_tokens,
    word_activations,
)
from lens_relearn.neurons.pruning import prune
from lens_relearn.neurons.ranking import rank_neurons

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


def direct_statistics(model, sentences, hook_names, aggregation):
    """Every word's activations, one sentence at a time through ``run_with_cache``, and its class."""
    words, classes = [], []
    for sentence in sentences:
        batch = encode(model.tokenizer, [sentence])
        _, cache = model.run_with_cache(
            batch.input_ids, attention_mask=batch.attention_mask, names_filter=lambda name: name in hook_names
        )
        pooled = [pool_words(cache[name], batch.token_word, batch.n_words, aggregation) for name in hook_names]
        words.append(torch.stack(pooled, 1))
        classes += [entity_class(tag) for tag in sentence.tags]
    return torch.cat(words).double(), classes


def assert_streamed_statistics_equal_direct(model, sentences, site, aggregation):
    stats = collect_stats(model, sentences, site=site, aggregation=aggregation, batch_size=4, progress=False)
    activations, classes = direct_statistics(model, sentences, neuron_site(model, site).hook_names, aggregation)
    assert {name for name, n in zip(stats.classes, stats.count.tolist(), strict=True) if n} == set(classes)
    for c, name in enumerate(stats.classes):
        rows = activations[[k == name for k in classes]]
        assert stats.count[c] == len(rows)
        if len(rows):
            torch.testing.assert_close(stats.class_means()[c], rows.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stats.std(), activations.std(0, unbiased=False), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "site", "aggregation"),
    [("tiny-llama", "resid", "average"), ("tiny-bert", "mlp", "first"), ("tiny-gpt2", "mlp", "last")],
)
def test_streamed_statistics_equal_a_direct_computation(spec, site, aggregation):
    assert_streamed_statistics_equal_direct(load_model(spec), corpus(25, seed=3), site, aggregation)


@pytest.mark.slow
def test_streamed_statistics_equal_a_direct_computation_on_minilm(minilm):
    sentences = load_ner("synthetic", n_train=1, n_validation=12, n_test=1, n_novel=0).validation
    assert_streamed_statistics_equal_direct(minilm, sentences, "mlp", "first")


def test_probeless_scores_equal_neurox_formula():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(500, 3 * 20))
    labels = rng.choice(["O", "PER", "LOC", "ORG", "MISC"], size=500)
    classes = ("O", "PER", "LOC", "ORG", "MISC")
    one_hot = np.stack([labels == c for c in classes]).astype(float)
    total = torch.tensor(one_hot @ activations).view(5, 3, 20)
    total_sq = torch.tensor(one_hot @ activations**2).view(5, 3, 20)
    total_abs = torch.tensor(one_hot @ np.abs(activations)).view(5, 3, 20)
    stats = ActivationStats(
        "mlp", "first", classes, torch.tensor(one_hot.sum(1), dtype=torch.long), total, total_sq, total_abs
    )

    # NeuroX probeless.get_neuron_ordering_for_tag, written out in NumPy.
    concept_mean = activations[labels == "LOC"].mean(0)
    expected = sum(np.abs(concept_mean - activations[labels == c].mean(0)) for c in classes if c != "LOC")
    ranking = rank_neurons(stats, "LOC")
    np.testing.assert_allclose(ranking.scores.flatten().numpy(), expected, rtol=1e-5)
    assert [n.layer * 20 + n.index for n in ranking.neurons()] == list(np.argsort(-expected, kind="stable"))

    binary = rank_neurons(stats, "LOC", method="binary")
    rest = activations[labels != "LOC"].mean(0)
    np.testing.assert_allclose(binary.scores.flatten().numpy(), np.abs(concept_mean - rest), rtol=1e-5)

    # Two classes taken as one concept: their words are pooled, the others are contrasts.
    pooled = activations[(labels == "LOC") | (labels == "ORG")].mean(0)
    expected = sum(np.abs(pooled - activations[labels == c].mean(0)) for c in classes if c not in ("LOC", "ORG"))
    np.testing.assert_allclose(rank_neurons(stats, "LOC,ORG").scores.flatten().numpy(), expected, rtol=1e-5)
    assert rank_neurons(stats, find_concept("LOC,ORG", classes)).scores.equal(rank_neurons(stats, "LOC,ORG").scores)


def test_ranking_views():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    from lens_relearn.neurons.ranking import Ranking

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
    with pytest.raises(
        LensRelearnError, match=r"'CITY' has no word in the corpus \(no CITY\); the classes present are"
    ):
        rank_neurons(stats, "CITY")
    with pytest.raises(LensRelearnError, match="Unknown ranking method"):
        rank_neurons(stats, "LOC", method="probe")


def test_stats_round_trip(tmp_path):
    stats = collect_stats(load_model("tiny-bert"), corpus(5), progress=False)
    stats.save(tmp_path / "stats.safetensors")
    again = ActivationStats.load(tmp_path / "stats.safetensors")
    assert again.classes == stats.classes and torch.equal(again.total, stats.total)


def test_planted_location_neuron_composition_is_all_places(planted):
    sentences = corpus()
    stats = collect_stats(planted, sentences, progress=False)
    n_places = sum(t == "B-LOC" for s in sentences for t in s.tags)
    described = top_tokens(planted, sentences, stats, [(0, 7)], n_examples=0, n_occurrences=n_places, progress=False)
    shares = dict(zip(described.classes, described.composition[0].tolist(), strict=True))
    assert shares["LOC"] == 1.0 and set(shares) == {"O", "LOC", "PER"}
    assert float(composition_entropy(described.composition[0])) == 0.0
    wider = top_tokens(planted, sentences, stats, [(0, 7)], n_examples=0, n_occurrences=2 * n_places, progress=False)
    assert dict(zip(wider.classes, wider.composition[0].tolist(), strict=True))["LOC"] == 0.5


@pytest.mark.parametrize("batch_size", [4, 64])
def test_streamed_composition_equals_a_top_k_over_every_word(batch_size):
    """Ties go to the word the passes meet first (sentences shortest first): a pruned neuron, whose
    every word ties, counts the first words, whatever the batches."""
    model, sentences = load_model("tiny-bert"), corpus(30, seed=5)
    prune(model, [Neuron(1, 17)], site="mlp")
    stats = collect_stats(model, sentences, progress=False)
    neurons = [(0, 3), (1, 200), (1, 17)]
    described = top_tokens(
        model, sentences, stats, neurons, n_examples=0, n_occurrences=25, batch_size=batch_size, progress=False
    )
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # the order every pass streams them in
    per_sentence = word_activations(model, sentences, neurons)
    values = torch.cat([per_sentence[i] for i in order])  # words neurons
    classes = torch.tensor([stats.classes.index(entity_class(t)) for i in order for t in sentences[i].tags])
    layer, unit = torch.tensor(neurons).T
    z = ((values - stats.mean()[layer, unit].float()) / stats.std()[layer, unit].float().clamp(min=1e-8)).abs()
    assert bool((z[:, 2] == z[0, 2]).all())  # the pruned neuron: one value, every word tied
    for column in range(len(neurons)):
        chosen = z[:, column].sort(descending=True, stable=True).indices[:25]
        expected = torch.bincount(classes[chosen], minlength=len(stats.classes)).double() / 25
        torch.testing.assert_close(described.composition[column], expected, rtol=0, atol=1e-12)
    assert torch.allclose(described.composition.sum(1), torch.ones(3, dtype=torch.float64))
