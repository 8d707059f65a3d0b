"""Learned masks, planted: a tiny tagger whose last MLP layer has a unit set on the words of places only and a
unit set on the words of every entity type, each writing a direction that the head reads (set by hand: places
raise the LOC tags, every entity raises every entity's tags); a mask of one unit that makes places lose their tag
removes the first, one that makes them outside the second."""

import pytest
import torch

from lens_relearn import Tagger, load_model, load_ner
from lens_relearn.data import find_concept
from lens_relearn.data.sentences import entity_class
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron, wrapped_model
from lens_relearn.neurons.masks import learn_mask

LAYER, PLACES_ONLY, EVERY_ENTITY = 1, 17, 42


def first_tokens(tagger: Tagger, words: set[str]) -> set[int]:
    return {ids[0] for ids in tagger.model.tokenizer(sorted(words), add_special_tokens=False)["input_ids"] if ids}


def quiet_directions(tagger: Tagger, sentences) -> torch.Tensor:
    """Two orthonormal directions along which the final hidden states of the unplanted model hardly vary and
    have no mean (the planted units write along them, so that only they move the head's planted rows)."""
    batch = tagger.encode(sentences)
    with torch.no_grad():
        hidden = (
            wrapped_model(tagger.model)
            .base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            .last_hidden_state[batch.attention_mask.bool()]
        )
    centred = torch.eye(64) - torch.outer(*(torch.nn.functional.normalize(v, dim=0) for v in (hidden.mean(0),) * 2))
    values, vectors = torch.linalg.eigh(centred @ hidden.T.cov() @ centred + torch.outer(*(torch.ones(64),) * 2))
    return vectors[:, values.argsort()[1:3]].T  # the first is the mean's own direction, of zero variance


@pytest.fixture(scope="module")
def planted():
    """The planted tagger (untrained but for the planted paths) and its data."""
    data = load_ner("synthetic", n_train=120, n_validation=0, n_test=0, n_novel=0)
    tagger = Tagger(load_model("tiny-bert"), data.labels, dropout=0.0).eval()
    words = {pair for s in data.train for pair in zip(s.words, map(entity_class, s.tags), strict=True)}
    tokens = {kind: first_tokens(tagger, {word for word, its in words if its == kind}) for _, kind in words}
    # a token of the words of one kind only: a place's, or any entity's but never an outside word's
    places = torch.tensor(sorted(tokens["LOC"] - set().union(*(ids for kind, ids in tokens.items() if kind != "LOC"))))
    entities = torch.tensor(sorted(set().union(*(ids for kind, ids in tokens.items() if kind != "O")) - tokens["O"]))
    seen = {}
    wrapped_model(tagger.model).get_input_embeddings().register_forward_hook(
        lambda module, args, output: seen.update(ids=args[0])
    )

    def plant(activation, hook):
        planted = activation.clone()
        planted[..., PLACES_ONLY] = torch.isin(seen["ids"], places).to(activation.dtype)
        planted[..., EVERY_ENTITY] = torch.isin(seen["ids"], entities).to(activation.dtype)
        return planted

    tagger.model.blocks[LAYER].mlp.hook_post.add_hook(plant, is_permanent=True)
    directions = quiet_directions(tagger, data.train)
    loc, entity = (
        torch.tensor([float(label != "O" and (kind or entity_class(label) == "LOC")) for label in tagger.labels])
        for kind in (False, True)
    )
    with torch.no_grad():
        tagger.model.blocks[LAYER].mlp.out.original_component.weight[:, [PLACES_ONLY, EVERY_ENTITY]] = 8 * directions.T
        tagger.head.weight += 3 * (torch.outer(loc, directions[0]) + torch.outer(entity, directions[1]))
        tagger.head.bias[tagger.label_index["O"]] += 9  # a word without a planted unit is outside every entity
    return tagger, data


def test_a_mask_of_one_unit_removes_the_unit_of_places_only(planted):
    tagger, data = planted
    loc = find_concept("LOC", data.labels)
    mask = learn_mask(tagger, data.train, loc, 1, steps=30, lr=0.1, forget="tag", progress=False)
    assert mask.neurons == (Neuron(LAYER, PLACES_ONLY),)
    assert mask.scores[LAYER, PLACES_ONLY] > 0.9 > mask.scores[LAYER, EVERY_ENTITY]
    assert mask.forget[-1] < mask.forget[0] and mask.steps == 30


def test_the_same_seed_learns_the_same_mask(planted):
    tagger, data = planted
    loc = find_concept("LOC", data.labels)
    first, second = (learn_mask(tagger, data.train, loc, 5, steps=8, seed=3, progress=False) for _ in range(2))
    assert first.neurons == second.neurons and torch.equal(first.scores, second.scores)
    assert first.forget == second.forget and first.retain == second.retain


def test_learning_a_mask_leaves_the_tagger_as_it_found_it(planted):
    tagger, data = planted
    before = {name: value.clone() for name, value in tagger.state_dict().items()}
    tagger.train()
    learn_mask(tagger, data.train, find_concept("LOC", data.labels), 2, steps=3, progress=False)
    assert tagger.training and all(p.requires_grad for p in tagger.parameters())
    assert all(torch.equal(before[name], value) for name, value in tagger.state_dict().items())
    tagger.eval()


@pytest.mark.parametrize(("k", "lr"), [(0, 0.1), (513, 0.1), (1, 0.0)])
def test_a_budget_outside_the_site_or_a_rate_not_above_zero_is_refused(planted, k, lr):
    tagger, data = planted
    with pytest.raises(LensRelearnError, match="learned mask"):
        learn_mask(tagger, data.train, find_concept("LOC", data.labels), k, lr=lr, progress=False)


def test_pushing_the_places_to_outside_removes_the_unit_of_every_entity_instead(planted):
    """The default forget term: without the entity unit no planted word leaves ``O``, places included, so the
    cross-entropy towards ``O`` prefers it here, whatever the other types lose (docs/design.md §24: on MiniLM
    it is the more selective of the two all the same)."""
    tagger, data = planted
    loc = find_concept("LOC", data.labels)
    mask = learn_mask(tagger, data.train, loc, 1, steps=30, lr=0.1, forget="outside", progress=False)
    assert mask.neurons == (Neuron(LAYER, EVERY_ENTITY),)


def test_excluded_units_are_never_chosen(planted):
    tagger, data = planted
    loc = find_concept("LOC", data.labels)
    taken = [Neuron(LAYER, PLACES_ONLY)]
    mask = learn_mask(tagger, data.train, loc, 1, steps=30, lr=0.1, forget="tag", exclude=taken, progress=False)
    assert mask.neurons != (Neuron(LAYER, PLACES_ONLY),)
    with pytest.raises(LensRelearnError, match="1 of its 512 excluded"):
        learn_mask(tagger, data.train, loc, 512, exclude=taken, progress=False)
