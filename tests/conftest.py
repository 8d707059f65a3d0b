"""Tests never reach for the network: the Hub and datasets are offline before anything imports them."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest
import torch

from lens_relearn import load_model

TINY_SPECS = ("tiny-gpt2", "tiny-bert", "tiny-distilbert", "tiny-llama")


@pytest.fixture(scope="session")
def minilm():
    """The real MiniLM encoder, loaded once for the session."""
    return load_model("minilm")


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2 decoder, loaded once for the session."""
    return load_model("smollm2")


@pytest.fixture(params=TINY_SPECS)
def tiny_model(request):
    """A fresh tiny random-weight model of each architecture."""
    torch.manual_seed(0)
    return load_model(request.param)
