"""A named-entity tagger on any bridge model: head, training, entity-level scores, checkpoints.

The tagger reads the final hidden states of the model's base network (the Hugging Face
encoder or decoder inside the bridge), so no compute goes to a language-model or masked-LM
vocabulary projection, while every TransformerLens hook point of the blocks stays live:
pruning hooks act during training and evaluation alike. Sub-token states are pooled into
one vector a word (``first`` sub-token by default) and a linear head scores the labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import safetensors.torch
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.data.alignment import AGGREGATIONS, INFERENCE_BATCH, EncodedBatch, encode, length_batches, pool_words
from lens_relearn.data.sentences import Sentence
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.loading import load_model
from lens_relearn.models.sites import context_length, wrapped_model
from lens_relearn.parallel import gather, shard

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
        >>> from lens_relearn import load_model
        >>> from lens_relearn.data import Sentence
        >>> tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
        >>> tagger.predict([Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])])[0].__len__()
        3
    """

    def __init__(
        self,
        model: TransformerBridge,
        labels: Sequence[str],
        *,
        aggregation: str = "first",  # str, not Aggregation: checked below, with advice
        dropout: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise LensRelearnError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}.")
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
        hidden = (
            wrapped_model(self.model)
            .base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            .last_hidden_state
        )
        words = pool_words(hidden, batch.token_word, batch.n_words, self.aggregation)
        return self.head(self.dropout(words))

    def targets(self, batch: EncodedBatch) -> Int[Tensor, " words"]:
        """The label index of every word kept in the batch.

        Raises:
            LensRelearnError: A tag is not among the tagger's labels.
        """
        unknown = set(batch.tags) - self.label_index.keys()
        if unknown:
            raise LensRelearnError(f"Tags {sorted(unknown)} are not among the tagger's labels {list(self.labels)}.")
        return torch.tensor([self.label_index[t] for t in batch.tags], device=self.device)

    def loss(self, batch: EncodedBatch) -> Tensor:
        """Mean cross-entropy over the words of a batch."""
        return nn.functional.cross_entropy(self(batch), self.targets(batch))

    def decode(
        self, scores: Float[Tensor, "words labels"], sentences: Sequence[Sentence], batch: EncodedBatch
    ) -> list[list[str]]:
        """The best tag of every word of a batch's sentences (``O`` for words cut off by the context)."""
        best = scores.argmax(-1).tolist()
        tags, offset = [], 0
        for sentence, kept in zip(sentences, batch.words_kept, strict=True):
            tags.append([self.labels[i] for i in best[offset : offset + kept]] + ["O"] * (len(sentence) - kept))
            offset += kept
        return tags

    @torch.no_grad()
    def predict(self, sentences: Sequence[Sentence], *, batch_size: int = INFERENCE_BATCH) -> list[list[str]]:
        """The predicted tags of each sentence (``O`` for words cut off by the context).

        Sentences go in batches of similar length (``length_batches``), as in every other pass
        over sentences (under ``torchrun`` each rank tags its share), and come back in their own order.
        """
        was_training = self.training
        self.eval()
        found: dict[int, list[str]] = {}
        for indices in shard(length_batches(sentences, batch_size)):
            chunk = [sentences[i] for i in indices]
            batch = self.encode(chunk)
            found.update(zip(indices, self.decode(self(batch), chunk, batch), strict=True))
        if was_training:  # eval() left every module in eval mode: nothing to restore otherwise
            self.train()
        tagged = {index: tags for part in gather(found) for index, tags in part.items()}  # every rank's share
        return [tagged[index] for index in range(len(sentences))]

    def save(self, folder: str | Path) -> Path:
        """Save the weights (safetensors) and a JSON config to ``folder``, each atomically.

        The config names the ``load_model`` spec of the model, so ``Tagger.load`` can rebuild it.
        """
        spec = getattr(self.model, "model_spec", None)
        if spec is None:
            raise LensRelearnError("Only a tagger on a model from load_model can be saved.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "model_spec": spec,
            "labels": list(self.labels),
            "aggregation": self.aggregation,
            "dropout": self.dropout.p,
        }
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
        tagger = cls(
            load_model(config["model_spec"], device=device),
            config["labels"],
            aggregation=config["aggregation"],
            dropout=config["dropout"],
        )
        tagger.load_weights(folder)
        return tagger.eval()
