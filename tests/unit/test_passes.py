"""One pass a stage: the shared pass gives what the separate passes gave, number for number, and a stage streams
each set of sentences once, whether the corpus's activations fit in memory or go to a temporary file."""

from collections import Counter

import numpy as np
import pytest
import torch

from lens_relearn import (
    Tagger,
    collect_stats,
    evaluate_tagger,
    load_model,
    load_ner,
    preset,
    prune,
    run_experiment,
    top_tokens,
)
from lens_relearn.data.sentences import CONLL_TAGS, find_concept
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons import activations
from lens_relearn.neurons.passes import shared_pass
from lens_relearn.neurons.probes import layer_vectors, probe_layers, sample_words
from lens_relearn.tagger.scores import score_predictions


@pytest.fixture(scope="module")
def sentences():
    return load_ner("synthetic", n_train=1, n_validation=40, n_test=1, n_novel=0).validation


@pytest.mark.parametrize("spec", ["tiny-bert", "tiny-gpt2"])
@pytest.mark.parametrize("site", ["mlp", "resid"])
def test_a_shared_pass_equals_the_separate_passes(spec, site, sentences):
    tagger = Tagger(load_model(spec), load_ner("synthetic", n_train=5, n_validation=0, n_test=0, n_novel=0).labels)
    prune(tagger.model, [Neuron(0, 3), Neuron(1, 5)], site="mlp")  # pruning hooks act in the shared pass too
    done = shared_pass(tagger, sentences, site=site, statistics=True, vectors=True, predictions=True)
    alone = collect_stats(tagger.model, sentences, site=site, progress=False)
    assert done.stats.classes == alone.classes
    for name in ("count", "total", "total_sq", "total_abs"):
        assert torch.equal(getattr(done.stats, name), getattr(alone, name)), name
    vectors, tags = layer_vectors(tagger.model, sentences)
    assert done.tags == tags and all(np.array_equal(a, b) for a, b in zip(done.vectors, vectors, strict=True))
    assert done.predictions == tagger.predict(sentences)
    assert score_predictions(sentences, done.predictions) == evaluate_tagger(tagger, sentences)


def test_a_pass_keeps_the_vectors_of_the_words_a_capped_probe_trains_on(sentences):
    tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
    every = shared_pass(tagger, sentences, vectors=True)
    sampled = shared_pass(tagger, sentences, vectors=True, vector_words=50, vector_seed=3)
    kept = sample_words(len(every.tags), 50, seed=3)
    assert len(kept) == 50 < len(every.tags)
    assert sampled.tags == [every.tags[i] for i in kept]
    assert all(np.array_equal(a, b[kept]) for a, b in zip(sampled.vectors, every.vectors, strict=True))
    loc = find_concept("LOC", CONLL_TAGS)
    test = shared_pass(tagger, sentences[:10], vectors=True)
    capped = probe_layers(every.vectors, every.tags, loc, test.vectors, test.tags, loc, seed=3, max_train=50)
    on_sample = probe_layers(sampled.vectors, sampled.tags, loc, test.vectors, test.tags, loc, seed=3, max_train=50)
    assert capped.equals(on_sample)


def test_a_pass_keeps_only_what_was_asked_for(sentences):
    tagger = Tagger(
        load_model("tiny-bert"), ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
    )
    done = shared_pass(tagger, sentences, predictions=True)
    assert done.stats is None and done.vectors == [] and done.tags == [] and len(done.predictions) == len(sentences)


def test_top_tokens_from_kept_activations_equal_a_pass_of_their_own(sentences):
    tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
    done = shared_pass(tagger, sentences, statistics=True, keep_activations=True)
    every = [(layer, index) for layer in range(2) for index in range(256)]
    kept = top_tokens(
        tagger.model, sentences, done.stats, every, n_examples=2, activations=done.activations, progress=False
    )
    streamed = top_tokens(tagger.model, sentences, done.stats, every, n_examples=2, progress=False)
    assert kept.tokens == streamed.tokens and kept.examples == streamed.examples
    assert torch.equal(kept.composition, streamed.composition)


def test_activations_read_back_from_the_temporary_file_give_the_same_top_tokens(sentences):
    tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
    in_memory = shared_pass(tagger, sentences, statistics=True, keep_activations=True, batch_size=8)
    spilled = shared_pass(tagger, sentences, statistics=True, keep_activations=True, memory_bytes=0, batch_size=8)
    assert in_memory.activations.spilled == 0 and spilled.activations.spilled == len(spilled.activations.batches) > 1
    every = [(layer, index) for layer in range(2) for index in range(256)]
    kept, read_back = (
        top_tokens(tagger.model, sentences, done.stats, every, n_examples=2, activations=done.activations)
        for done in (in_memory, spilled)
    )
    assert kept.tokens == read_back.tokens and kept.examples == read_back.examples
    assert torch.equal(kept.composition, read_back.composition)
    file = spilled.activations.path
    assert in_memory.activations.path is None and file.stat().st_size == 4 * sum(
        layer.numel() for _, _, layers in spilled.activations for layer in layers
    )
    spilled.activations.close()
    assert not file.exists()


@pytest.mark.parametrize("memory_bytes", [2**30, 0], ids=["in-memory", "in-a-temporary-file"])
def test_describing_a_stage_streams_each_split_once(tmp_path, monkeypatch, memory_bytes):
    config = preset(
        "quick",
        model="tiny-bert",
        n_train=30,
        n_validation=20,
        n_test=15,
        n_novel=5,
        base_epochs=1,
        rounds=1,
        arms=("concept",),
        monitor_sentences=0,
    )
    data = load_ner("synthetic", n_train=30, n_validation=20, n_test=15, n_novel=5)  # what the study reads
    sizes = {tuple(s.words): len(split) for split in (data.validation, data.test, data.novel_test) for s in split}
    assert len(sizes) == 40  # no sentence in two splits
    encoded: Counter = Counter()  # sentences a pass (not training) encoded, by the size of the split they are in
    encode = activations.encode

    def counting(tokenizer, chunk, **kwargs):
        encoded.update(sizes[tuple(sentence.words)] for sentence in chunk)
        return encode(tokenizer, chunk, **kwargs)

    spills = []
    close = activations.ActivationStore.close

    def closing(store):
        spills.append(store.spilled)
        close(store)

    monkeypatch.setattr(activations, "encode", counting)
    monkeypatch.setattr(activations, "ACTIVATION_MEMORY_BYTES", memory_bytes)
    monkeypatch.setattr(activations.ActivationStore, "close", closing)
    run_experiment(config, tmp_path / "run", progress=False)
    stages = 3  # base, pruned, round1
    # validation (the concept corpus), test and novel_test: one pass each a stage, whatever the memory
    assert encoded == {20: 20 * stages, 15: 15 * stages, 5: 5 * stages}
    assert len(spills) == stages and all((spill > 0) == (memory_bytes == 0) for spill in spills)


def test_top_tokens_of_neurons_in_any_order_are_those_of_every_neuron(sentences):
    tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
    stats = shared_pass(tagger, sentences, statistics=True).stats
    every = [(layer, index) for layer in range(2) for index in range(256)]
    chosen = [(1, 3), (0, 200), (1, 2), (0, 7), (1, 255)]  # the layers interleaved, each layer's units unsorted
    whole, some = (
        top_tokens(tagger.model, sentences, stats, neurons, n_examples=2, progress=False) for neurons in (every, chosen)
    )
    for row, neuron in enumerate(chosen):
        at = every.index(neuron)
        assert some.tokens[row] == whole.tokens[at] and some.examples[row] == whole.examples[at], neuron
        assert torch.equal(some.composition[row], whole.composition[at]), neuron
    assert len({some.tokens[row] for row in range(len(chosen))}) > 1, "the neurons differ"
