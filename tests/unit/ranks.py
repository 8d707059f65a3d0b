"""What one rank of tests/unit/test_distributed.py does under torchrun; rank 0 saves the results to OUT.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/unit/ranks.py OUT

``passes``: statistics, a shared pass (predictions, probe vectors) and every neuron's top tokens
of tiny-bert on 40 synthetic validation sentences. ``train``: one epoch of a dropout-free tiny-bert
tagger on 40 training sentences, global batch 8. Both also run in one process (``compute``), so
the test compares the two. OUT holds both, by name: one launch of torchrun serves both tests.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from lens_relearn import Tagger, collect_stats, load_model, load_ner, top_tokens, train_tagger
from lens_relearn.neurons.passes import shared_pass
from lens_relearn.parallel import is_main, resolve_device, start

LABELS = load_ner("synthetic", n_train=1, n_validation=0, n_test=0, n_novel=0).labels


def tagger() -> Tagger:
    """tiny-bert with a seeded head and every dropout off, so one process and two ranks compute the same."""
    torch.manual_seed(0)
    made = Tagger(load_model("tiny-bert"), LABELS, dropout=0.0)
    for module in (*made.modules(), *made.model.original_model.modules()):  # the embeddings' is only in the latter
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return made


def compute(what: str) -> dict:
    data = load_ner("synthetic", n_train=40, n_validation=40, n_test=1, n_novel=0)
    model = tagger()
    if what == "passes":
        stats = collect_stats(model.model, data.validation, progress=False)
        done = shared_pass(model, data.validation, vectors=True, predictions=True)
        every = [(layer, index) for layer in range(2) for index in range(256)]
        described = top_tokens(model.model, data.validation, stats, every, n_examples=2, progress=False)
        return {
            "stats": {name: getattr(stats, name) for name in ("count", "total", "total_sq", "total_abs")},
            "vectors": [torch.from_numpy(layer) for layer in done.vectors],
            "tags": done.tags,
            "predictions": done.predictions,
            "tokens": described.tokens,
            "examples": described.examples,
            "composition": described.composition,
        }
    history = train_tagger(model, data.train, epochs=1, lr=1e-3, batch_size=8, seed=3, progress=False)
    return {"losses": history.losses, "weights": {n: p.detach().clone() for n, p in model.named_parameters()}}


if __name__ == "__main__":
    start(resolve_device("cpu"))
    results = {what: compute(what) for what in ("passes", "train")}
    if is_main():
        torch.save(results, sys.argv[1])
