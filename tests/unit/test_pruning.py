import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from transformers.pytorch_utils import Conv1D

from lens_relearn import LensRelearnError, Tagger, evaluate_tagger, load_model, train_tagger
from lens_relearn.data import CONLL_TAGS, Sentence
from lens_relearn.models.sites import neuron_site
from lens_relearn.neurons.pruning import prune, random_neurons

SENTENCES = [
    Sentence(
        ["Rain", "fell", "in", "Oslo", "and", "New", "York", "."], ["O", "O", "O", "B-LOC", "O", "B-LOC", "I-LOC", "O"]
    ),
    Sentence(
        ["Ada", "Lovelace", "joined", "Acme", "Corp", "in", "Paris"],
        ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC"],
    ),
    Sentence(["The", "French", "team", "won", "."], ["O", "B-MISC", "O", "O", "O"]),
    Sentence(["Nothing", "happened", "today"], ["O", "O", "O"]),
] * 2
PRUNED = [(0, 3), (1, 5), (1, 200)]


def tokens(model):
    texts = ["Paris is in France.", "Ada Lovelace met Charles Babbage in London."]
    return model.tokenizer(texts, return_tensors="pt", padding=True)["input_ids"]


def train(tagger, lr=1e-2):
    """Two AdamW steps over the sentences (batch size 4)."""
    return train_tagger(tagger, SENTENCES, epochs=1, lr=lr, batch_size=4, progress=False)


def record_out_projection_inputs(model):
    """What the MLP output projection of every layer really receives: [(layer, training, input)]."""
    seen = []
    for layer in range(model.cfg.n_layers):
        model.blocks[layer].mlp.out.original_component.register_forward_pre_hook(
            lambda module, args, layer=layer: seen.append((layer, module.training, args[0].detach().clone()))
        )
    return seen


def assert_pruned_units_zero(seen, neurons):
    for layer, _, values in seen:
        pruned = [index for l, index in neurons if l == layer]
        kept = [index for index in range(values.shape[-1]) if index not in pruned]
        assert torch.all(values[..., pruned] == 0)
        assert values[..., kept].abs().sum() > 0


def hooks_of(model):
    """Every hook TransformerLens lists on the model (some bridges keep permanent hooks of their own)."""
    return {id(handle) for handles in model.list_hooks().values() for handle in handles}


def input_projection(model, layer):
    """The module feeding the MLP site (c_fc, intermediate.dense, lin1, up_proj)."""
    return getattr(model.blocks[layer].mlp, "in").original_component


def unit_weights(model, layer, index):
    """The input-projection weights and bias that produce one MLP unit, as one flat tensor."""
    module = input_projection(model, layer)
    weight = module.weight[:, index] if isinstance(module, Conv1D) else module.weight[index]
    parts = [weight] + ([module.bias[index : index + 1]] if module.bias is not None else [])
    return torch.cat([part.detach().flatten() for part in parts])


# Mask mode.


def test_mask_zeroes_units_in_training_cache_and_evaluation(tiny_model):
    tagger = Tagger(tiny_model, CONLL_TAGS)
    pruned = prune(tiny_model, PRUNED)
    seen = record_out_projection_inputs(tiny_model)

    train(tagger)
    training = len(seen)
    _, cache = tiny_model.run_with_cache(tokens(tiny_model), names_filter=lambda name: name.endswith("mlp.hook_post"))
    evaluate_tagger(tagger, SENTENCES, batch_size=8)

    assert training == 2 * 2 and all(is_training for _, is_training, _ in seen[:training])
    assert len(seen) == training + 2 + 2 and not any(is_training for _, is_training, _ in seen[training:])
    assert_pruned_units_zero(seen, pruned.neurons)
    assert torch.all(cache["blocks.0.mlp.hook_post"][..., 3] == 0)
    assert torch.all(cache["blocks.1.mlp.hook_post"][..., [5, 200]] == 0)
    assert pruned.regrowth() == {"norm": 0.0, "per_layer": {0: 0.0, 1: 0.0}}


def test_mask_at_resid_reaches_the_next_block(tiny_model):
    pruned = prune(tiny_model, [(0, 7), (1, 9)], site="resid")
    _, cache = tiny_model.run_with_cache(tokens(tiny_model))
    # Residual layer 1 is block 0's output: block 1 must receive the masked stream.
    assert torch.all(cache["blocks.0.hook_resid_pre"][..., 7] == 0)
    assert torch.all(cache["blocks.0.hook_resid_post"][..., 9] == 0)
    assert torch.all(cache["blocks.1.hook_in"][..., 9] == 0)
    assert cache["blocks.1.hook_in"][..., 8].abs().sum() > 0
    assert len(pruned) == 2 and pruned.site == "resid"


def test_mean_value_writes_the_means():
    model = load_model("tiny-bert")
    ids = tokens(model)
    _, unpruned = model.run_with_cache(ids, names_filter="blocks.0.mlp.hook_post")
    means = torch.randn(2, 256, generator=torch.Generator().manual_seed(0))
    prune(model, PRUNED, value="mean", means=means)
    seen = record_out_projection_inputs(model)
    _, cache = model.run_with_cache(ids, names_filter="blocks.0.mlp.hook_post")

    (_, _, layer0), (_, _, layer1) = seen
    assert torch.all(layer0[..., 3] == means[0, 3]) and torch.all(layer1[..., 5] == means[1, 5])
    assert torch.all(layer1[..., 200] == means[1, 200])
    assert torch.all(cache["blocks.0.mlp.hook_post"][..., 3] == means[0, 3])
    others = [index for index in range(256) if index != 3]
    assert torch.equal(cache["blocks.0.mlp.hook_post"][..., others], unpruned["blocks.0.mlp.hook_post"][..., others])


def test_no_neurons_leaves_logits_bit_identical(tiny_model):
    ids = tokens(tiny_model)
    own_hooks = hooks_of(tiny_model)
    with torch.no_grad():
        before = tiny_model(ids)
        for mode in ("mask", "weights"):
            pruned = prune(tiny_model, [], mode=mode)
            assert len(pruned) == 0 and pruned.regrowth() == {"norm": 0.0, "per_layer": {}}
            assert torch.equal(tiny_model(ids), before)
    assert hooks_of(tiny_model) == own_hooks


def test_remove_restores_the_logits_and_only_its_own_hooks():
    model = load_model("tiny-gpt2")
    ids = tokens(model)
    own_hooks = hooks_of(model)
    with torch.no_grad():
        unpruned = model(ids)
        first = prune(model, PRUNED)
        second = prune(model, [(1, 6)])
        model.reset_hooks()  # permanent hooks survive a plain reset
        both = model(ids)
        assert len(hooks_of(model)) == len(own_hooks) + 3
        first.remove()
        first.remove()  # harmless
        assert len(hooks_of(model)) == len(own_hooks) + 1
        only_second = model(ids)
        second.remove()
        restored = model(ids)

    assert not torch.allclose(both, unpruned) and not torch.allclose(only_second, unpruned)
    assert not torch.allclose(both, only_second)
    assert torch.equal(restored, unpruned)
    assert hooks_of(model) == own_hooks  # gone from TransformerLens's own bookkeeping too


# Weights mode.


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-bert", "tiny-distilbert", "tiny-llama"])
def test_frozen_weights_stay_zero_through_training(spec):
    tagger = Tagger(load_model(spec), CONLL_TAGS)
    model = tagger.model
    pruned = prune(model, PRUNED, mode="weights")
    kept_before = unit_weights(model, 0, 4).clone()
    assert all(torch.all(unit_weights(model, layer, index) == 0) for layer, index in PRUNED)
    seen = record_out_projection_inputs(model)

    train(tagger)
    evaluate_tagger(tagger, SENTENCES, batch_size=8)

    assert all(torch.all(unit_weights(model, layer, index) == 0) for layer, index in PRUNED)
    assert not torch.allclose(unit_weights(model, 0, 4), kept_before, atol=1e-4)  # training did move weights
    assert pruned.regrowth() == {"norm": 0.0, "per_layer": {0: 0.0, 1: 0.0}}
    assert len(seen) == 2 * (2 + 1)
    assert_pruned_units_zero(seen, pruned.neurons)


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-bert", "tiny-distilbert", "tiny-llama"])
def test_free_weights_regrow(spec):
    tagger = Tagger(load_model(spec), CONLL_TAGS)
    pruned = prune(tagger.model, PRUNED, mode="weights", freeze=False)
    assert pruned.regrowth()["norm"] == 0.0

    train(tagger)

    regrowth = pruned.regrowth()
    assert regrowth["norm"] > 0 and set(regrowth["per_layer"]) == {0, 1}
    assert regrowth["norm"] == pytest.approx(sum(v**2 for v in regrowth["per_layer"].values()) ** 0.5)
    assert regrowth["per_layer"][0] == pytest.approx(unit_weights(tagger.model, 0, 3).norm().item(), rel=1e-5)


def test_gated_mlp_prunes_up_proj_and_keeps_the_gate():
    model = load_model("tiny-llama")
    gate = model.blocks[0].mlp.gate.original_component.weight.detach().clone()
    prune(model, [(0, 3)], mode="weights")
    assert torch.all(model.blocks[0].mlp.out.original_component.weight[:, 3] != 0)  # not the output side
    assert torch.equal(model.blocks[0].mlp.gate.original_component.weight, gate)
    _, cache = model.run_with_cache(tokens(model), names_filter="blocks.0.mlp.hook_post")
    assert torch.all(cache["blocks.0.mlp.hook_post"][..., 3] == 0)


def test_remove_lets_frozen_weights_regrow():
    tagger = Tagger(load_model("tiny-gpt2"), CONLL_TAGS)
    pruned = prune(tagger.model, PRUNED, mode="weights")
    pruned.remove()
    pruned.remove()
    assert pruned.regrowth()["norm"] == 0.0  # the zeroed weights are not restored
    train(tagger)
    assert pruned.regrowth()["norm"] > 0


@pytest.mark.parametrize("spec", ["tiny-bert", "tiny-distilbert"])
def test_resid_weights_zero_the_unit_on_post_ln_encoders(spec):
    tagger = Tagger(load_model(spec), CONLL_TAGS)
    model = tagger.model
    neurons = [(0, 7), (1, 9), (2, 11)]
    pruned = prune(model, neurons, site="resid", mode="weights")
    site = neuron_site(model, "resid")
    train(tagger)
    _, cache = model.run_with_cache(tokens(model), names_filter=list(site.hook_names))

    for (_, index), name in zip(neurons, site.hook_names, strict=True):
        assert torch.all(cache[name][..., index] == 0)
        assert cache[name][..., index + 1].abs().sum() > 0
    assert model.embed_ln.original_component.weight[7] == 0 and model.embed_ln.original_component.bias[7] == 0
    assert model.blocks[1].ln2.original_component.weight[11] == 0
    assert pruned.regrowth()["norm"] == 0.0


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama"])
def test_resid_weights_are_refused_on_pre_ln_models(spec):
    with pytest.raises(LensRelearnError, match=r"pre-LN.*mode='mask'"):
        prune(load_model(spec), [(1, 3)], site="resid", mode="weights")


# Random neurons.


def test_random_neurons_are_a_seeded_uniform_sample():
    model = load_model("tiny-bert")
    first = random_neurons(model, 20, seed=1)
    assert first == random_neurons(model, 20, seed=1)
    assert first != random_neurons(model, 20, seed=2)
    assert len(set(first)) == 20 and first == sorted(first)
    assert all(0 <= layer < 2 and 0 <= index < 256 for layer, index in first)
    resid = random_neurons(model, 50, site="resid", seed=3)
    assert {layer for layer, _ in resid} == {0, 1, 2} and all(index < 64 for _, index in resid)


@pytest.mark.parametrize(("site", "layers", "units"), [("mlp", 2, 256), ("resid", 3, 64)])
def test_random_neurons_are_uniform_over_layers_and_units(site, layers, units):
    """Chi-square goodness of fit of 400 seeded draws against the uniform distribution."""
    model = load_model("tiny-bert")
    counts = np.zeros((layers, units))
    for seed in range(400):
        for layer, index in random_neurons(model, 24, site=site, seed=seed):
            counts[layer, index] += 1
    for observed in (counts.sum(1), counts.sum(0), counts.flatten()):
        assert chisquare(observed).pvalue > 1e-3, observed


def test_random_neurons_respect_exclude_and_the_pool_size():
    model = load_model("tiny-bert")
    layer0 = [(0, index) for index in range(256)]
    drawn = random_neurons(model, 100, exclude=[*layer0, (1, 0)])
    assert all(layer == 1 for layer, _ in drawn) and (1, 0) not in drawn
    assert len(random_neurons(model, 255, exclude=[*layer0, (1, 0)])) == 255
    with pytest.raises(LensRelearnError, match="255 neurons to draw from"):
        random_neurons(model, 256, exclude=[*layer0, (1, 0)])
    with pytest.raises(LensRelearnError, match="k=-1"):
        random_neurons(model, -1)
    with pytest.raises(LensRelearnError, match="outside site"):
        random_neurons(model, 1, exclude=[(5, 0)])


# Bad input.


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"neurons": [(0, 1)], "site": "attn"}, "Unknown neuron site 'attn'"),
        ({"neurons": [(2, 1)]}, r"\(2, 1\) is outside site 'mlp': layers run 0..1 and indices 0..255"),
        ({"neurons": [(0, 256)]}, r"indices 0..255"),
        ({"neurons": [(-1, 0)]}, "outside site"),
        ({"neurons": [(0, 64)], "site": "resid"}, r"layers run 0..2 and indices 0..63"),
        ({"neurons": [(0, 1.5)]}, "not a \\(layer, index\\) pair"),
        ({"neurons": [(0, 1)], "mode": "delete"}, "Unknown pruning mode 'delete'"),
        ({"neurons": [(0, 1)], "value": "random"}, "Unknown pruning value 'random'"),
        ({"neurons": [(0, 1)], "value": "mean"}, r"needs means.*\(2, 256\)"),
        ({"neurons": [(0, 1)], "value": "mean", "mode": "weights"}, "needs mode='mask'"),
        (
            {"neurons": [(0, 1)], "value": "mean", "means": torch.zeros(3, 256)},
            r"shape \(3, 256\).*expected \(2, 256\)",
        ),
    ],
)
def test_bad_input_is_refused(arguments, message):
    model = load_model("tiny-bert")
    own_hooks = hooks_of(model)
    with pytest.raises(LensRelearnError, match=message):
        prune(model, **arguments)
    assert hooks_of(model) == own_hooks
