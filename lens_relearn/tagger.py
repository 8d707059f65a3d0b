"""A named-entity tagger on any bridge model: head, training, entity-level scores, checkpoints.

The tagger reads the final hidden states of the model's base network (the Hugging Face
encoder or decoder inside the bridge), so no compute goes to a language-model or masked-LM
vocabulary projection, while every TransformerLens hook point of the blocks stays live:
pruning hooks act during training and evaluation alike. Sub-token states are pooled into
one vector a word (``first`` sub-token by default) and a linear head scores the labels.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch
from jaxtyping import Float
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.alignment import AGGREGATIONS, Aggregation, EncodedBatch, encode, pool_words
from lens_relearn.data import Sentence, entity_spans
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models import context_length, load_model

CONFIG_FILE = "tagger.json"
WEIGHTS_FILE = "tagger.safetensors"


class Tagger(nn.Module):
    """A token-classification head on the final hidden states of a bridge model.

    Args:
        model: A bridge from ``load_model`` (encoder or decoder).
        labels: The tags to predict, in a fixed order.
        aggregation: How a word's sub-token states are pooled: ``first``, ``last``, ``average``.
        dropout: Dropout on the pooled states during training.
        seed: Seeds the head's initial weights (the global random state is left as it was).

    Example:
        >>> from lens_relearn import load_model, Sentence
        >>> tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
        >>> tagger.predict([Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])])[0].__len__()
        3
    """

    def __init__(
        self,
        model: TransformerBridge,
        labels: Sequence[str],
        *,
        aggregation: Aggregation = "first",
        dropout: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise LensRelearnError(
                f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}."
            )
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise LensRelearnError(f"A tagger needs two or more distinct labels, got {list(labels)}.")
        self.model = model
        self.labels = tuple(labels)
        self.aggregation = aggregation
        self.dropout = nn.Dropout(dropout)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.head = nn.Linear(model.cfg.d_model, len(labels))
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        device = next(model.parameters()).device
        self.head.to(device=device, dtype=next(model.parameters()).dtype)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self.head.weight.device

    def encode(self, sentences: Sequence[Sentence]) -> EncodedBatch:
        """Tokenise sentences for this tagger's model, on its device."""
        return encode(self.model.tokenizer, sentences, max_length=context_length(self.model)).to(self.device)

    def forward(self, batch: EncodedBatch) -> Float[Tensor, "words labels"]:
        """Label scores for every word kept in the batch."""
        hidden = self.model.original_model.base_model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        words = pool_words(hidden, batch.token_word, batch.n_words, self.aggregation)
        return self.head(self.dropout(words))

    def loss(self, batch: EncodedBatch) -> Tensor:
        """Mean cross-entropy over the words of a batch."""
        unknown = set(batch.tags) - self.label_index.keys()
        if unknown:
            raise LensRelearnError(
                f"Tags {sorted(unknown)} are not among the tagger's labels {list(self.labels)}."
            )
        targets = torch.tensor([self.label_index[t] for t in batch.tags], device=self.device)
        return nn.functional.cross_entropy(self(batch), targets)

    @torch.no_grad()
    def predict(self, sentences: Sequence[Sentence], *, batch_size: int = 64) -> list[list[str]]:
        """The predicted tags of each sentence (``O`` for words cut off by the context)."""
        was_training = self.training
        self.eval()
        predictions: list[list[str]] = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            batch = self.encode(chunk)
            best = self(batch).argmax(-1).tolist()
            offset = 0
            for sentence, kept in zip(chunk, batch.words_kept):
                tags = [self.labels[i] for i in best[offset : offset + kept]]
                predictions.append(tags + ["O"] * (len(sentence) - kept))
                offset += kept
        self.train(was_training)
        return predictions

    def save(self, folder: str | Path) -> Path:
        """Save the weights (safetensors) and a JSON config to ``folder``, each atomically.

        The config names the ``load_model`` spec of the model, so ``Tagger.load`` can rebuild it.
        """
        spec = getattr(self.model, "model_spec", None)
        if spec is None:
            raise LensRelearnError("Only a tagger on a model from load_model can be saved.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"model_spec": spec, "labels": list(self.labels),
                  "aggregation": self.aggregation, "dropout": self.dropout.p}
        # Copies: some bridge parameters are views of others (GPT-2's split q/k/v biases).
        weights = {name: p.detach().clone().contiguous() for name, p in self.named_parameters()}
        replace_file(folder / WEIGHTS_FILE, lambda staging: safetensors.torch.save_file(weights, str(staging)))
        replace_file(folder / CONFIG_FILE, lambda staging: staging.write_text(json.dumps(config, indent=2)))
        return folder

    def load_weights(self, folder: str | Path) -> None:
        """Fill this tagger with the weights of a tagger saved by ``save`` (same model spec)."""
        path = Path(folder) / WEIGHTS_FILE
        weights = safetensors.torch.load_file(str(path), device=str(self.device))
        parameters = dict(self.named_parameters())
        if weights.keys() != parameters.keys():
            raise LensRelearnError(f"{path} does not match this tagger's model.")
        with torch.no_grad():
            for name, parameter in parameters.items():
                parameter.copy_(weights[name])

    @classmethod
    def load(cls, folder: str | Path, *, device: str | torch.device = "cpu") -> Tagger:
        """Load a tagger saved by ``save``: its model is rebuilt from the spec, then filled."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise LensRelearnError(f"{folder} holds no saved tagger ({CONFIG_FILE} is missing).")
        config = json.loads((folder / CONFIG_FILE).read_text())
        tagger = cls(load_model(config["model_spec"], device=device), config["labels"],
                     aggregation=config["aggregation"], dropout=config["dropout"])
        tagger.load_weights(folder)
        return tagger.eval()


@dataclass
class TrainHistory:
    """What a training run did: the loss of every step and the time of every epoch."""

    losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def length_grouped_batches(
    sentences: Sequence[Sentence], batch_size: int, generator: random.Random
) -> list[list[Sentence]]:
    """Shuffled batches of sentences of similar length, so little compute goes to padding.

    Sentences are shuffled, sorted by length inside windows of 50 batches, cut into batches,
    and the batches shuffled again.
    """
    order = list(range(len(sentences)))
    generator.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(sentences[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    generator.shuffle(batches)
    return [[sentences[i] for i in batch] for batch in batches]


class Schedule:
    """AdamW with linear warm-up and decay over a fixed number of steps.

    One schedule may span several ``train_tagger`` calls (e.g. retraining rounds that continue
    one schedule); ``state_dict``/``load_state_dict`` carry it across an interruption.

    Args:
        tagger: The tagger whose parameters are optimised.
        steps: Steps of the whole schedule.
        lr: Peak learning rate.
        warmup_fraction: Share of the steps over which the rate climbs linearly to ``lr``.
        weight_decay: AdamW weight decay (not applied to biases and norms).
    """

    def __init__(
        self, tagger: Tagger, *, steps: int, lr: float, warmup_fraction: float = 0.0,
        weight_decay: float = 0.01,
    ) -> None:
        if steps < 1 or lr <= 0 or not 0 <= warmup_fraction < 1:
            raise LensRelearnError(
                f"Need steps >= 1, lr > 0 and 0 <= warmup_fraction < 1; got {steps}, {lr}, {warmup_fraction}."
            )
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in tagger.parameters() if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in tagger.parameters() if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=lr,
        )
        warmup = int(warmup_fraction * steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def step(self) -> None:
        """Update the parameters from their gradients and advance the learning rate."""
        self.optimizer.step()
        self.scheduler.step()

    def state_dict(self) -> dict:
        """The optimizer's moments and the schedule's position."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def steps_per_epoch(n_sentences: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``n_sentences``."""
    return math.ceil(n_sentences / batch_size)


def train_tagger(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    *,
    epochs: int = 3,
    lr: float = 5e-5,
    batch_size: int = 16,
    seed: int = 0,
    warmup_fraction: float = 0.0,
    weight_decay: float = 0.01,
    max_grad_norm: float = 1.0,
    schedule: Schedule | None = None,
    progress: bool = True,
) -> TrainHistory:
    """Fine-tune the whole model and the head with AdamW and a linear decay.

    Deterministic on the CPU for a seed (the global random state is left as it was).

    Args:
        tagger: The tagger to train, in place.
        sentences: Labelled training sentences.
        epochs: Passes over the sentences.
        lr: Peak learning rate (of a new schedule).
        batch_size: Sentences a step.
        seed: Seeds batch order and dropout.
        warmup_fraction: Share of the steps over which the rate climbs to ``lr`` (new schedule).
        weight_decay: AdamW weight decay, not applied to biases and norms (new schedule).
        max_grad_norm: Gradient clipping threshold.
        schedule: Continue this schedule instead of starting one over these epochs.
        progress: Show a progress bar.

    Returns:
        The loss of every step and the seconds of every epoch.
    """
    if not sentences:
        raise LensRelearnError("No training sentences.")
    if epochs < 1 or batch_size < 1:
        raise LensRelearnError(f"Need epochs >= 1 and batch_size >= 1; got {epochs}, {batch_size}.")
    steps = epochs * steps_per_epoch(len(sentences), batch_size)
    if schedule is None:
        schedule = Schedule(tagger, steps=steps, lr=lr, warmup_fraction=warmup_fraction,
                            weight_decay=weight_decay)
    history = TrainHistory()
    order = random.Random(seed)
    tagger.train()
    with torch.random.fork_rng(), tqdm(total=steps, desc="training", disable=not progress) as bar:
        torch.manual_seed(seed)
        for _ in range(epochs):
            start = time.perf_counter()
            for chunk in length_grouped_batches(sentences, batch_size, order):
                loss = tagger.loss(tagger.encode(chunk))
                schedule.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(tagger.parameters(), max_grad_norm)
                schedule.step()
                history.losses.append(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}")
            history.epoch_seconds.append(time.perf_counter() - start)
    tagger.eval()
    return history


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 on IOB2 tags, as conlleval and seqeval count them.

    An entity is right only if its type and both ends are right. ``I-X`` after ``O`` or after
    another type opens a new entity.

    Args:
        gold: The true tags, one list a sentence.
        pred: The predicted tags, aligned with ``gold``.

    Returns:
        ``precision``, ``recall``, ``f1`` over all entities and ``per_type``: the same three
        plus ``support`` (true entities) for each type.

    Example:
        >>> gold = [["O", "B-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
        >>> pred = [["B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
        >>> scores = entity_scores(gold, pred)
        >>> scores["f1"], scores["per_type"]["PER"]["f1"], scores["per_type"]["MISC"]["recall"]
        (0.5, 1.0, 0.0)
    """
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise LensRelearnError("Gold and predicted tags must have the same sentences and lengths.")
    true_spans, pred_spans = set(), set()
    for index, (g, p) in enumerate(zip(gold, pred)):
        true_spans |= {(index, *span) for span in entity_spans(g)}
        pred_spans |= {(index, *span) for span in entity_spans(p)}
    types = sorted({span[1] for span in true_spans | pred_spans})

    def score(true: set, predicted: set) -> dict:
        hits = len(true & predicted)
        precision = hits / len(predicted) if predicted else 0.0
        recall = hits / len(true) if true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": len(true)}

    overall = score(true_spans, pred_spans)
    overall["per_type"] = {
        kind: score({s for s in true_spans if s[1] == kind}, {s for s in pred_spans if s[1] == kind})
        for kind in types
    }
    return overall


def evaluate_tagger(tagger: Tagger, sentences: Sequence[Sentence], *, batch_size: int = 64) -> dict:
    """Score a tagger on labelled sentences.

    Returns:
        ``entity_scores`` of its predictions plus ``token_accuracy`` (share of words tagged
        right) and ``sentences``.
    """
    if not sentences:
        raise LensRelearnError("No sentences to evaluate on.")
    predicted = tagger.predict(sentences, batch_size=batch_size)
    gold = [s.tags for s in sentences]
    scores = entity_scores(gold, predicted)
    words = sum(len(g) for g in gold)
    scores["token_accuracy"] = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p)) / words
    scores["sentences"] = len(sentences)
    return scores
