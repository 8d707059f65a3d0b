"""What a run reads, loaded and checked once before anything trains: ``Inputs``.

The NER splits and the concept corpus are read, their concept found, the model's site measured
and every sentence tokenized once (``check_sentences``): a word the tokenizer drops is fed as its
unknown token, and over-long sentences are counted, each in one warning per corpus. A mistake in
the data stops the run here, before the base fine-tune, naming the corpus it is in.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedTokenizerBase

from lens_relearn.data.alignment import check_sentences
from lens_relearn.data.concept_corpus import read_concept_corpus
from lens_relearn.data.sentences import (
    Concept,
    NerData,
    Sentence,
    few_count,
    find_concept,
    labels_of,
    retraining_sentences,
)
from lens_relearn.data.sources import load_ner
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.loading import load_model
from lens_relearn.models.sites import NeuronSite, context_length, neuron_site
from lens_relearn.study.config import ExperimentConfig, arm_parts
from lens_relearn.study.tables import InputEmbedder, token_vector


@dataclass(frozen=True)
class Inputs:
    """Everything a run reads, checked.

    Attributes:
        data: The NER splits, as the model reads them.
        concept: The concept as the NER data labels it.
        corpus: The sentences neurons are ranked on: the validation split or a corpus of its own.
        corpus_concept: The concept as the corpus labels it.
        site: The neuron site of the config's model.
        count: How many neurons an arm removes (the config's ``prune_count`` or ``prune_fraction``).
        embedder: Word vectors from the model before fine-tuning (top-token similarity, docs/design.md §7).
        concept_vector: The mean vector of the concept's words in the corpus.
        retraining: The sentences each arm's retraining data names, by condition (``full``, ``few:8`` ...) and
            seed (a ``few:N`` draw is the seed's; the other conditions are the same for every seed).
    """

    data: NerData
    concept: Concept
    corpus: list[Sentence]
    corpus_concept: Concept
    site: NeuronSite
    count: int
    embedder: InputEmbedder
    concept_vector: Tensor
    retraining: dict[tuple[str, int], list[Sentence]]

    @property
    def corpus_is_validation(self) -> bool:
        """Whether neurons are ranked on the validation split (its predictions then come with the corpus pass)."""
        return self.corpus is self.data.validation

    def evaluation_splits(self) -> dict[str, list[Sentence]]:
        """The splits a stage is scored on: all but ``train``."""
        return {name: split for name, split in self.data.splits().items() if name != "train"}


def load_inputs(config: ExperimentConfig, device: torch.device | str = "cpu") -> Inputs:
    """Read and check what ``config`` names (the synthetic corpus and subsamples: seed 0).

    Raises:
        LensRelearnError: The data, the concept corpus, the concept, an arm's retraining data or
            the prune count cannot be had, or a word cannot be fed to the model.
    """
    data = load_ner(config.data, seed=0, tag_column=config.tag_column, **config.sizes())
    concept = find_concept(config.concept, data.labels)
    model = load_model(config.model, device=device)
    limit = context_length(model)
    checked = {
        name: _checked(model.tokenizer, split, limit, f"the {name} split of {config.data}")
        for name, split in data.splits().items()
    }
    train, validation, test, novel = (checked.get(name, []) for name in ("train", "validation", "test", "novel_test"))
    data = dataclasses.replace(data, train=train, validation=validation, test=test, novel_test=novel)
    corpus, corpus_concept = load_concept_corpus(config, model, data)
    if config.ranking == "attribution" and (unknown := set(labels_of(corpus)) - set(data.labels)):
        raise LensRelearnError(
            f"The attribution ranking scores the tagger's loss, so the concept corpus must carry the tagger's "
            f"labels; {config.concept_corpus} has {', '.join(sorted(unknown))}."
        )
    site = neuron_site(model, config.site)
    embedder = InputEmbedder(model)
    retraining: dict[tuple[str, int], list[Sentence]] = {}
    for arm in config.arms:
        condition = arm_parts(arm)[1]
        for seed in config.seeds:
            if few_count(condition) is None and seed != config.seeds[0]:
                retraining[condition, seed] = retraining[condition, config.seeds[0]]
                continue
            retraining[condition, seed] = retraining_sentences(data.train, concept, condition, seed=seed)
            if not retraining[condition, seed]:
                raise LensRelearnError(
                    f"The arm {arm!r} has no sentences to retrain on: every training sentence holds {concept.name}."
                )
    return Inputs(
        data,
        concept,
        corpus,
        corpus_concept,
        site,
        config.prune_count_for(site.n_neurons),
        embedder,
        token_vector(embedder, corpus_concept.words(corpus)),
        retraining,
    )


def load_concept_corpus(
    config: ExperimentConfig, model: TransformerBridge, data: NerData | None = None
) -> tuple[list[Sentence], Concept]:
    """The concept corpus as a study reads it, and the concept as the corpus labels it.

    Args:
        config: The study's config.
        model: The model (words its tokenizer drops are fed as its unknown token).
        data: The NER data as checked, when loaded already (its validation split is the default corpus).
            Without it, nothing is said of what was replaced or will be cut: ``load_inputs`` said it.
    """
    if config.concept_corpus == "validation" and data is not None:
        corpus = data.validation
    elif config.concept_corpus == "validation":
        validation = load_ner(config.data, seed=0, tag_column=config.tag_column, **config.sizes()).validation
        corpus = _checked(model.tokenizer, validation, context_length(model), "the validation split", warn=False)
    else:
        where = f"the concept corpus {config.concept_corpus}"
        raw = read_concept_corpus(config.concept_corpus)
        corpus = _checked(model.tokenizer, raw, context_length(model), where, warn=data is not None)
    return corpus, find_concept(config.corpus_concept or config.concept, labels_of(corpus))


def _checked(
    tokenizer: PreTrainedTokenizerBase, sentences: list[Sentence], limit: int, where: str, *, warn: bool = True
) -> list[Sentence]:
    """The sentences as the model will read them, with one warning for what was replaced or will be cut."""
    if not sentences:
        return sentences
    checked = check_sentences(tokenizer, sentences, max_length=limit, where=where)
    if not warn:
        return checked.sentences
    if checked.replaced:
        shown = ", ".join(map(repr, dict.fromkeys(checked.replaced)))
        warnings.warn(
            f"{len(checked.replaced)} word(s) of {where} have no token of their own ({shown}): they are fed as "
            f"{tokenizer.unk_token!r}, keeping their labels.",
            stacklevel=3,
        )
    if checked.truncated:
        warnings.warn(
            f"{checked.truncated} of {len(sentences)} sentences of {where} are longer than {limit} tokens; "
            "their words past the limit are dropped with their labels.",
            stacklevel=3,
        )
    return checked.sentences
