"""The two embedded models, with their real weights, offline."""

import torch
import transformers

from lens_relearn import Tagger, evaluate_tagger, load_ner, train_tagger
from lens_relearn.data import CONLL_TAGS
from lens_relearn.models import neuron_sites
from lens_relearn.models.loading import _smollm2_cache, load_model
from lens_relearn.neurons.pruning import prune


def site_shapes(model, text="The river Thames flows through London."):
    sites = neuron_sites(model)
    ids = model.tokenizer([text], return_tensors="pt")["input_ids"]
    names = sites["mlp"].hook_names + sites["resid"].hook_names
    _, cache = model.run_with_cache(ids, names_filter=lambda name: name in names)
    return ids.shape, sites, cache


def test_minilm_sites(minilm):
    (batch, pos), sites, cache = site_shapes(minilm)
    assert (sites["mlp"].n_layers, sites["mlp"].units) == (6, 1536)
    assert (sites["resid"].n_layers, sites["resid"].units) == (7, 384)
    assert all(cache[n].shape == (batch, pos, 1536) for n in sites["mlp"].hook_names)
    assert all(cache[n].shape == (batch, pos, 384) for n in sites["resid"].hook_names)


def test_minilm_weights_are_real(minilm):
    """Mean-pooled sentence vectors: a paraphrase is closer than an unrelated sentence."""
    sentences = [
        "A man is playing a guitar.",
        "Someone is playing an instrument.",
        "The stock market fell sharply today.",
    ]
    batch = minilm.tokenizer(sentences, return_tensors="pt", padding=True)
    last = f"blocks.{minilm.cfg.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        _, cache = minilm.run_with_cache(batch["input_ids"], attention_mask=batch["attention_mask"], names_filter=last)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    vectors = torch.nn.functional.normalize((cache[last] * mask).sum(1) / mask.sum(1), dim=-1)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > unrelated + 0.3


def test_smollm2_sites(smollm2):
    (batch, pos), sites, cache = site_shapes(smollm2)
    assert (sites["mlp"].n_layers, sites["mlp"].units) == (30, 1536)
    assert (sites["resid"].n_layers, sites["resid"].units) == (31, 576)
    assert all(cache[n].shape == (batch, pos, 1536) for n in sites["mlp"].hook_names)
    assert all(cache[n].shape == (batch, pos, 576) for n in sites["resid"].hook_names)


def test_smollm2_knows_the_capital_of_france(smollm2):
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        next_token = smollm2(ids)[0, -1].argmax()
    assert smollm2.tokenizer.decode(next_token) == " Paris"


def test_smollm2_second_load_reads_the_cache_without_converting(smollm2, monkeypatch):
    assert (_smollm2_cache() / "model" / "model.safetensors").is_file()
    assert (_smollm2_cache() / "tokenizer" / "tokenizer.json").is_file()

    def no_gguf(*args, **kwargs):
        assert "gguf_file" not in kwargs, "the GGUF was converted again"
        return from_pretrained(*args, **kwargs)

    from_pretrained = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_gguf)
    again = load_model("smollm2")
    assert again.cfg.n_layers == 30


def test_minilm_masks_stay_exactly_zero_through_training_steps():
    """Masked MLP units of every layer, the last included, as the output projection receives them."""
    model = load_model("minilm")
    tagger = Tagger(model, CONLL_TAGS)
    sentences = load_ner("synthetic", n_train=12, n_validation=0, n_test=0, n_novel=0).train
    pruned = [(layer, index) for layer in range(6) for index in (layer, 700 + layer, 1535)]
    prune(model, pruned)
    seen = []
    for layer in range(6):
        model.blocks[layer].mlp.out.original_component.register_forward_pre_hook(
            lambda module, args, layer=layer: seen.append((layer, module.training, args[0].detach().clone()))
        )
    history = train_tagger(tagger, sentences, epochs=1, batch_size=4, progress=False)
    evaluate_tagger(tagger, sentences[:4])
    assert len(history.losses) == 3
    assert sum(training for _, training, _ in seen) == 3 * 6 and len(seen) == 4 * 6
    for layer, _, inputs in seen:
        units = [index for l, index in pruned if l == layer]
        assert torch.all(inputs[..., units] == 0), f"layer {layer}"
        assert inputs[..., 1:700].abs().sum() > 0
