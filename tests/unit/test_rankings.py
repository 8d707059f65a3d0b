"""Concept-targeted rankings on planted neurons: one fires on LOC only, one on every entity alike."""

import pytest
import torch

from lens_relearn import LensRelearnError, Tagger, load_model, load_ner
from lens_relearn.data import Sentence
from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.activations import ActivationStats
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.ranking import METHODS, rank_neurons

CLASSES = ("O", "PER", "ORG", "LOC", "MISC")
COUNTS = torch.tensor([50, 10, 10, 10, 10])
# One layer of three neurons; each class's words all take the same value.
LOC_ONLY, EVERY_ENTITY, SILENT = 0, 1, 2
VALUES = torch.tensor(
    [
        # LOC only, every entity (stronger), silent
        [0.0, 0.0, 0.0],  # O
        [0.0, 5.0, 0.0],  # PER
        [0.0, 5.0, 0.0],  # ORG
        [1.0, 5.0, 0.0],  # LOC
        [0.0, 5.0, 0.0],  # MISC
    ],
    dtype=torch.float64,
)


def planted_stats(classes=CLASSES, counts=COUNTS, values=VALUES) -> ActivationStats:
    weight = counts.view(-1, 1, 1).double()
    per_class = values.unsqueeze(1)
    return ActivationStats(
        "mlp", "first", classes, counts, weight * per_class, weight * per_class**2, weight * per_class.abs()
    )


@pytest.mark.parametrize("method", ["entity_contrast", "importance_ratio"])
def test_targeted_methods_rank_the_loc_only_neuron_first(method):
    order = [unit for _, unit in rank_neurons(planted_stats(), "LOC", method=method).neurons()]
    assert order.index(LOC_ONLY) < order.index(EVERY_ENTITY)


@pytest.mark.parametrize("method", ["probeless", "binary"])
def test_contrasts_with_o_rank_the_every_entity_neuron_first(method):
    """Why the targeted methods exist: ``O`` among the contrasts rewards telling entities from ``O``."""
    order = [unit for _, unit in rank_neurons(planted_stats(), "LOC", method=method).neurons()]
    assert order.index(EVERY_ENTITY) < order.index(LOC_ONLY)


def test_entity_contrast_and_importance_ratio_scores_by_their_formulas():
    stats = planted_stats()
    contrast = rank_neurons(stats, "LOC", method="entity_contrast").scores[0]
    # LOC against PER, ORG, MISC (O left out): the LOC-only neuron differs by 1 from each.
    assert contrast.tolist() == [3.0, 0.0, 0.0]
    ratio = rank_neurons(stats, "LOC", method="importance_ratio").scores[0]
    # forget: mean |a| on LOC; retain: the mean of the other classes' mean |a| (O, PER, ORG, MISC).
    assert ratio[EVERY_ENTITY].item() == pytest.approx(5.0 / (15.0 / 4), rel=1e-6)
    assert ratio[LOC_ONLY].item() > 1e5 and ratio[SILENT].item() == 0.0


def test_entity_contrast_needs_another_entity_class():
    stats = planted_stats(("N/A", "LOC"), torch.tensor([5, 5]), VALUES[[0, 3]])
    assert rank_neurons(stats, "LOC", method="probeless").scores.shape == (1, 3)
    with pytest.raises(LensRelearnError, match="entity_contrast ranking needs words of another entity class"):
        rank_neurons(stats, "LOC", method="entity_contrast")


def test_attribution_needs_the_tagger():
    assert "attribution" in METHODS
    with pytest.raises(LensRelearnError, match="rank_by_attribution"):
        rank_neurons(planted_stats(), "LOC", method="attribution")


def planted_attribution(plant_loc_unit: bool) -> tuple[float, float, int]:
    """Two units of the last residual state (the head's input) are planted: A is 3 on the first
    words of places and 0 elsewhere, and the head reads it for B-LOC; B is 3 on the first word of
    every entity and the head reads it for every B- tag. Zeroing A hurts LOC only, zeroing B every
    entity type alike. Returns A's and B's scores and A's position in the ranking."""
    data = load_ner("synthetic", n_train=0, n_validation=12, n_test=0, n_novel=0)
    sentences = data.validation
    tagger = Tagger(load_model("tiny-bert"), data.labels, seed=0).eval()
    site = neuron_site(tagger.model, "resid")
    a, b, last = 3, 7, site.n_layers - 1
    with torch.no_grad():
        tagger.head.weight[:, [a, b]] = 0.0
        tagger.head.weight[data.labels.index("B-LOC"), a] = float(plant_loc_unit)
        for label in data.labels:
            if label.startswith("B-"):
                tagger.head.weight[data.labels.index(label), b] = 1.0
    batch = tagger.encode(sentences)
    token_tags = [[batch.tags[w] if w >= 0 else "O" for w in row] for row in batch.token_word.tolist()]
    loc = torch.tensor([[t == "B-LOC" for t in row] for row in token_tags])
    entity = torch.tensor([[t.startswith("B-") for t in row] for row in token_tags])

    def plant(activation, hook):
        activation = activation.clone()
        activation[..., a] = 3.0 * loc * plant_loc_unit
        activation[..., b] = 3.0 * entity
        return activation

    tagger.model.add_hook(site.hook_names[-1], plant)
    try:
        ranking = rank_by_attribution(tagger, sentences, "LOC", site="resid", batch_size=len(sentences), progress=False)
    finally:
        tagger.model.reset_hooks()
    position = [(layer, unit) for layer, unit in ranking.neurons()].index((last, a))
    return ranking.scores[last, a].item(), ranking.scores[last, b].item(), position


def test_attribution_ranks_a_neuron_the_head_reads_for_loc_above_one_it_reads_for_every_entity():
    loc_unit, entity_unit, position = planted_attribution(plant_loc_unit=True)
    assert position == 0, "the LOC-only unit should come first"
    assert entity_unit < 0.5 * loc_unit
    # Alone, the every-entity unit hurts LOC as much as the LOC unit did, and every other type
    # as much: its net score stays near 0.
    _, entity_alone, _ = planted_attribution(plant_loc_unit=False)
    assert abs(entity_alone) < 0.1 * loc_unit


def test_attribution_refuses_sentences_without_another_entity_type():
    data = load_ner("synthetic", n_train=0, n_validation=2, n_test=0, n_novel=0)
    tagger = Tagger(load_model("tiny-bert"), data.labels)
    only_loc = [Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])]
    with pytest.raises(LensRelearnError, match="needs words of 'LOC' and of another entity type"):
        rank_by_attribution(tagger, only_loc, "LOC", progress=False)
