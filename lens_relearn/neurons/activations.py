"""Streaming activation statistics at a neuron site, and each neuron's top tokens.

The corpus goes through the model in batches with hooks at the site; each batch's token
activations are pooled into words (the alignment's ``first``/``last``/``average``) and folded
into running sums, so memory is O(neurons x classes) whatever the corpus size: never a
tokens x neurons matrix, never ``run_with_cache`` over the corpus. Any pruning hooks on the
model act first, so the statistics see the pruned model.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from lens_relearn.data.alignment import INFERENCE_BATCH, EncodedBatch, WordPooler, encode, length_batches
from lens_relearn.data.sentences import Sentence, entity_class
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron, context_length, neuron_site, wrapped_model
from lens_relearn.parallel import gather, is_main, mixed_precision, shard, sum_across_ranks, world


@dataclass(frozen=True)
class ActivationStats:
    """Per-neuron, per-class activation sums over a corpus, at one site.

    Attributes:
        site: ``"mlp"`` or ``"resid"``.
        aggregation: How sub-token activations were pooled into words.
        classes: The label classes (``O``, ``PER``, ``LOC``, ... or token/label file labels).
        count: Words of each class.
        total: Sum of activations, per class and neuron.
        total_sq: Sum of squared activations, per class and neuron.
        total_abs: Sum of absolute activations, per class and neuron.
    """

    site: str
    aggregation: str
    classes: tuple[str, ...]
    count: Int[Tensor, " classes"]
    total: Float[Tensor, "classes layers units"]
    total_sq: Float[Tensor, "classes layers units"]
    total_abs: Float[Tensor, "classes layers units"]

    @property
    def n_layers(self) -> int:
        """Layers at the site."""
        return self.total.shape[1]

    @property
    def units(self) -> int:
        """Neurons a layer."""
        return self.total.shape[2]

    def class_means(self) -> Float[Tensor, "classes layers units"]:
        """Mean activation of each neuron over the words of each class (NaN for an absent class)."""
        return self.total / self.count.view(-1, 1, 1).to(self.total.dtype)

    def mean(self) -> Float[Tensor, "layers units"]:
        """Mean activation of each neuron over all words."""
        return self.total.sum(0) / self.count.sum()

    def std(self) -> Float[Tensor, "layers units"]:
        """Standard deviation of each neuron's activation over all words."""
        n = self.count.sum()
        variance = self.total_sq.sum(0) / n - self.mean() ** 2
        return variance.clamp(min=0).sqrt()

    def save(self, path: str | Path) -> None:
        """Write the statistics to one safetensors file (atomically)."""
        tensors = {"count": self.count, "total": self.total, "total_sq": self.total_sq, "total_abs": self.total_abs}
        metadata = {"site": self.site, "aggregation": self.aggregation, "classes": "\t".join(self.classes)}
        replace_file(path, lambda staging: safetensors.torch.save_file(tensors, str(staging), metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> ActivationStats:
        """Read statistics written by ``save``."""
        with safetensors.safe_open(str(path), "pt") as file:
            meta = file.metadata()
            tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118  safe_open is no mapping
        return cls(meta["site"], meta["aggregation"], tuple(meta["classes"].split("\t")), **tensors)


def _stream(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    sites: Sequence[str],
    aggregation: str,  # checked by WordPooler
    batch_size: int,
    description: str,
    progress: bool,
):
    """Run the corpus through the model once; yield ``(batch, indices, words, hidden)`` for every batch.

    ``words[site]`` holds the pooled word activations of the batch at each of ``sites``, one
    ``[words, units]`` tensor a layer, in the batch's word order; ``hidden`` is the base
    network's last hidden state (token level), for a tagger's head. Under ``torchrun`` each rank
    streams its share of the batches (``lens_relearn.parallel.shard``); whoever consumes them sums
    or gathers across ranks.
    """
    if not sentences:
        raise LensRelearnError("The corpus is empty: there is nothing to collect statistics on.")
    names = {site: neuron_site(model, site).hook_names for site in dict.fromkeys(sites)}
    device = next(model.parameters()).device
    max_length = context_length(model)
    current: dict = {}
    readers: dict[str, list[tuple[str, int]]] = {}  # hook name: the (site, layer) it gives (resid twice is once)
    for site, hook_names in names.items():
        for layer, name in enumerate(hook_names):
            readers.setdefault(name, []).append((site, layer))

    def keeper(name: str):
        def keep(activation: Tensor, hook) -> None:
            words = current["pool"](activation.float())  # float32 even under bf16 autocast
            for site, layer in readers[name]:
                current["words"][site][layer] = words

        return keep

    was_training = model.training
    model.eval()
    try:
        with (
            model.hooks(fwd_hooks=[(name, keeper(name)) for name in readers]),
            tqdm(total=len(sentences), desc=description, unit="sent", disable=not progress or not is_main()) as bar,
        ):
            for indices in shard(length_batches(sentences, batch_size)):
                chunk = [sentences[i] for i in indices]
                batch = encode(model.tokenizer, chunk, max_length=max_length).to(device)
                current["pool"] = WordPooler(batch.token_word, batch.n_words, aggregation)
                current["words"] = {site: [None] * len(hook_names) for site, hook_names in names.items()}
                with torch.no_grad(), mixed_precision(device):
                    output = wrapped_model(model).base_model(
                        input_ids=batch.input_ids, attention_mask=batch.attention_mask
                    )
                yield batch, indices, current["words"], output.last_hidden_state.float()
                bar.update(len(indices))
    finally:
        if was_training:  # eval() left every module in eval mode: nothing to restore otherwise
            model.train()


class StatsSums:
    """Running per-class sums of a site's word activations, batch by batch (``collect_stats``'s core).

    Args:
        sentences: The whole corpus (its classes, in order of first appearance, are fixed up front).
        site: The neuron site the activations come from.
        aggregation: How they were pooled into words.
        n_layers, units: The site's shape.
    """

    def __init__(self, sentences: Sequence[Sentence], site: str, aggregation: str, n_layers: int, units: int) -> None:
        self.site, self.aggregation = site, aggregation
        self.classes = tuple(dict.fromkeys(entity_class(t) for s in sentences for t in s.tags))
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        shape = (len(self.classes), n_layers, units)
        self.total = torch.zeros(shape, dtype=torch.float64)
        self.total_sq = torch.zeros(shape, dtype=torch.float64)
        self.total_abs = torch.zeros(shape, dtype=torch.float64)
        self.count = torch.zeros(len(self.classes), dtype=torch.long)

    def add(self, tags: Sequence[str], layers: Sequence[Float[Tensor, "words units"]]) -> None:
        """Fold in one batch: its words' tags and their activations at every layer."""
        word_class = torch.tensor([self.class_index[entity_class(t)] for t in tags])
        one_hot = torch.nn.functional.one_hot(word_class, len(self.classes)).T.to(layers[0].dtype)
        one_hot = one_hot.to(layers[0].device)
        for layer, words in enumerate(layers):
            self.total[:, layer] += (one_hot @ words).double().cpu()
            self.total_sq[:, layer] += (one_hot @ words.square()).double().cpu()
            self.total_abs[:, layer] += (one_hot @ words.abs()).double().cpu()
        self.count += torch.bincount(word_class, minlength=len(self.classes))

    def result(self) -> ActivationStats:
        """The statistics of everything added (on every rank: summed across the ranks, one all-reduce each)."""
        for sums in (self.count, self.total, self.total_sq, self.total_abs):
            sum_across_ranks(sums)
        return ActivationStats(
            self.site, self.aggregation, self.classes, self.count, self.total, self.total_sq, self.total_abs
        )


def collect_stats(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    *,
    site: str = "mlp",
    aggregation: str = "first",  # str, not Aggregation: WordPooler checks it, with advice
    batch_size: int = INFERENCE_BATCH,
    progress: bool = True,
) -> ActivationStats:
    """Stream a labelled corpus through the model and sum each neuron's activations per class.

    A word's class is its entity type (``B-LOC`` and ``I-LOC`` are ``LOC``) or, for labels
    without an IOB prefix, the label itself.

    Args:
        model: A bridge from ``load_model`` (pruning hooks on it act first).
        sentences: The concept corpus.
        site: ``"mlp"`` or ``"resid"``.
        aggregation: How sub-token activations make a word's activation.
        batch_size: Sentences a forward pass.
        progress: Show a progress bar.

    Returns:
        The per-class counts, sums, sums of squares and sums of absolute values.

    Example:
        >>> from lens_relearn import load_model
        >>> from lens_relearn.data import Sentence
        >>> sentence = Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-LOC"])
        >>> stats = collect_stats(load_model("tiny-bert"), [sentence], progress=False)
        >>> stats.classes, stats.count.tolist(), tuple(stats.total.shape)
        (('O', 'LOC'), [2, 1], (2, 2, 256))
    """
    shape = neuron_site(model, site)
    sums = StatsSums(sentences, site, aggregation, shape.n_layers, shape.units)
    for batch, _, words, _ in _stream(model, sentences, [site], aggregation, batch_size, "statistics", progress):
        sums.add(batch.tags, words[site])
    return sums.result()


ACTIVATION_MEMORY_BYTES = 2**30  # an ActivationStore keeps this much in memory, the rest in a temporary file


class ActivationStore:
    """A pass's word activations at a site, batch by batch, for ``top_tokens`` to read instead of a pass of its own.

    Up to ``memory_bytes`` (default ``ACTIVATION_MEMORY_BYTES``, read when the store is made) stay in
    memory; beyond that each batch goes to a temporary file (removed by
    ``close``), so one forward pass a stage serves the top tokens whatever the corpus size. What is read
    back is what was added, bit for bit.

    Example:
        >>> store = ActivationStore(memory_bytes=0)
        >>> store.add(None, [0], [torch.ones(2, 3)])
        >>> [[tuple(layer.shape) for layer in layers] for _, _, layers in store], store.spilled
        ([[(2, 3)]], 1)
        >>> store.close()
    """

    def __init__(self, memory_bytes: int | None = None) -> None:
        self.memory_bytes = ACTIVATION_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.kept_bytes = 0
        self.batches: list[tuple[object, list[int], list[Tensor] | tuple[int, tuple[int, ...]]]] = []
        self.spilled = 0
        self._folder: tempfile.TemporaryDirectory | None = None
        self._file: io.BufferedRandom | None = None

    def add(self, batch: object, indices: Sequence[int], layers: Sequence[Float[Tensor, "words units"]]) -> None:
        """Keep one batch's activations, a tensor a layer (float32, on the CPU; in memory as given, not copied)."""
        kept = [layer.detach().float().cpu().contiguous() for layer in layers]
        size = sum(layer.numel() for layer in kept) * 4
        if self.kept_bytes + size <= self.memory_bytes:
            self.kept_bytes += size
            self.batches.append((batch, list(indices), kept))
            return
        if self._file is None:
            self._folder = tempfile.TemporaryDirectory(prefix="lens-relearn-activations-")
            self._file = open(Path(self._folder.name) / "activations.f32", "w+b")  # noqa: SIM115  closed in close()
        offset = self._file.seek(0, io.SEEK_END)
        for layer in kept:
            self._file.write(layer.numpy().data)
        self.batches.append((batch, list(indices), (offset, (len(kept), *kept[0].shape))))
        self.spilled += 1

    @property
    def path(self) -> Path | None:
        """The temporary file holding what did not fit in memory (None while everything does)."""
        return Path(self._file.name) if self._file is not None else None

    def __iter__(self) -> Iterator[tuple[Any, list[int], list[Float[Tensor, "words units"]]]]:
        for batch, indices, kept in self.batches:
            if isinstance(kept, list):
                yield batch, indices, kept
                continue
            assert self._file is not None  # a batch that is not in memory is in the file
            offset, (n_layers, *shape) = kept
            self._file.seek(offset)
            layers = [torch.empty(shape) for _ in range(n_layers)]
            for layer in layers:
                self._file.readinto(layer.numpy().data)
            yield batch, indices, layers

    def close(self) -> None:
        """Forget every batch and remove the temporary file."""
        self.batches.clear()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


@dataclass(frozen=True)
class TopTokens:
    """The word types and sentences that most activate some neurons, and the classes of their top words.

    Attributes:
        neurons: The neurons described, in order.
        tokens: For each neuron, its top word types with their normalised score (1.0 first).
        examples: For each neuron, ``(sentence index, peak activation)`` where it fires hardest.
        classes: The corpus's classes, in ``ActivationStats.classes`` order (empty if no
            composition was asked for).
        composition: For each neuron, the share of each class among its top-activating word
            occurrences (rows sum to 1; ``None`` if none was asked for).
    """

    neurons: tuple[Neuron, ...]
    tokens: tuple[tuple[tuple[str, float], ...], ...]
    examples: tuple[tuple[tuple[int, float], ...], ...]
    classes: tuple[str, ...] = ()
    composition: Float[Tensor, "neurons classes"] | None = None

    def of(self, neuron: tuple[int, int]) -> tuple[tuple[str, float], ...]:
        """The top tokens of one neuron."""
        return self.tokens[self.neurons.index(Neuron(*neuron))]


def composition_entropy(composition: Float[Tensor, "*neurons classes"]) -> Float[Tensor, "*neurons"]:
    """The entropy in bits of class shares: 0 when one class holds every top word, log2(classes) when all share alike.

    Example:
        >>> composition_entropy(torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]], dtype=torch.float64)).tolist()
        [0.0, 1.0, 0.8112781244591328]
    """
    bits = torch.special.entr(composition.double()).sum(-1) / math.log(2) + 0.0  # + 0.0: no -0.0
    return bits.to(composition.dtype)


def top_tokens(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    stats: ActivationStats,
    neurons: Sequence[tuple[int, int]],
    *,
    k: int = 10,
    n_examples: int = 5,
    max_types: int = 5000,
    n_occurrences: int = 50,
    batch_size: int = INFERENCE_BATCH,
    activations: Iterable[tuple[EncodedBatch, Sequence[int], Sequence[Float[Tensor, "_words units"]]]] | None = None,
    progress: bool = True,
) -> TopTokens:
    """Each neuron's top word types (NeuroX ``get_top_words``), its strongest sentences and the
    class composition of its top-activating words.

    A word type's score for a neuron is the mean, over the type's occurrences, of the absolute
    z-score of the neuron's activation (mean and deviation over the whole corpus, from
    ``stats``), divided by the best type's score; the ``k`` best types are kept. Only the
    ``max_types`` most frequent types compete, which bounds memory to
    ``max_types x len(neurons)`` whatever the corpus size.

    The class composition (docs/design.md §19) counts the ``n_occurrences`` word occurrences
    with the largest absolute z-score (every word of the corpus competes, kept as a running
    top-k while streaming) and gives the share of each class among them.

    Args:
        model: The model ``stats`` was collected on (same site and aggregation).
        sentences: The corpus ``stats`` was collected on.
        stats: The statistics giving each neuron's corpus mean and deviation.
        neurons: Which neurons to describe.
        k: Top types kept a neuron.
        n_examples: Sentences kept a neuron (by its peak activation in the sentence); 0 skips them.
        max_types: How many of the most frequent word types compete.
        n_occurrences: Top-activating word occurrences a neuron's class composition counts; 0 skips it.
        batch_size: Sentences a forward pass.
        activations: The corpus's word activations at the site, batch by batch (a tensor a layer), as a shared pass
            kept them (``shared_pass(..., keep_activations=True)``: an ``ActivationStore``); given, no
            forward pass runs.
        progress: Show a progress bar.
    """
    chosen = tuple(Neuron(*n) for n in neurons)
    if not chosen:
        raise LensRelearnError("No neurons given to describe.")
    frequency = Counter(word for sentence in sentences for word in sentence.words)
    types = [word for word, _ in frequency.most_common(max_types)]
    type_index = {word: i for i, word in enumerate(types)}
    class_index = {c: i for i, c in enumerate(stats.classes)}
    mean, std = stats.mean().float(), stats.std().float().clamp(min=1e-8)
    tallies = [
        _LayerTally(layer, chosen, mean[layer], std[layer], len(types) + 1, n_occurrences, n_examples)
        for layer in dict.fromkeys(n.layer for n in chosen)
    ]
    type_count = torch.zeros(len(types) + 1)  # the last row gathers the words of no competing type
    batches: Iterable[tuple[EncodedBatch, Sequence[int], Sequence[Tensor]]] = activations or (
        (batch, indices, [layer.float().cpu() for layer in words[stats.site]])
        for batch, indices, words, _ in _stream(
            model, sentences, [stats.site], stats.aggregation, batch_size, "top tokens", progress
        )
    )
    for batch, indices, layers in batches:
        words = [w for i, kept in zip(indices, batch.words_kept, strict=True) for w in sentences[i].words[:kept]]
        rows = torch.tensor([type_index.get(w, len(types)) for w in words])
        type_count.index_add_(0, rows, torch.ones(len(rows)))
        classes = torch.tensor([class_index[entity_class(t)] for t in batch.tags]) if n_occurrences else None
        for tally in tallies:
            tally.add(layers[tally.layer], rows, classes, batch, indices)
    sum_across_ranks(type_count)
    for tally in tallies:
        tally.merge_ranks()
    order = torch.cat([tally.positions for tally in tallies])  # the tallies' neurons, each at its place in ``chosen``
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    type_sum = torch.cat([tally.type_sum for tally in tallies], 1)[:, inverse]
    scores = type_sum[:-1] / type_count[:-1].clamp(min=1).unsqueeze(1)  # types neurons
    top_scores, top_types = scores.topk(min(k, len(types)), dim=0)
    normalised = (top_scores / top_scores[0].clamp(min=1e-12)).T.tolist()  # neurons k
    tokens = tuple(
        tuple((types[t], score) for t, score in zip(ranked, row, strict=True))
        for ranked, row in zip(top_types.T.tolist(), normalised, strict=True)
    )
    peak_ids = torch.cat([tally.peaks.labels for tally in tallies])[inverse].tolist()
    peak_values = torch.cat([tally.peaks.values for tally in tallies])[inverse].tolist()
    examples = tuple(
        tuple((i, p) for i, p in zip(ids, values, strict=True) if i >= 0)
        for ids, values in zip(peak_ids, peak_values, strict=True)
    )
    if not n_occurrences:
        return TopTokens(chosen, tokens, examples)
    top_classes = torch.cat([tally.top.labels for tally in tallies])[inverse]
    shares = torch.nn.functional.one_hot(top_classes, len(stats.classes)).double().mean(1)  # neurons classes
    return TopTokens(chosen, tokens, examples, stats.classes, shares)


class _LayerTally:
    """``top_tokens``'s running results for the chosen neurons of one layer: the sums of |z| by word type, the
    largest |z| with each word's class, and the strongest sentences."""

    def __init__(
        self,
        layer: int,
        chosen: Sequence[Neuron],
        mean: Float[Tensor, " units"],
        std: Float[Tensor, " units"],
        n_types: int,
        n_occurrences: int,
        n_examples: int,
    ) -> None:
        self.layer = layer
        self.positions = torch.tensor([p for p, n in enumerate(chosen) if n.layer == layer])
        units = torch.tensor([chosen[p].index for p in self.positions.tolist()])
        self.units = None if torch.equal(units, torch.arange(len(mean))) else units  # None: the whole layer, in order
        self.mean, self.std = mean[units], std[units]
        self.type_sum = torch.zeros(n_types, len(units))
        self.top = _RunningTop(len(units), n_occurrences)
        self.peaks = _RunningTop(len(units), n_examples, fill=-math.inf)

    def add(
        self,
        layer: Float[Tensor, "words units"],
        rows: Int[Tensor, " words"],
        classes: Int[Tensor, " words"] | None,
        batch: EncodedBatch,
        indices: Sequence[int],
    ) -> None:
        """Fold in one batch: the layer's word activations, each word's type row and class."""
        values = layer if self.units is None else layer[:, self.units]  # words neurons
        z = (values - self.mean).div_(self.std).abs_()
        self.type_sum.index_add_(0, rows, z)
        if classes is not None:
            self.top.add(z, classes)
        if self.peaks.k:
            self.peaks.add(_sentence_peaks(values, batch), torch.tensor(indices))

    def merge_ranks(self) -> None:
        """Under ``torchrun``: every rank's sums added, the best of every rank's top words and sentences kept."""
        sum_across_ranks(self.type_sum)
        self.top.merge_ranks()
        self.peaks.merge_ranks()


class _RunningTop:
    """The ``k`` largest values of each row seen so far, batch by batch, with a label each (-1: none yet).

    A tie goes to the item seen first, so what is kept does not depend on how the items were
    batched. Once a row holds ``k`` values only the batch's items above its smallest are merged in:
    after the first batches few are, and a batch costs one comparison of its values.
    """

    def __init__(self, rows: int, k: int, fill: float | None = None) -> None:
        self.k = k
        columns = k if fill is not None else 0  # filled slots take part from the start, as -inf
        self.values = torch.full((rows, columns), fill if fill is not None else 0.0)
        self.labels = torch.full((rows, columns), -1, dtype=torch.long)

    def add(self, values: Float[Tensor, "items rows"], labels: Int[Tensor, " items"]) -> None:
        """Merge in a batch's items, one value a row each."""
        if not self.k:
            return
        if self.values.shape[1] < self.k:  # the first items: every one is a candidate
            self.values, self.labels = _best(
                [(self.values, self.labels), (values.T, labels.expand(values.shape[1], -1))], self.k
            )
            return
        rows, items = (values > self.values[:, -1].contiguous()).T.nonzero(as_tuple=True)  # by row, items in order
        if not len(rows):
            return
        active, counts = torch.unique_consecutive(rows, return_counts=True)
        slot = torch.arange(len(rows)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        row = torch.repeat_interleave(torch.arange(len(active)), counts)
        entering = torch.full((len(active), int(counts.max())), -math.inf)
        entering_labels = torch.full(entering.shape, -1, dtype=torch.long)
        entering[row, slot] = values[items, rows]
        entering_labels[row, slot] = labels[items]
        kept, kept_labels = _best([(self.values[active], self.labels[active]), (entering, entering_labels)], self.k)
        self.values[active], self.labels[active] = kept, kept_labels

    def merge_ranks(self) -> None:
        """Under ``torchrun`` each rank kept the best of its batches: the best of those are the best of all."""
        if world() > 1 and self.k:
            self.values, self.labels = _best(gather((self.values, self.labels)), self.k)


def _best(candidates: list[tuple[Tensor, Tensor]], k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` largest values of every row over several ``(values, labels)`` pairs, with their
    labels, sorted from the largest; a tie goes to the earlier candidate."""
    values = torch.cat([v for v, _ in candidates], 1)
    labels = torch.cat([label for _, label in candidates], 1)
    kept, order = values.sort(dim=1, descending=True, stable=True)
    return kept[:, :k].contiguous(), labels.gather(1, order[:, :k])


def _sentence_peaks(values: Float[Tensor, "words neurons"], batch: EncodedBatch) -> Float[Tensor, "sentences neurons"]:
    """Each sentence's highest word activation per neuron (-inf for a sentence with no word)."""
    sentence_of = torch.repeat_interleave(torch.arange(len(batch.words_kept)), torch.tensor(batch.words_kept))
    peaks = torch.full((len(batch.words_kept), values.shape[1]), -math.inf)
    return peaks.scatter_reduce_(0, sentence_of.unsqueeze(1).expand_as(values), values, "amax")


def word_activations(
    model: TransformerBridge,
    sentences: Sequence[Sentence],
    neurons: Sequence[tuple[int, int]],
    *,
    site: str = "mlp",
    aggregation: str = "first",  # str, not Aggregation: WordPooler checks it, with advice
) -> list[Float[Tensor, "words neurons"]]:
    """The word activations of a few neurons on a few sentences (for neuron views).

    Example:
        >>> from lens_relearn import load_model
        >>> from lens_relearn.data import Sentence
        >>> sentence = Sentence(["Hi", "Oslo"], ["O", "B-LOC"])
        >>> acts = word_activations(load_model("tiny-gpt2"), [sentence], [(0, 1), (1, 2)])
        >>> tuple(acts[0].shape)
        (2, 2)
    """
    chosen = [Neuron(*n) for n in neurons]
    layer_of = torch.tensor([n.layer for n in chosen])
    unit_of = torch.tensor([n.index for n in chosen])
    found: dict[int, Tensor] = {}
    for batch, indices, words, _ in _stream(
        model, sentences, [site], aggregation, INFERENCE_BATCH, "activations", False
    ):
        values = torch.stack(words[site], 1).float().cpu()[:, layer_of, unit_of]
        for index, sentence_values in zip(indices, values.split(batch.words_kept), strict=True):
            found[index] = sentence_values
    every = {index: values for part in gather(found) for index, values in part.items()}
    return [every[index] for index in range(len(sentences))]


class SentenceWords:
    """The pooled word activations of chosen sentences at some sites, batch by batch (gathered across ranks).

    Args:
        sentences: The indices of the sentences whose words are kept.
        sites: The sites kept.
    """

    def __init__(self, sentences: Sequence[int], sites: Sequence[str]) -> None:
        self.chosen = set(sentences)
        self.sites = tuple(dict.fromkeys(sites))
        self.found: dict[int, dict[str, list[Tensor]]] = {}

    def add(self, batch: EncodedBatch, indices: Sequence[int], words: dict[str, list[Tensor]]) -> None:
        """Keep the words of the batch's chosen sentences (``words``: a site's pooled layers, as ``_stream`` gives)."""
        split = {site: [layer.cpu().split(batch.words_kept) for layer in words[site]] for site in self.sites}
        for position, index in enumerate(indices):
            if index in self.chosen:
                self.found[index] = {site: [layer[position] for layer in layers] for site, layers in split.items()}

    def result(self) -> dict[str, list[Float[Tensor, "_words _units"]]]:
        """Each site's layers, the kept sentences' words in the sentences' order (every rank's)."""
        every = {index: values for part in gather(self.found) for index, values in part.items()}
        ordered = [every[index] for index in sorted(every)]
        if not ordered:
            return {}
        layers = {site: range(len(ordered[0][site])) for site in self.sites}
        return {site: [torch.cat([v[site][layer] for v in ordered]) for layer in layers[site]] for site in self.sites}
