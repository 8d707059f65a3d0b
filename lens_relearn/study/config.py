"""What defines a relearning study: ``ExperimentConfig``, checked on construction, and presets.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from lens_relearn.data.sentences import NerData
from lens_relearn.data.sources import load_ner
from lens_relearn.errors import LensRelearnError
from lens_relearn.neurons.ranking import METHODS

ARMS = ("concept", "random", "none")


def _help(text: str, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a relearning study; round-trips through JSON."""

    model: str = _help("model spec (minilm, smollm2, tiny-*, a folder or a Hub id)", "minilm")
    data: str = _help("NER source: synthetic, conll2003 or a folder of CoNLL files", "synthetic")
    n_train: int = _help("synthetic training sentences", 6000)
    n_validation: int = _help("synthetic validation sentences (the concept corpus)", 1000)
    n_test: int = _help("synthetic test sentences (held-out place names)", 1000)
    n_novel: int = _help("synthetic test sentences with invented place names", 300)
    concept: str = _help("the concept to remove: an entity type (LOC) or a label", "LOC")
    site: str = _help("neuron site: mlp or resid", "mlp")
    aggregation: str = _help("sub-token pooling: first, last or average", "first")
    ranking: str = _help("neuron ranking: probeless or binary", "probeless")
    prune_count: int | None = _help("neurons to prune (overrides prune_fraction)", None)
    prune_fraction: float = _help("share of the site's neurons to prune", 0.1)
    prune_mode: str = _help("mask (permanent hook) or weights", "mask")
    prune_value: str = _help("what a masked unit becomes: zero or mean", "zero")
    freeze: bool = _help("weights mode: keep pruned weights at zero during retraining", True)
    arms: tuple[str, ...] = _help("arms to run: concept, random, none", ("concept", "random"))
    base_epochs: int = _help("epochs of the base fine-tune", 3)
    base_checkpoint: str | None = _help("a saved base tagger to start from instead of fine-tuning", None)
    rounds: int = _help("retraining rounds after pruning", 4)
    round_epochs: int = _help("epochs a retraining round", 1)
    lr: float = _help("peak learning rate", 5e-5)
    batch_size: int = _help("sentences a training step", 16)
    warmup_fraction: float = _help("share of a schedule's steps spent warming up", 0.0)
    restart_optimizer: bool = _help("new optimizer and schedule each round (the paper's protocol)", True)
    seeds: tuple[int, ...] = _help("seeds; several are aggregated with intervals", (0,))
    top_k: int = _help("top tokens kept per neuron", 10)
    max_types: int = _help("most frequent word types competing for top tokens", 2000)
    primed_top: int = _help("best-ranked neurons that count as carrying the concept", 100)

    def to_json(self) -> str:
        """The config as JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        """A config from ``to_json`` output."""
        values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(values) - known:
            raise LensRelearnError(f"Unknown config fields {sorted(unknown)}.")
        for name in ("arms", "seeds"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def stages(self) -> list[str]:
        """The stages of an arm, in order: ``base``, ``pruned``, ``round1`` ... ``roundR``.

        Example:
            >>> ExperimentConfig(rounds=2).stages()
            ['base', 'pruned', 'round1', 'round2']
        """
        return ["base", "pruned"] + [f"round{r}" for r in range(1, self.rounds + 1)]

    def load_data(self) -> NerData:
        """The NER data this config names (the synthetic corpus at its sizes, seed 0)."""
        if self.data == "synthetic":
            return load_ner("synthetic", seed=0, n_train=self.n_train, n_validation=self.n_validation,
                            n_test=self.n_test, n_novel=self.n_novel)
        return load_ner(self.data)


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "n_train": 400, "n_validation": 150, "n_test": 150, "n_novel": 50, "base_epochs": 2,
        "rounds": 2, "lr": 1.5e-4, "batch_size": 16, "max_types": 1000,
        "prune_fraction": 0.2, "primed_top": 50,
    },
    "default": {
        "n_train": 2500, "n_validation": 500, "n_test": 500, "n_novel": 200, "base_epochs": 2,
        "rounds": 3, "lr": 1e-4, "prune_fraction": 0.1,
    },
    "paper": {
        "site": "resid", "prune_fraction": 0.5, "lr": 2e-5, "batch_size": 8, "rounds": 4,
        "round_epochs": 2, "restart_optimizer": True,
    },
}


def preset(name: str, **changes: Any) -> ExperimentConfig:
    """A preset config (``quick``, ``default``, ``paper``) with some fields changed.

    Example:
        >>> preset("paper", model="tiny-bert").site
        'resid'
    """
    if name not in PRESETS:
        raise LensRelearnError(f"Unknown preset {name!r}; the presets are {', '.join(PRESETS)}.")
    return ExperimentConfig(**{**PRESETS[name], **changes})


def _prune_count(config: ExperimentConfig, n_neurons: int) -> int:
    count = config.prune_count if config.prune_count is not None else round(config.prune_fraction * n_neurons)
    if not 0 <= count <= n_neurons:
        raise LensRelearnError(
            f"Cannot prune {count} neurons: the site {config.site!r} of {config.model!r} has {n_neurons}."
        )
    return count


def _check(config: ExperimentConfig) -> None:
    """Refuse impossible configs before anything is loaded or trained."""
    choices = {"site": ("mlp", "resid"), "aggregation": ("first", "last", "average"),
               "ranking": METHODS, "prune_mode": ("mask", "weights"), "prune_value": ("zero", "mean")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise LensRelearnError(f"{name}={getattr(config, name)!r} is not one of {', '.join(allowed)}.")
    if not config.arms or set(config.arms) - set(ARMS) or len(set(config.arms)) != len(config.arms):
        raise LensRelearnError(f"arms={config.arms} must be distinct names among {', '.join(ARMS)}.")
    if not config.seeds:
        raise LensRelearnError("At least one seed is needed.")
    if config.rounds < 1 or config.round_epochs < 1 or config.base_epochs < 1:
        raise LensRelearnError("rounds, round_epochs and base_epochs must be at least 1.")
    if not 0 <= config.prune_fraction <= 1:
        raise LensRelearnError(f"prune_fraction={config.prune_fraction} must lie in [0, 1].")
