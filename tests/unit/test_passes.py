"""One pass a stage: the shared pass gives what the separate passes gave, number for number, and a stage streams
each set of sentences once (the concept corpus twice only when its activations are too many to keep)."""

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
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons import activations, passes
from lens_relearn.neurons.passes import shared_pass
from lens_relearn.neurons.probes import layer_vectors
from lens_relearn.study import runner
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


@pytest.mark.parametrize(("cache_bytes", "corpus_passes"), [(2**30, 1), (0, 2)], ids=["kept", "too-large-to-keep"])
def test_describing_a_stage_streams_each_split_once(tmp_path, monkeypatch, cache_bytes, corpus_passes):
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
    streamed: Counter = Counter()
    stream = activations._stream

    def counting(model, sentences, *args, **kwargs):
        streamed[len(sentences)] += 1
        return stream(model, sentences, *args, **kwargs)

    monkeypatch.setattr(activations, "_stream", counting)
    monkeypatch.setattr(passes, "_stream", counting)
    monkeypatch.setattr(runner, "ACTIVATION_CACHE_BYTES", cache_bytes)
    run_experiment(config, tmp_path / "run", progress=False)
    stages = 3  # base, pruned, round1
    # validation (the concept corpus): the shared pass (and the top tokens' own when the activations were not
    # kept); test and novel_test: one pass each.
    assert streamed == {20: corpus_passes * stages, 15: stages, 5: stages}
