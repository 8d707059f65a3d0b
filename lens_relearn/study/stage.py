"""Describing a stage: the core's measurements of one model, one shared pass a split (docs/design.md §20).

One pass over the concept corpus gives the activation statistics, every word's activations for
the top tokens (kept in memory, or in a temporary file when they do not fit), the residual vectors
when an analysis needs them and, when the corpus is the validation split, its predictions; one over the
test split its predictions (and vectors); one over each other split its predictions. From them:
F1 on every split, the config's ranking, every neuron's top tokens (with the class composition of
its top-activating words when an analysis needs it), the neuron table and the layer table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import pandas as pd
from einops import rearrange

from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import top_tokens
from lens_relearn.neurons.passes import PassResult, shared_pass
from lens_relearn.neurons.ranking import Ranking
from lens_relearn.study.analysis import AppliedRemoval, Needs, StageOutcome, StudyContext, TrainingMonitor, word_sample
from lens_relearn.study.folders import NEURON_TABLE, StageKey
from lens_relearn.study.skeleton import rank
from lens_relearn.study.tables import layer_table, neuron_table, token_vectors
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import score_predictions


def describe_stage(
    study: StudyContext,
    key: StageKey,
    tagger: Tagger,
    removed: AppliedRemoval | None,
    *,
    needs: Needs,
    trained: bool,
    monitors: Mapping[str, TrainingMonitor],
) -> StageOutcome:
    """Measure a stage and write its neuron and layer tables (its ``stage.json`` is the runner's, written last)."""
    config, inputs, progress = study.config, study.inputs, study.progress
    on_corpus = shared_pass(
        tagger,
        inputs.corpus,
        site=config.site,
        aggregation=config.aggregation,
        statistics=True,
        vectors=needs.vectors,
        vector_words=config.probe_words,
        vector_seed=key.seed,
        predictions=inputs.corpus_is_validation,
        keep_activations=True,
        description="concept corpus",
        progress=progress,
    )
    on_test = shared_pass(
        tagger,
        inputs.data.test,
        site=config.site,
        aggregation=config.aggregation,
        vectors=needs.vectors,
        predictions=True,
        word_sentences=word_sample(config, inputs.data.test) if needs.test_words else (),
        description="test",
    )
    predicted = {"test": on_test.predictions, "validation": on_corpus.predictions}
    scores = {
        split: score_predictions(
            sentences,
            predicted.get(split) or shared_pass(tagger, sentences, predictions=True, description=split).predictions,
        )
        for split, sentences in inputs.evaluation_splits().items()
    }
    stats = on_corpus.stats
    assert stats is not None  # asked for
    ranking = rank(config, tagger, inputs, stats=stats, progress=progress)
    removed_neurons = removed.neurons if removed is not None else ()
    table = _neuron_table(study, key, tagger, on_corpus, ranking, removed_neurons, composition=needs.composition)
    study.folder.write_stage_table(key, NEURON_TABLE, table)
    study.folder.write_stage_table(key, "layers", layer_table(ranking, removed_neurons))
    return StageOutcome(key, tagger, removed, scores, stats, ranking, table, on_corpus, on_test, trained, monitors)


def _neuron_table(
    study: StudyContext,
    key: StageKey,
    tagger: Tagger,
    on_corpus: PassResult,
    ranking: Ranking,
    pruned: Sequence[Neuron],
    *,
    composition: bool,
) -> pd.DataFrame:
    """Every neuron's row: its place in the ranking, its mean, its top tokens (from the activations
    the pass kept, which are then closed) and their similarities."""
    config, inputs, stats, site = study.config, study.inputs, on_corpus.stats, study.inputs.site
    assert stats is not None and on_corpus.activations is not None  # asked for
    with contextlib.closing(on_corpus.activations) as kept:
        described = top_tokens(
            tagger.model,
            inputs.corpus,
            stats,
            [Neuron(l, i) for l in range(site.n_layers) for i in range(site.units)],
            k=config.top_k,
            n_examples=0,
            max_types=config.max_types,
            n_occurrences=config.composition_top if composition else 0,
            activations=kept,
            progress=study.progress,
        )
    table = neuron_table(
        ranking,
        described,
        token_vectors(inputs.embedder, described.tokens),
        base_vectors=None if key.arm is None else study.base_token_vectors(key.seed),
        concept_vector=inputs.concept_vector,
        pruned=pruned,
    )
    table["mean"] = rearrange(stats.mean(), "layers units -> (layers units)").tolist()
    return table
