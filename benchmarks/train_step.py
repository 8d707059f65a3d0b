"""Time a training step of ``Tagger`` against Hugging Face's token-classification model.

Both models start from the same weights and take the same batch (32 synthetic sentences);
their steps alternate in one run so machine noise hits both alike. A step is forward,
backward and an AdamW update, on a batch tokenised beforehand. Prints the median step time
of each and their ratio (Tagger / Hugging Face) for MiniLM and tiny-gpt2.

    python benchmarks/train_step.py [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoModelForTokenClassification

from lens_relearn import Tagger, load_model, load_ner
from lens_relearn.data import CONLL_TAGS
from lens_relearn.models.loading import TINY_SPECS, _embedded, _tiny_model


def hugging_face_twin(tagger: Tagger, attn_implementation: str) -> torch.nn.Module:
    """A token-classification model with the tagger's architecture and base weights."""
    config = tagger.model.original_model.config
    config = config.__class__.from_dict({**config.to_dict(), "num_labels": len(CONLL_TAGS), "architectures": None})
    config._attn_implementation = attn_implementation
    twin = AutoModelForTokenClassification.from_config(config)
    spec = tagger.model.model_spec
    plain, _ = _tiny_model(spec) if spec in TINY_SPECS else _embedded(spec, torch.float32)
    twin.base_model.load_state_dict(plain.base_model.state_dict())
    return twin


def hugging_face_batch(tagger: Tagger, sentences) -> dict:
    """The same sentences for the twin: labels on each word's first sub-token, -100 elsewhere."""
    batch = tagger.encode(sentences)
    labels = torch.full_like(batch.input_ids, -100)
    words = batch.token_word
    first = (words >= 0) & torch.cat(
        [torch.ones_like(words[:, :1], dtype=torch.bool), words[:, 1:] != words[:, :-1]], 1
    )
    labels[first] = torch.tensor([CONLL_TAGS.index(t) for t in batch.tags])
    return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": labels}, batch


def step_timer(model: torch.nn.Module, loss_of):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> float:
        start = time.perf_counter()
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def compare(spec: str, sentences, steps: int, attn_implementation: str) -> float:
    tagger = Tagger(load_model(spec), CONLL_TAGS).train()
    twin = hugging_face_twin(tagger, attn_implementation).train()
    hf_inputs, batch = hugging_face_batch(tagger, sentences)
    ours = step_timer(tagger, lambda: tagger.loss(batch))
    theirs = step_timer(twin, lambda: twin(**hf_inputs).loss)
    for _ in range(3):  # warm-up
        ours(), theirs()
    times = {"tagger": [], "hf": []}
    for _ in range(steps):
        times["tagger"].append(ours())
        times["hf"].append(theirs())
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["tagger"] / median["hf"]
    print(
        f"{spec:<10} HF attention={attn_implementation:<6} batch {tuple(batch.input_ids.shape)}: "
        f"Tagger {median['tagger'] * 1000:7.1f} ms, HF {median['hf'] * 1000:7.1f} ms, "
        f"ratio {ratio:.3f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    sentences = load_ner("synthetic", n_train=32, n_validation=1, n_test=1, n_novel=1).train
    for spec in ("minilm", "tiny-gpt2"):
        for attention in ("eager", "sdpa"):
            compare(spec, sentences, args.steps, attention)


if __name__ == "__main__":
    main()
