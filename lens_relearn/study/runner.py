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
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lens_relearn.data.sentences import entity_class, find_concept, labels_of
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.loading import load_model
from lens_relearn.models.sites import Neuron, NeuronSite, neuron_site
from lens_relearn.neurons.activations import TopTokens, collect_stats, top_tokens
from lens_relearn.neurons.pruning import PrunedNeurons, prune, random_neurons
from lens_relearn.neurons.ranking import Ranking, rank_neurons
from lens_relearn.study.config import ExperimentConfig, _check, _prune_count
from lens_relearn.study.statistics import interval, spearman
from lens_relearn.study.tables import InputEmbedder, layer_table, neuron_table, primed_neurons, token_vector
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import evaluate_tagger
from lens_relearn.tagger.training import Schedule, steps_per_epoch, train_tagger


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
