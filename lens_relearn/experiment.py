"""The relearning study: fine-tune, rank, prune, retrain in rounds, and measure every stage.

For each seed: the base tagger is fine-tuned (or loaded) and described; then each arm starts
from it: ``concept`` prunes the top concept neurons, ``random`` the same number of random
neurons from the same site, ``none`` nothing (a control); each arm is evaluated after pruning
and after every retraining round. Describing a stage means: F1 on validation, test and the
novel-name split; activation statistics on the concept corpus (the validation split, never
the test split); the ranking and its saliency; every neuron's top tokens and their similarity
to the base model's. Every stage is written to ``out_dir`` atomically as it finishes, so an
interrupted run resumes after its last finished stage and ends with the same results.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lens_relearn.activations import TopTokens, collect_stats, top_tokens
from lens_relearn.analysis import (
    InputEmbedder,
    interval,
    layer_table,
    neuron_table,
    primed_neurons,
    spearman,
    token_vector,
)
from lens_relearn.data import NerData, entity_class, find_concept, labels_of, load_ner
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models import Neuron, NeuronSite, load_model, neuron_site
from lens_relearn.pruning import PrunedNeurons, prune, random_neurons
from lens_relearn.ranking import METHODS, Ranking, rank_neurons
from lens_relearn.tagger import Schedule, Tagger, evaluate_tagger, steps_per_epoch, train_tagger

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


def _write_json(path: Path, value: Any) -> None:
    replace_file(path, lambda staging: staging.write_text(json.dumps(value, indent=2)))


def _write_table(path: Path, table: pd.DataFrame) -> None:
    if path.suffix == ".parquet":
        replace_file(path, lambda staging: table.to_parquet(staging, index=False))
    else:
        replace_file(path, lambda staging: table.to_csv(staging, index=False))


class _Study:
    """One run of a config in a folder; each stage is computed once and read back after."""

    def __init__(self, config: ExperimentConfig, out_dir: Path, progress: bool) -> None:
        self.config = config
        self.out = out_dir
        self.progress = progress
        self.data = config.load_data()
        self.concept = find_concept(config.concept, labels_of(self.data.validation))
        model = load_model(config.model)
        self.site = neuron_site(model, config.site)
        self.count = _prune_count(config, self.site.n_neurons)
        self.embedder = InputEmbedder(model)
        concept_words = sorted({w for s in self.data.validation for w, t in zip(s.words, s.tags)
                                if entity_class(t) == self.concept.name})
        self.concept_vector = token_vector(self.embedder, concept_words)
        self.splits = {k: v for k, v in self.data.splits().items() if k != "train"}

    # Stages -------------------------------------------------------------------------------

    def run(self) -> dict:
        for seed in self.config.seeds:
            base = self._base(seed)
            for arm in self.config.arms:
                self._arm(seed, arm, base)
        return self._summarise()

    def _stage_dir(self, seed: int, arm: str, stage: str) -> Path:
        return self.out / f"seed{seed}" / ("" if stage == "base" else arm) / stage

    def _base(self, seed: int) -> Path:
        folder = self._stage_dir(seed, "", "base")
        if not (folder / "stage.json").is_file():
            start = time.perf_counter()
            if self.config.base_checkpoint:
                tagger = Tagger.load(self.config.base_checkpoint)
            else:
                tagger = Tagger(load_model(self.config.model), self.data.labels,
                                aggregation=self.config.aggregation, seed=seed)
                train_tagger(tagger, self.data.train, epochs=self.config.base_epochs, lr=self.config.lr,
                             batch_size=self.config.batch_size, seed=seed,
                             warmup_fraction=self.config.warmup_fraction, progress=self.progress)
            tagger.save(folder / "tagger")
            self._describe(tagger, folder, seed, "", "base", pruned=None, start=start)
        return folder

    def _arm(self, seed: int, arm: str, base: Path) -> None:
        pruned_dir = self._stage_dir(seed, arm, "pruned")
        tagger = Tagger.load(base / "tagger")
        neurons = self._choose(seed, arm, base, pruned_dir, tagger)
        handle = prune(tagger.model, neurons, site=self.config.site, mode=self.config.prune_mode,
                       value=self.config.prune_value, means=self._means(base), freeze=self.config.freeze)
        if not (pruned_dir / "stage.json").is_file():
            self._describe(tagger, pruned_dir, seed, arm, "pruned", pruned=handle, start=time.perf_counter())
        epoch_steps = steps_per_epoch(len(self.data.train), self.config.batch_size)
        schedule = None
        if not self.config.restart_optimizer:
            schedule = Schedule(tagger, steps=self.config.rounds * self.config.round_epochs * epoch_steps,
                                lr=self.config.lr, warmup_fraction=self.config.warmup_fraction)
        for round_number in range(1, self.config.rounds + 1):
            folder = self._stage_dir(seed, arm, f"round{round_number}")
            if (folder / "stage.json").is_file():
                continue
            previous = self._stage_dir(seed, arm, f"round{round_number - 1}")
            if round_number > 1:
                tagger.load_weights(previous / "tagger")
                if schedule is not None:
                    schedule.load_state_dict(torch.load(previous / "schedule.pt", weights_only=False))
            start = time.perf_counter()
            train_tagger(tagger, self.data.train, epochs=self.config.round_epochs, lr=self.config.lr,
                         batch_size=self.config.batch_size, seed=seed * 1000 + round_number,
                         warmup_fraction=self.config.warmup_fraction, schedule=schedule,
                         progress=self.progress)
            tagger.save(folder / "tagger")
            if schedule is not None:
                replace_file(folder / "schedule.pt", lambda staging: torch.save(schedule.state_dict(), staging))
            self._describe(tagger, folder, seed, arm, f"round{round_number}", pruned=handle, start=start)
        handle.remove()

    def _choose(self, seed: int, arm: str, base: Path, pruned_dir: Path, tagger: Tagger) -> list[Neuron]:
        """The neurons an arm prunes, chosen once and kept in ``pruned.json``."""
        path = pruned_dir / "pruned.json"
        if path.is_file():
            return [Neuron(*n) for n in json.loads(path.read_text())]
        if arm == "concept":
            ranking = Ranking(self.concept.name, self.config.ranking, self.config.site,
                              torch.tensor(pd.read_parquet(base / "neurons.parquet")
                                           .sort_values(["layer", "index"])["score"].to_numpy())
                              .view(self.site.n_layers, self.site.units))
            neurons = ranking.top(self.count)
        elif arm == "random":
            neurons = random_neurons(tagger.model, self.count, site=self.config.site, seed=seed)
        else:
            neurons = []
        pruned_dir.mkdir(parents=True, exist_ok=True)
        _write_json(path, [list(n) for n in neurons])
        return neurons

    def _means(self, base: Path) -> torch.Tensor | None:
        return _unit_means(base, self.site) if self.config.prune_value == "mean" else None

    def _describe(self, tagger: Tagger, folder: Path, seed: int, arm: str, stage: str,
                  pruned: PrunedNeurons | None, start: float) -> None:
        """Evaluate and describe a stage, then mark it finished (``stage.json`` last)."""
        folder.mkdir(parents=True, exist_ok=True)
        scores = {split: evaluate_tagger(tagger, sentences) for split, sentences in self.splits.items()}
        corpus = self.data.validation
        stats = collect_stats(tagger.model, corpus, site=self.config.site,
                              aggregation=self.config.aggregation, progress=self.progress)
        ranking = rank_neurons(stats, self.concept, method=self.config.ranking)
        every = [Neuron(l, i) for l in range(self.site.n_layers) for i in range(self.site.units)]
        described = top_tokens(tagger.model, corpus, stats, every, k=self.config.top_k,
                               max_types=self.config.max_types, progress=self.progress)
        base_tokens = None if stage == "base" else _read_top_tokens(self._stage_dir(seed, "", "base"))
        removed = pruned.neurons if pruned else ()
        table = neuron_table(ranking, described, self.embedder, base=base_tokens,
                             concept_vector=self.concept_vector, pruned=removed)
        table["mean"] = stats.mean().flatten().tolist()
        _write_table(folder / "neurons.parquet", table)
        _write_table(folder / "layers.csv", layer_table(ranking, removed))
        record = {
            "seed": seed, "arm": arm or None, "stage": stage, "scores": scores,
            "pruned": len(removed), "regrowth": pruned.regrowth() if pruned else None,
            "seconds": time.perf_counter() - start,
        }
        _write_json(folder / "stage.json", record)

    # Summary ------------------------------------------------------------------------------

    def _records(self) -> list[dict]:
        records = []
        for seed in self.config.seeds:
            for arm in self.config.arms:
                for stage in self.config.stages():
                    folder = self._stage_dir(seed, arm, stage)
                    record = json.loads((folder / "stage.json").read_text())
                    records.append({**record, "arm": arm, "folder": folder})
        return records

    def _summarise(self) -> dict:
        records = self._records()
        config = self.config
        performance = pd.DataFrame([
            {"seed": r["seed"], "arm": r["arm"], "stage": r["stage"], "split": split,
             "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
             "concept_f1": s["per_type"].get(self.concept.name, {}).get("f1", 0.0),
             "token_accuracy": s["token_accuracy"]}
            for r in records for split, s in r["scores"].items()
        ])
        _write_table(self.out / "performance.csv", performance)
        neurons, layers = [], []
        for r in records:
            keys = {"seed": r["seed"], "arm": r["arm"], "stage": r["stage"]}
            neurons.append(pd.read_parquet(r["folder"] / "neurons.parquet").assign(**keys))
            layers.append(pd.read_csv(r["folder"] / "layers.csv").assign(**keys))
        neurons_all = pd.concat(neurons, ignore_index=True)
        layers_all = pd.concat(layers, ignore_index=True)
        _write_table(self.out / "neurons.parquet", neurons_all)
        _write_table(self.out / "layers.csv", layers_all)

        def curve(arm: str, column: str) -> dict:
            test = performance[(performance.arm == arm) & (performance.split == "test")]
            per_stage = {stage: interval(test[test.stage == stage][column].tolist())
                         for stage in self.config.stages()}
            rounds = [per_stage[f"round{r}"]["mean"] for r in range(1, config.rounds + 1)]
            return {"base": per_stage["base"]["mean"], "pruned": per_stage["pruned"]["mean"],
                    "rounds": rounds, "intervals": per_stage}

        main_arm = config.arms[0]
        final = f"round{config.rounds}"
        primed = []
        correlations = []
        for seed in config.seeds:
            at = neurons_all[(neurons_all.seed == seed) & (neurons_all.arm == main_arm)]
            base_table, final_table = at[at.stage == "base"], at[at.stage == final]
            chosen = primed_neurons(base_table, final_table, top=config.primed_top)
            primed.append(chosen.assign(seed=seed))
            alive = final_table[~final_table.pruned]
            correlations.append(spearman(alive.saliency.tolist(), alive.similarity_to_base.tolist()))
        primed_all = pd.concat(primed, ignore_index=True)
        _write_table(self.out / "primed.csv", primed_all)

        def layer_means(arm: str, stage: str, column: str) -> list[float]:
            rows = layers_all[(layers_all.arm == arm) & (layers_all.stage == stage)]
            return rows.groupby("layer")[column].mean().round(12).tolist()

        summary = {
            "model": config.model, "concept": self.concept.name, "site": config.site,
            "ranking": config.ranking, "aggregation": config.aggregation, "seeds": list(config.seeds),
            "pruned": {"count": self.count, "of": self.site.n_neurons, "mode": config.prune_mode,
                       "value": config.prune_value, "arm": main_arm},
            "f1": curve(main_arm, "f1"), "concept_f1": curve(main_arm, "concept_f1"),
            "layer_saliency": {stage: layer_means(main_arm, stage, "mean") for stage in self.config.stages()},
            "redistribution": {"base": layer_means(main_arm, "base", "salient_share"),
                               "final": layer_means(main_arm, final, "salient_share")},
            "primed_neurons": len(primed_all),
            "saliency_similarity_spearman": interval(correlations),
            "seconds": sum(r["seconds"] for r in records if r["stage"] != "base" or r["arm"] == main_arm),
        }
        for arm, key in (("random", "random_baseline"), ("none", "control")):
            if arm in config.arms and arm != main_arm:
                summary[key] = {"f1": curve(arm, "f1"), "concept_f1": curve(arm, "concept_f1")}
        return summary


def _prune_count(config: ExperimentConfig, n_neurons: int) -> int:
    count = config.prune_count if config.prune_count is not None else round(config.prune_fraction * n_neurons)
    if not 0 <= count <= n_neurons:
        raise LensRelearnError(
            f"Cannot prune {count} neurons: the site {config.site!r} of {config.model!r} has {n_neurons}."
        )
    return count


def _unit_means(base: Path, site: NeuronSite) -> torch.Tensor:
    """Each neuron's mean activation on the concept corpus at the base stage."""
    table = pd.read_parquet(base / "neurons.parquet").sort_values(["layer", "index"])
    return torch.tensor(table["mean"].to_numpy()).view(site.n_layers, site.units)


def _read_top_tokens(folder: Path) -> TopTokens:
    """The top tokens of a finished stage, read back from its neuron table."""
    table = pd.read_parquet(folder / "neurons.parquet").sort_values(["layer", "index"])
    neurons = tuple(Neuron(int(l), int(i)) for l, i in zip(table.layer, table["index"]))
    tokens = tuple(tuple((w, 1.0) for w in text.split()) for text in table.top_tokens)
    return TopTokens(neurons, tokens, tuple(() for _ in neurons))


def load_stage(out_dir: str | Path, stage: str, *, seed: int = 0, arm: str = "concept") -> Tagger:
    """The tagger of a finished stage, with its arm's pruning applied (mask hooks included).

    Args:
        out_dir: A study's folder.
        stage: ``base``, ``pruned`` or ``round1`` ... ``roundR``.
        seed: Which seed's run.
        arm: ``concept``, ``random`` or ``none`` (ignored for ``base``).

    Example:
        >>> # tagger = load_stage("runs/default", "round3")
        >>> # tagger.model.run_with_cache(...) then shows the pruned, retrained model's activations
    """
    out = Path(out_dir)
    config = ExperimentConfig.from_json((out / "config.json").read_text())
    tagger = Tagger.load(out / f"seed{seed}" / "base" / "tagger")
    if stage == "base":
        return tagger
    folder = out / f"seed{seed}" / arm
    if not (folder / stage / "stage.json").is_file():
        raise LensRelearnError(f"{folder / stage} is not a finished stage of {out}.")
    neurons = [Neuron(*n) for n in json.loads((folder / "pruned" / "pruned.json").read_text())]
    means = None
    if config.prune_value == "mean":
        means = _unit_means(out / f"seed{seed}" / "base", neuron_site(tagger.model, config.site))
    prune(tagger.model, neurons, site=config.site, mode=config.prune_mode, value=config.prune_value,
          means=means, freeze=config.freeze)
    if stage != "pruned":
        tagger.load_weights(folder / stage / "tagger")
    return tagger.eval()


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


def run_experiment(config: ExperimentConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Run (or resume) a relearning study and write its results to ``out_dir``.

    Args:
        config: What to run.
        out_dir: Where results go: ``config.json``, ``summary.json``, ``performance.csv``,
            ``layers.csv``, ``neurons.parquet``, ``primed.csv``, and one folder a stage (with
            the tagger after each round). A folder holding an interrupted run of the same
            config is resumed after its last finished stage.
        progress: Show progress bars.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        LensRelearnError: The config asks for something impossible (checked before training),
            or ``out_dir`` holds a run of a different config.
    """
    _check(config)
    out = Path(out_dir)
    config_path = out / "config.json"
    if config_path.is_file():
        existing = ExperimentConfig.from_json(config_path.read_text())
        if existing != config:
            changed = [f.name for f in dataclasses.fields(config)
                       if getattr(existing, f.name) != getattr(config, f.name)]
            raise LensRelearnError(
                f"{out} holds a run of a different config (differs in {', '.join(changed)}); "
                "choose another folder or delete it."
            )
    study = _Study(config, out, progress)  # loads data and model, checks concept, site and count
    out.mkdir(parents=True, exist_ok=True)
    if not config_path.is_file():
        replace_file(config_path, lambda staging: staging.write_text(config.to_json()))
    summary = study.run()
    _write_json(out / "summary.json", summary)
    return summary
