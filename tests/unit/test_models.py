import pytest
import torch

from lens_relearn import LensRelearnError, load_model
from lens_relearn.files import replace_folder
from lens_relearn.models import known_specs, neuron_site, neuron_sites
from lens_relearn.models.loading import cache_dir


def out_projection(model, layer: int) -> torch.nn.Module:
    """The Hugging Face module that the MLP site feeds (c_proj, output.dense, lin2, down_proj)."""
    return model.blocks[layer].mlp.out.original_component


def tokens(model, texts=("Paris is in France.", "Ada Lovelace met Charles Babbage in London.")):
    return model.tokenizer(list(texts), return_tensors="pt", padding=True)["input_ids"]


def test_sites_fire_with_their_shapes(tiny_model):
    sites = neuron_sites(tiny_model)
    ids = tokens(tiny_model)
    names = sites["mlp"].hook_names + sites["resid"].hook_names
    _, cache = tiny_model.run_with_cache(ids, names_filter=lambda name: name in names)
    batch, pos = ids.shape
    assert sites["mlp"].n_layers == tiny_model.cfg.n_layers == 2
    assert sites["resid"].n_layers == tiny_model.cfg.n_layers + 1
    for name in sites["mlp"].hook_names:
        assert cache[name].shape == (batch, pos, tiny_model.cfg.d_mlp)
    for name in sites["resid"].hook_names:
        assert cache[name].shape == (batch, pos, tiny_model.cfg.d_model)


def test_mlp_site_is_the_input_of_the_output_projection(tiny_model):
    seen = {}
    handle = out_projection(tiny_model, 1).register_forward_pre_hook(
        lambda module, args: seen.setdefault("input", args[0].detach().clone())
    )
    _, cache = tiny_model.run_with_cache(tokens(tiny_model), names_filter="blocks.1.mlp.hook_post")
    handle.remove()
    torch.testing.assert_close(cache["blocks.1.mlp.hook_post"], seen["input"], rtol=0, atol=0)


def test_bridge_computes_what_the_hugging_face_model_computes(tiny_model):
    ids = tokens(tiny_model)
    with torch.no_grad():
        ours = tiny_model(ids)
        theirs = tiny_model.original_model(ids).logits
    torch.testing.assert_close(ours, theirs)


def test_permanent_zeroing_hook_acts_in_cache_training_and_evaluation(tiny_model):
    layer, unit = 0, 3

    def zero_unit(activation, hook):
        activation[..., unit] = 0.0
        return activation

    ids = tokens(tiny_model)
    with torch.no_grad():
        unpruned = tiny_model(ids)
    tiny_model.add_perma_hook(f"blocks.{layer}.mlp.hook_post", zero_unit)
    seen = []  # what the output projection really receives
    out_projection(tiny_model, layer).register_forward_pre_hook(
        lambda module, args: seen.append(args[0][..., unit].detach().clone())
    )

    logits, cache = tiny_model.run_with_cache(ids)
    assert torch.all(cache[f"blocks.{layer}.mlp.hook_post"][..., unit] == 0)
    assert not torch.allclose(logits, unpruned)

    tiny_model.train()
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-2)
    for _ in range(2):
        loss = tiny_model(ids).logsumexp(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tiny_model.eval()
    with torch.no_grad():
        tiny_model(ids)

    assert len(seen) == 4  # run_with_cache, two training steps, evaluation
    assert all(torch.all(values == 0) for values in seen)


def test_known_specs_all_load_offline():
    assert set(known_specs()) >= {"minilm", "smollm2", "tiny-gpt2", "tiny-bert", "tiny-distilbert", "tiny-llama"}


def test_unknown_spec_lists_the_known_specs():
    with pytest.raises(LensRelearnError) as error:
        load_model("minilmm")
    message = str(error.value)
    assert all(spec in message for spec in known_specs())
    assert "Did you mean 'minilm'?" in message


def test_hub_id_offline_says_how_to_work_offline():
    with pytest.raises(LensRelearnError) as error:
        load_model("distilbert-base-cased-not-in-any-cache")
    message = str(error.value)
    assert "offline" in message and "HF_HUB_OFFLINE" in message and "local-dir" in message


def test_unknown_site_is_refused(tiny_model):
    with pytest.raises(LensRelearnError, match="Unknown neuron site 'attn'"):
        neuron_site(tiny_model, "attn")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LENS_RELEARN_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_interrupted_cache_write_leaves_nothing_behind(tmp_path):
    def fail_halfway(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_folder(tmp_path / "model", fail_halfway, if_missing=True)
    assert list(tmp_path.iterdir()) == []
    replace_folder(tmp_path / "model", lambda folder: (folder / "ok.bin").write_bytes(b"y"), if_missing=True)
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["ok.bin"]
