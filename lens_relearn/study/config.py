"""What defines a relearning study: ``ExperimentConfig``, checked on construction, and presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints, no_type_check

from lens_relearn.data.alignment import Aggregation
from lens_relearn.data.sentences import FEW, is_retraining_condition
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Site
from lens_relearn.neurons.masks import MaskForget
from lens_relearn.neurons.pruning import Mode, Value
from lens_relearn.neurons.ranking import Method

CONDITION_MARK = "@"  # an arm's name: its removal, then CONDITION_MARK and its retraining data unless "full"


def arm_parts(arm: str) -> tuple[str, str]:
    """An arm's removal (the name of a registered one: ``concept``, ``random``, ``none``, ...) and its retraining
    data; whether the removal is registered is checked when a study starts (``check_plugins``).

    Example:
        >>> arm_parts("concept"), arm_parts("random@concept_as_o"), arm_parts("erase@few:8")
        (('concept', 'full'), ('random', 'concept_as_o'), ('erase', 'few:8'))
        >>> arm_parts("concept@never")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: Unknown arm 'concept@never': an arm is a removal's name ...
    """
    removal, _, condition = arm.partition(CONDITION_MARK)
    condition = condition or "full"
    if not removal.isidentifier() or not is_retraining_condition(condition) or arm.endswith(CONDITION_MARK + "full"):
        raise LensRelearnError(
            f"Unknown arm {arm!r}: an arm is a removal's name (concept, random, none, or one registered), "
            f"optionally followed by {CONDITION_MARK}without_concept, {CONDITION_MARK}concept_as_o or "
            f"{CONDITION_MARK}{FEW}N (retrained without the concept's sentences, with its tags relabelled O, or "
            "with N of its sentences and every sentence without it)."
        )
    return removal, condition


def _help(text: str, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a relearning study; round-trips through JSON.

    A config checks itself on construction (so ``preset``, ``replace`` and ``from_json`` do
    too): every field typed with a ``Literal`` must be one of its values, and counts, rates and
    fractions must be possible. Whatever needs the data or the model (the concept, the prune
    count against the site's size, the model spec) is checked when the study starts.

    Example:
        >>> ExperimentConfig(site="attn")
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: site='attn' is not one of mlp, resid.
    """

    model: str = _help("model spec (minilm, smollm2, tiny-*, a folder or a Hub id)", "minilm")
    data: str = _help(
        "NER source: synthetic, conll2003, hf:ID[:CONFIG], a folder of CoNLL files or a saved DatasetDict",
        "synthetic",
    )
    n_train: int | None = _help("training sentences: generated (synthetic) or at most this many (others)", None)
    n_validation: int | None = _help("validation sentences, as n_train", None)
    n_test: int | None = _help("test sentences, as n_train", None)
    n_novel: int | None = _help("synthetic test sentences with invented place names", None)
    tag_column: str = _help("the tag column of a Hugging Face dataset", "ner_tags")
    concept: str = _help("the concept to remove: an entity type (LOC) or several (GPE,LOC)", "LOC")
    concept_corpus: str = _help(
        "where neurons are ranked: validation (the NER split), a CoNLL file, TOKENS,LABELS files, "
        "a folder with tokens.txt and labels.txt, or an NER source (its validation split)",
        "validation",
    )
    corpus_concept: str | None = _help("the label(s) of the concept in the concept corpus (default: concept)", None)
    site: Site = _help("neuron site: mlp or resid", "mlp")
    aggregation: Aggregation = _help("sub-token pooling: first, last or average", "first")
    ranking: Method = _help(
        "neuron ranking: probeless, binary, entity_contrast, importance_ratio or attribution", "probeless"
    )
    prune_count: int | None = _help("neurons to prune (overrides prune_fraction)", None)
    prune_fraction: float = _help("share of the site's neurons to prune", 0.1)
    prune_mode: Mode = _help("mask (permanent hook) or weights", "mask")
    prune_value: Value = _help("what a masked unit becomes: zero or mean", "zero")
    freeze: bool = _help("weights mode: keep pruned weights at zero during retraining", True)
    arms: tuple[str, ...] = _help(
        "arms to run: a removal (concept, random, none, ...), each optionally retrained @without_concept or "
        "@concept_as_o (e.g. concept@without_concept); the first is the main arm",
        ("concept", "random"),
    )
    analyses: tuple[str, ...] | None = _help(
        "analyses to run (e.g. collateral,probes; default: every registered one that applies)", None
    )
    base_epochs: int = _help("epochs of the base fine-tune", 3)
    base_checkpoint: str | None = _help("a saved base tagger to start from instead of fine-tuning", None)
    rounds: int = _help("retraining rounds after pruning", 4)
    round_epochs: int = _help("epochs a retraining round", 1)
    lr: float = _help("peak learning rate", 5e-5)
    batch_size: int = _help("sentences a training step", 16)
    warmup_fraction: float = _help("share of a schedule's steps spent warming up", 0.0)
    fused_optimizer: bool = _help(
        "AdamW's fused kernel: the same update up to float rounding, in one pass over the weights", False
    )
    restart_optimizer: bool = _help("new optimizer and schedule each round (the paper's protocol)", True)
    seeds: tuple[int, ...] = _help("seeds; several are aggregated with intervals", (0,))
    top_k: int = _help("top tokens kept per neuron", 10)
    max_types: int = _help("most frequent word types competing for top tokens", 2000)
    primed_top: int = _help("best-ranked neurons that count as carrying the concept", 100)
    composition_top: int = _help("top-activating word occurrences a neuron's class composition counts", 50)
    probe_words: int = _help("concept-corpus words a layer probe trains on at most (a seeded subsample)", 10_000)
    relocation_count: int | None = _help(
        "neurons the causal relocation test ablates after the last round (default: as many as pruned)", None
    )
    monitor_sentences: int = _help(
        "validation sentences (a fixed, seeded subset) scored during training for the recovery curves; 0: none", 50
    )
    monitor_every: int | None = _help("steps between recovery-curve points (default: a tenth of a round)", None)
    distance_sentences: int = _help(
        "test sentences (a fixed, seeded subset) whose words the distance from the base model compares", 50
    )
    mask_steps: int = _help("learned_mask arms: optimisation steps of the gates, a batch each", 100)
    mask_lr: float = _help("learned_mask arms: the gates' step size", 0.05)
    mask_forget: MaskForget = _help("learned_mask arms: the concept's words become O, or lose their tag", "outside")

    def __post_init__(self) -> None:
        """Refuse impossible configs before anything is loaded or trained."""
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            kind, value = hints[f.name], getattr(self, f.name)
            if get_origin(kind) is Literal and value not in get_args(kind):
                raise LensRelearnError(f"{f.name}={value!r} is not one of {_listed(get_args(kind))}.")
            if get_origin(kind) is tuple and get_origin(get_args(kind)[0]) is Literal:
                allowed = get_args(get_args(kind)[0])
                if not value or len(set(value)) != len(value) or set(value) - set(allowed):
                    raise LensRelearnError(f"{f.name}={value!r} must be distinct names among {_listed(allowed)}.")
        if not self.arms or len(set(self.arms)) != len(self.arms):
            raise LensRelearnError(f"arms={self.arms!r} must be one or more distinct arms.")
        for arm in self.arms:
            arm_parts(arm)
        if self.analyses is not None and len(set(self.analyses)) != len(self.analyses):
            raise LensRelearnError(f"analyses={self.analyses!r} names an analysis twice.")
        if not self.seeds:
            raise LensRelearnError("At least one seed is needed.")
        for name in (
            "rounds",
            "round_epochs",
            "base_epochs",
            "batch_size",
            "top_k",
            "max_types",
            "primed_top",
            "composition_top",
            "probe_words",
            "distance_sentences",
            "mask_steps",
        ):
            if getattr(self, name) < 1:
                raise LensRelearnError(f"{name}={getattr(self, name)} must be at least 1.")
        for name in ("n_train", "n_validation", "n_test", "n_novel"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise LensRelearnError(f"{name}={getattr(self, name)} must be at least 0 (or None: the source's own).")
        if self.monitor_sentences < 0:
            raise LensRelearnError(f"monitor_sentences={self.monitor_sentences} must be at least 0 (0: none).")
        if self.monitor_every is not None and self.monitor_every < 1:
            raise LensRelearnError(f"monitor_every={self.monitor_every} must be at least 1 (or None: a tenth a round).")
        if self.relocation_count is not None and self.relocation_count < 1:
            raise LensRelearnError(f"relocation_count={self.relocation_count} must be at least 1 (or None).")
        if self.prune_count is not None and self.prune_count < 0:
            raise LensRelearnError(f"prune_count={self.prune_count} must be at least 0 (or None).")
        if not 0 <= self.prune_fraction <= 1:
            raise LensRelearnError(f"prune_fraction={self.prune_fraction} must lie in [0, 1].")
        if not 0 <= self.warmup_fraction < 1:
            raise LensRelearnError(f"warmup_fraction={self.warmup_fraction} must lie in [0, 1).")
        for name in ("lr", "mask_lr"):
            if not getattr(self, name) > 0:
                raise LensRelearnError(f"{name}={getattr(self, name)} must be greater than 0.")

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
        for name in ("arms", "seeds", "analyses"):
            if values.get(name) is not None:
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

    def prune_count_for(self, n_neurons: int) -> int:
        """How many neurons an arm removes from a site of ``n_neurons``: ``prune_count``, or ``prune_fraction`` of them.

        Example:
            >>> ExperimentConfig(prune_fraction=0.1).prune_count_for(9216)
            922
        """
        count = self.prune_count if self.prune_count is not None else round(self.prune_fraction * n_neurons)
        if not 0 <= count <= n_neurons:
            raise LensRelearnError(
                f"Cannot prune {count} neurons: the site {self.site!r} of {self.model!r} has {n_neurons}."
            )
        return count

    def sizes(self) -> dict[str, int]:
        """The sizes given (``n_train`` ...), by name."""
        return {name: getattr(self, name) for name in SIZES if getattr(self, name) is not None}


# A config checks its own Literal fields in __post_init__ and raises LensRelearnError naming the
# allowed values; a runtime type checker on the generated __init__ (the tests' jaxtyping hook)
# would refuse a bad value first with its own error. Only __init__ is exempt: the class keeps its
# annotations, which __post_init__ reads.
no_type_check(ExperimentConfig.__init__)


SIZES = ("n_train", "n_validation", "n_test", "n_novel")

PRESETS_DEFAULT: dict[str, Any] = {
    "n_train": 2500,
    "n_validation": 500,
    "n_test": 500,
    "n_novel": 200,
    "base_epochs": 2,
    "rounds": 3,
    "lr": 1e-4,
    "prune_fraction": 0.1,
    "ranking": "importance_ratio",  # the most selective removal of LOC at 10% (docs/design.md §17)
}
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "n_train": 400,
        "n_validation": 150,
        "n_test": 150,
        "n_novel": 50,
        "base_epochs": 2,
        "rounds": 2,
        "lr": 1.5e-4,
        "batch_size": 16,
        "max_types": 1000,
        "prune_fraction": 0.2,
        "primed_top": 50,
    },
    "default": PRESETS_DEFAULT,
    "default3": {  # the default study over three seeds, every retraining condition beside the full one
        **PRESETS_DEFAULT,
        "seeds": (0, 1, 2),
        "arms": ("concept", "random", "concept@without_concept", "concept@concept_as_o"),
    },
    "compare": {  # the default study with every removal, each also retrained without the concept (docs/design.md §24)
        **PRESETS_DEFAULT,
        "arms": tuple(
            f"{removal}{condition}"
            for condition in ("", "@without_concept")
            for removal in ("concept", "random", "learned_mask", "erase")
        ),
    },
    "attacks": {  # how little brings it back: every removal, retrained on 0 to 128 of the concept's sentences (§25)
        **PRESETS_DEFAULT,
        "seeds": (0, 1, 2),
        "rounds": 1,
        "arms": tuple(
            f"{removal}{condition}"
            for removal in ("concept", "random", "learned_mask", "erase")
            for condition in ("@few:0", "@few:8", "@few:32", "@few:128", "", "@concept_as_o")
        ),
    },
    "decoder": {  # SmolLM2 (30 layers x 1536 MLP units), calibrated as default was for MiniLM (docs/findings.md)
        "model": "smollm2",
        "n_train": 1200,
        "n_validation": 300,
        "n_test": 300,
        "n_novel": 100,
        "base_epochs": 3,
        "rounds": 3,
        "lr": 1e-4,
        "ranking": "importance_ratio",
        "prune_fraction": 0.02,
        "fused_optimizer": True,
    },
    "paper": {
        "site": "resid",
        "prune_fraction": 0.5,
        "lr": 2e-5,
        "batch_size": 8,
        "rounds": 4,
        "round_epochs": 2,
        "restart_optimizer": True,
    },
}


def preset(name: str, **changes: Any) -> ExperimentConfig:
    """A preset config (``quick``, ``default``, ``default3``, ``compare``, ``attacks``, ``decoder``, ``paper``) with
    some fields changed.

    A preset's sizes are those of the synthetic corpus: with other data, every split is used
    whole unless a size is among ``changes``.

    Example:
        >>> preset("paper", model="tiny-bert").site
        'resid'
        >>> preset("quick").n_train, preset("quick", data="conll2003").n_train
        (400, None)
    """
    if name not in PRESETS:
        raise LensRelearnError(f"Unknown preset {name!r}; the presets are {', '.join(PRESETS)}.")
    fields = dict(PRESETS[name])
    if changes.get("data", "synthetic") != "synthetic":
        fields = {key: value for key, value in fields.items() if key not in SIZES}
    return ExperimentConfig(**{**fields, **changes})


def _listed(values: tuple) -> str:
    return ", ".join(map(str, values))


RemovalMethod = Literal["ranking", "learned_mask"]


@dataclass(frozen=True)
class RemovalConfig:
    """Everything that defines an iterative removal run; round-trips through JSON.

    The ``study`` config gives the model, the data, the concept and its corpus, the site, the
    ranking, the learned mask's settings, the pruning mode, the base fine-tune and the training
    settings (its arms, rounds and relocation settings are not used). Its first seed is the run's.
    ``method`` says how the concept arm chooses an iteration's neurons: the study's ranking on the
    current model, or a mask learned on it (``learn_mask``, the pruned neurons left out).

    Example:
        >>> RemovalConfig(step_fraction=0.0)
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: step_fraction=0.0 must lie in (0, 1].
    """

    study: ExperimentConfig = field(default_factory=lambda: preset("default"))
    method: RemovalMethod = "ranking"
    step_fraction: float = 0.05
    step_count: int | None = None
    retrain_epochs: int = 1
    gone_share: float = 0.5
    patience: int = 2
    floor_share: float = 0.9
    max_iterations: int = 10
    max_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in get_args(RemovalMethod):
            raise LensRelearnError(
                f"Unknown removal method {self.method!r}; choose one of {', '.join(get_args(RemovalMethod))}."
            )
        if not 0 < self.step_fraction <= 1:
            raise LensRelearnError(f"step_fraction={self.step_fraction} must lie in (0, 1].")
        if self.step_count is not None and self.step_count < 1:
            raise LensRelearnError(f"step_count={self.step_count} must be at least 1 (or None: step_fraction).")
        for name in ("retrain_epochs", "patience", "max_iterations"):
            if getattr(self, name) < 1:
                raise LensRelearnError(f"{name}={getattr(self, name)} must be at least 1.")
        for name in ("gone_share", "floor_share", "max_fraction"):
            if not 0 <= getattr(self, name) <= 1.5:
                raise LensRelearnError(f"{name}={getattr(self, name)} must lie in [0, 1.5] (a share of base F1).")

    def to_json(self) -> str:
        """The config as JSON (the study config nested)."""
        values = dataclasses.asdict(self)
        values["study"] = json.loads(self.study.to_json())
        return json.dumps(values, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RemovalConfig:
        """A config from ``to_json`` output."""
        values = json.loads(text)
        values["study"] = ExperimentConfig.from_json(json.dumps(values["study"]))
        return cls(**values)

    def replace(self, **changes: Any) -> RemovalConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def step(self, n_neurons: int) -> int:
        """Neurons pruned an iteration, of a site of ``n_neurons``."""
        return self.step_count or max(1, round(self.step_fraction * n_neurons))


no_type_check(RemovalConfig.__init__)  # Literal fields checked in __post_init__, as ExperimentConfig's


REMOVAL_PRESETS: dict[str, dict[str, Any]] = {
    # MiniLM on the default study's data and ranking: 5% of the MLP neurons an iteration, one epoch of
    # retraining, at most 8 iterations (40%); about 22 minutes on 2 CPU cores.
    "removal": {"study": "default", "step_fraction": 0.05, "retrain_epochs": 1, "max_iterations": 8, "patience": 2},
}


def removal_preset(name: str, **changes: Any) -> RemovalConfig:
    """A removal preset with some fields changed (``study=`` takes an ``ExperimentConfig``).

    Example:
        >>> removal_preset("removal").study.ranking, removal_preset("removal").max_iterations
        ('importance_ratio', 8)
    """
    if name not in REMOVAL_PRESETS:
        raise LensRelearnError(f"Unknown removal preset {name!r}; the presets are {', '.join(REMOVAL_PRESETS)}.")
    fields = dict(REMOVAL_PRESETS[name])
    fields["study"] = preset(fields["study"])
    return RemovalConfig(**{**fields, **changes})
