"""The relearning study: fine-tune, rank, prune, retrain in rounds, and measure every stage.

For each seed: the base tagger is fine-tuned (or loaded) and described; then each arm starts
from it: ``concept`` prunes the top concept neurons, ``random`` the same number of random
neurons from the same site, ``none`` nothing (a control); each arm is evaluated after pruning
and after every retraining round. Describing a stage means: F1 on validation, test and the
novel-name split; activation statistics on the concept corpus (the validation split or a
corpus of its own, ``ExperimentConfig.concept_corpus``; never the test split); the ranking
and its saliency; every neuron's top tokens and their similarity to the base model's. Every
stage is written to ``out_dir`` atomically as it finishes, so an interrupted run resumes
after its last finished stage and ends with the same results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from einops import rearrange

from lens_relearn import parallel
from lens_relearn.data.sentences import Concept, Sentence, find_concept, labels_of, retraining_sentences
from lens_relearn.data.sources import subsample
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.loading import load_model, quiet_libraries
from lens_relearn.models.sites import Neuron, NeuronSite, neuron_site
from lens_relearn.neurons.activations import TopTokens, top_tokens
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.passes import shared_pass
from lens_relearn.neurons.probes import probe_layers
from lens_relearn.neurons.pruning import PrunedNeurons, prune, random_neurons
from lens_relearn.neurons.ranking import Ranking, rank_neurons
from lens_relearn.stats import interval, selectivity, spearman
from lens_relearn.study.config import ExperimentConfig, _prune_count, arm_parts
from lens_relearn.study.run_folder import RunFolder
from lens_relearn.study.tables import (
    InputEmbedder,
    layer_table,
    neuron_table,
    primed_neurons,
    recovery_measures,
    token_vector,
)
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores, evaluate_tagger, score_predictions
from lens_relearn.tagger.training import Schedule, steps_per_epoch

ACTIVATION_CACHE_BYTES = 2**30  # at most this much of the concept corpus's word activations is kept for top tokens
DYNAMICS = ["seed", "arm", "stage", "step", "examples", "f1", "concept_f1", "other_f1"]  # dynamics.csv's columns


class _Study:
    """One run of a config in a folder; each stage is computed once and read back after."""

    def __init__(self, config: ExperimentConfig, folder: RunFolder, progress: bool, device: torch.device) -> None:
        self.config = config
        self.folder = folder
        self.progress = progress and parallel.is_main()
        self.device = device
        self.data = config.load_data()
        self.concept = find_concept(config.concept, self.data.labels)
        self.corpus, self.corpus_concept = config.load_concept_corpus(self.data)
        if config.ranking == "attribution" and (unknown := set(labels_of(self.corpus)) - set(self.data.labels)):
            raise LensRelearnError(
                f"The attribution ranking scores the tagger's loss, so the concept corpus must carry the tagger's "
                f"labels; {config.concept_corpus} has {', '.join(sorted(unknown))}."
            )
        model = load_model(config.model, device=device)
        self.site = neuron_site(model, config.site)
        self.count = _prune_count(config, self.site.n_neurons)
        self.embedder = InputEmbedder(model)
        self.concept_vector = token_vector(self.embedder, self.corpus_concept.words(self.corpus))
        self.splits = {k: v for k, v in self.data.splits().items() if k != "train"}
        self.monitor_set = subsample(self.data.validation, config.monitor_sentences, 0, "monitor")
        self.concept_arm = next((arm for arm in config.arms if arm_parts(arm)[0] == "concept"), None)
        self.training = {arm: self._training_sentences(arm) for arm in config.arms}
        # The corpus's activations serve the top tokens from the shared pass when they fit (else a pass of their own).
        self.keep_activations = sum(map(len, self.corpus)) * self.site.n_neurons * 4 <= ACTIVATION_CACHE_BYTES

    def _training_sentences(self, arm: str) -> list[Sentence]:
        """What an arm retrains on: the training split, without the concept's sentences, or with its tags as O."""
        condition = arm_parts(arm)[1]
        sentences = retraining_sentences(self.data.train, self.concept, condition)
        if not sentences:
            raise LensRelearnError(
                f"The arm {arm!r} has no sentences to retrain on: every training sentence holds {self.concept.name}."
            )
        return sentences

    # Stages -------------------------------------------------------------------------------

    def run(self) -> dict:
        for seed in self.config.seeds:
            self._base(seed)
            for arm in self.config.arms:
                self._arm(seed, arm)
            if self.concept_arm is not None:
                self._relocation(seed)
        return self._summarise()

    def _base(self, seed: int) -> None:
        if not self.folder.is_finished(seed, "", "base"):
            start = time.perf_counter()
            if self.config.base_checkpoint:
                tagger = Tagger.load(self.config.base_checkpoint, device=self.device)
                curve = [self._monitor_point(tagger, seed, "", "base", 0, 0)] if self.monitor_set else []
            else:
                tagger = self.config.new_tagger(self.data.labels, seed, self.device)
                steps = self.config.base_epochs * steps_per_epoch(len(self.data.train), self.config.batch_size)
                curve, monitor = self._monitored(tagger, seed, "", "base", 0, 0)
                self.config.train(
                    tagger,
                    self.data.train,
                    epochs=self.config.base_epochs,
                    seed=seed,
                    progress=self.progress,
                    monitor=monitor,
                    monitor_every=self._monitor_every(steps),
                )
            tagger.save(self.folder.tagger_dir(seed, "", "base"))
            self._describe(tagger, seed, "", "base", pruned=None, start=start, curve=curve)

    def _arm(self, seed: int, arm: str) -> None:
        tagger = Tagger.load(self.folder.tagger_dir(seed, arm, "base"), device=self.device)
        neurons = self._choose(seed, arm, tagger)
        handle = prune(
            tagger.model,
            neurons,
            site=self.config.site,
            mode=self.config.prune_mode,
            value=self.config.prune_value,
            means=self._means(seed),
            freeze=self.config.freeze,
        )
        if not self.folder.is_finished(seed, arm, "pruned"):
            start = time.perf_counter()
            curve = [self._monitor_point(tagger, seed, arm, "pruned", 0, 0)] if self.monitor_set else []
            self._describe(tagger, seed, arm, "pruned", pruned=handle, start=start, curve=curve)
        sentences = self.training[arm]
        epoch_steps = steps_per_epoch(len(sentences), self.config.batch_size)
        round_steps = self.config.round_epochs * epoch_steps
        schedule = None
        if not self.config.restart_optimizer:
            schedule = Schedule(
                tagger,
                steps=self.config.rounds * self.config.round_epochs * epoch_steps,
                lr=self.config.lr,
                warmup_fraction=self.config.warmup_fraction,
            )
        for round_number in range(1, self.config.rounds + 1):
            stage, previous = f"round{round_number}", f"round{round_number - 1}"
            if self.folder.is_finished(seed, arm, stage):
                continue
            if round_number > 1:
                tagger.load_weights(self.folder.tagger_dir(seed, arm, previous))
                if schedule is not None:
                    schedule.load_state_dict(self.folder.schedule(seed, arm, previous))
            start = time.perf_counter()
            done = round_number - 1
            curve, monitor = self._monitored(
                tagger, seed, arm, stage, done * round_steps, done * self.config.round_epochs * len(sentences)
            )
            self.config.train(
                tagger,
                sentences,
                epochs=self.config.round_epochs,
                seed=seed * 1000 + round_number,
                progress=self.progress,
                schedule=schedule,
                monitor=monitor,
                monitor_every=self._monitor_every(round_steps),
            )
            tagger.save(self.folder.tagger_dir(seed, arm, stage))
            if schedule is not None:
                self.folder.write_schedule(seed, arm, stage, schedule.state_dict())
            self._describe(tagger, seed, arm, stage, pruned=handle, start=start, curve=curve)
        handle.remove()

    def _monitor_every(self, steps: int) -> int:
        """Steps between recovery-curve points: the config's, or a tenth of the training run (at least 1)."""
        return self.config.monitor_every or max(1, math.ceil(steps / 10))

    def _monitored(
        self, tagger: Tagger, seed: int, arm: str, stage: str, step: int, examples: int
    ) -> tuple[list[dict], Callable[[int, int], None] | None]:
        """A list that fills with recovery-curve points, and the monitor for ``train_tagger`` that fills it.

        ``step`` and ``examples`` are where this training run starts on the curve (rounds continue it).
        """
        curve: list[dict] = []
        if not self.monitor_set:
            return curve, None

        def monitor(steps: int, seen: int) -> None:
            curve.append(self._monitor_point(tagger, seed, arm, stage, step + steps, examples + seen))

        return curve, monitor

    def _monitor_point(self, tagger: Tagger, seed: int, arm: str, stage: str, step: int, examples: int) -> dict:
        """One point of a recovery curve: F1, concept F1 and other types' F1 on the monitor sentences."""
        scores = evaluate_tagger(tagger, self.monitor_set)
        return {
            "seed": seed,
            "arm": arm or None,
            "stage": stage,
            "step": step,
            "examples": examples,
            "f1": scores["f1"],
            "concept_f1": concept_scores(scores, self.concept.members)["f1"],
            "other_f1": _mean_f1(scores, self.concept.contrast),
        }

    def _choose(self, seed: int, arm: str, tagger: Tagger) -> list[Neuron]:
        """The neurons an arm prunes, chosen once and kept in the run folder."""
        if self.folder.has_pruned(seed, arm):
            return self.folder.pruned(seed, arm)
        pruning = arm_parts(arm)[0]
        if pruning == "concept":
            scores = self.folder.stage_table(seed, arm, "base")["score"].to_numpy()
            ranking = Ranking(
                self.concept.name,
                self.config.ranking,
                self.config.site,
                rearrange(torch.tensor(scores), "(layers units) -> layers units", units=self.site.units),
            )
            neurons = ranking.top(self.count)
        elif pruning == "random":
            neurons = random_neurons(tagger.model, self.count, site=self.config.site, seed=seed)
        else:
            neurons = []
        self.folder.write_pruned(seed, arm, neurons)
        return neurons

    def _regrowth_split(self, tagger: Tagger, seed: int, table: pd.DataFrame, removed: Sequence[Neuron]) -> dict:
        """Regrowth or relocation (weights mode, unfrozen; design §18): how much of the concept's
        saliency sits on regrown pruned units, and the concept's F1 with them masked again."""
        masked_again = self._test_scores(tagger, seed, removed)
        top = table.position < self.config.primed_top
        return {
            "pruned_saliency_share": float(table.saliency[table.pruned].sum() / table.saliency.sum()),
            "pruned_in_top": int((table.pruned & top).sum()),
            "concept_f1_remasked": masked_again["concept_f1"],
            "f1_remasked": masked_again["f1"],
        }

    def _relocation(self, seed: int) -> None:
        """The causal test of relocation: ablate the concept's carriers after the last round (design §18).

        The carriers are the best-ranked unpruned neurons of the concept arm's last round. They
        are ablated on top of its pruning; as controls, as many random unpruned neurons are, and
        the carriers are ablated in the base model too.
        """
        if self.folder.has_relocation(seed):
            return
        arm = self.concept_arm
        assert arm is not None  # run() calls this only with a concept arm
        final = self.config.stages()[-1]
        table = self.folder.stage_table(seed, arm, final)
        carriers = concept_carriers(table, self.config.relocation_count or self.count)
        count = len(carriers)
        pruned = self.folder.pruned(seed, arm)
        base = Tagger.load(self.folder.tagger_dir(seed, "", "base"), device=self.device)
        retrained = load_stage(self.folder.path, final, seed=seed, arm=arm, device=self.device)
        others = random_neurons(retrained.model, count, site=self.config.site, seed=seed, exclude=pruned)
        record = {
            "count": count,
            "carriers": [list(n) for n in carriers],
            "base": headline_f1(self.folder.stage_record(seed, "", "base")["scores"]["test"], self.concept),
            "base_without_carriers": self._test_scores(base, seed, carriers),
            "final": headline_f1(self.folder.stage_record(seed, arm, final)["scores"]["test"], self.concept),
            "final_without_carriers": self._test_scores(retrained, seed, carriers),
            "final_without_random": self._test_scores(retrained, seed, others),
        }
        self.folder.write_relocation(seed, record)

    def _test_scores(self, tagger: Tagger, seed: int, ablated: Sequence[Neuron]) -> dict:
        """Overall, concept and other-type F1 on the test split with some neurons ablated (mask hooks)."""
        scores = evaluate_ablated(
            tagger,
            self.data.test,
            ablated,
            site=self.config.site,
            value=self.config.prune_value,
            means=self._means(seed),
        )
        return headline_f1(scores, self.concept)

    def _means(self, seed: int) -> torch.Tensor | None:
        return _unit_means(self.folder, seed, self.site) if self.config.prune_value == "mean" else None

    def _describe(
        self,
        tagger: Tagger,
        seed: int,
        arm: str,
        stage: str,
        pruned: PrunedNeurons | None,
        start: float,
        curve: Sequence[dict] = (),
    ) -> None:
        """Evaluate and describe a stage, then mark it finished (its record last).

        One forward pass over the concept corpus gives the statistics, the probes' training vectors
        and, when the corpus is the validation split, its predictions; one over the test split its
        predictions and the probes' test vectors; one over each other split its predictions. Top
        tokens need the statistics first: they read the word activations the corpus pass kept, or, for
        a corpus too large to keep (``ACTIVATION_CACHE_BYTES``), take a pass of their own.

        ``curve`` holds the stage's points of the recovery curve (training, or the pruned model at step 0).
        """
        corpus, site, aggregation = self.corpus, self.config.site, self.config.aggregation
        on_corpus = shared_pass(
            tagger,
            corpus,
            site=site,
            aggregation=aggregation,
            statistics=True,
            vectors=True,
            predictions=corpus is self.data.validation,
            keep_activations=self.keep_activations,
            description="concept corpus",
            progress=self.progress,
        )
        on_test = shared_pass(
            tagger, self.data.test, aggregation=aggregation, vectors=True, predictions=True, description="test"
        )
        predicted = {"test": on_test.predictions, "validation": on_corpus.predictions}
        scores = {
            split: score_predictions(
                sentences,
                predicted.get(split) or shared_pass(tagger, sentences, predictions=True, description=split).predictions,
            )
            for split, sentences in self.splits.items()
        }
        stats = on_corpus.stats
        assert stats is not None  # asked for
        if self.config.ranking == "attribution":
            ranking = rank_by_attribution(
                tagger, corpus, self.corpus_concept, site=self.config.site, progress=self.progress
            )
        else:
            ranking = rank_neurons(stats, self.corpus_concept, method=self.config.ranking)
        every = [Neuron(l, i) for l in range(self.site.n_layers) for i in range(self.site.units)]
        described = top_tokens(
            tagger.model,
            corpus,
            stats,
            every,
            k=self.config.top_k,
            n_examples=0,
            max_types=self.config.max_types,
            n_occurrences=self.config.composition_top,
            activations=on_corpus.activations if self.keep_activations else None,
            progress=self.progress,
        )
        base_tokens = None if stage == "base" else _read_top_tokens(self.folder.stage_table(seed, arm, "base"))
        removed = pruned.neurons if pruned else ()
        table = neuron_table(
            ranking, described, self.embedder, base=base_tokens, concept_vector=self.concept_vector, pruned=removed
        )
        table["mean"] = rearrange(stats.mean(), "layers units -> (layers units)").tolist()
        self.folder.write_stage_table(seed, arm, stage, "neurons", table)
        self.folder.write_stage_table(seed, arm, stage, "layers", layer_table(ranking, removed))
        probes = probe_layers(
            on_corpus.vectors,
            on_corpus.tags,
            self.corpus_concept,
            on_test.vectors,
            on_test.tags,
            self.concept,
            seed=seed,
        )
        self.folder.write_stage_table(seed, arm, stage, "probes", probes)
        self.folder.write_stage_table(seed, arm, stage, "dynamics", pd.DataFrame(list(curve), columns=DYNAMICS))
        record = {
            "seed": seed,
            "arm": arm or None,
            "stage": stage,
            "scores": scores,
            "pruned": len(removed),
            "regrowth": pruned.regrowth() if pruned else None,
            "seconds": time.perf_counter() - start,
        }
        if self.config.prune_mode == "weights" and not self.config.freeze and removed and stage != "pruned":
            record["regrowth_split"] = self._regrowth_split(tagger, seed, table, removed)
        self.folder.write_stage_record(seed, arm, stage, record)

    # Summary ------------------------------------------------------------------------------

    def _records(self) -> list[dict]:
        records = []
        for seed in self.config.seeds:
            for arm in self.config.arms:
                for stage in self.config.stages():
                    records.append({**self.folder.stage_record(seed, arm, stage), "arm": arm})
        return records

    def _summarise(self) -> dict:
        records = self._records()
        config = self.config
        performance = pd.DataFrame(
            [
                {
                    "seed": r["seed"],
                    "arm": r["arm"],
                    "stage": r["stage"],
                    "split": split,
                    "f1": s["f1"],
                    "precision": s["precision"],
                    "recall": s["recall"],
                    "concept_f1": concept_scores(s, self.concept.members)["f1"],
                    "other_f1": _mean_f1(s, self.concept.contrast),
                    "token_accuracy": s["token_accuracy"],
                }
                for r in records
                for split, s in r["scores"].items()
            ]
        )
        self.folder.write_table("performance", performance)
        entity_types = [c for c in self.concept.classes if c != "O"]
        types = pd.DataFrame(
            [
                {
                    "seed": r["seed"],
                    "arm": r["arm"],
                    "stage": r["stage"],
                    "split": split,
                    "type": kind,
                    "f1": s["per_type"].get(kind, {}).get("f1", 0.0),
                    "support": s["per_type"].get(kind, {}).get("support", 0),
                }
                for r in records
                for split, s in r["scores"].items()
                for kind in entity_types
            ]
        )
        self.folder.write_table("types", types)
        neurons, layers, probes, dynamics = [], [], [], []
        for r in records:
            keys = {"seed": r["seed"], "arm": r["arm"], "stage": r["stage"]}
            neurons.append(self.folder.stage_table(r["seed"], r["arm"], r["stage"], "neurons").assign(**keys))
            layers.append(self.folder.stage_table(r["seed"], r["arm"], r["stage"], "layers").assign(**keys))
            probes.append(self.folder.stage_table(r["seed"], r["arm"], r["stage"], "probes").assign(**keys))
            points = self.folder.stage_table(r["seed"], r["arm"], r["stage"], "dynamics")
            dynamics.append(points.assign(arm=r["arm"]) if r["stage"] != "base" or r["arm"] == config.arms[0] else None)
        neurons_all = pd.concat(neurons, ignore_index=True)
        layers_all = pd.concat(layers, ignore_index=True)
        probes_all = pd.concat(probes, ignore_index=True)
        curves = [points for points in dynamics if points is not None and len(points)]
        dynamics_all = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=DYNAMICS)
        dynamics_all.loc[dynamics_all.stage == "base", "arm"] = None  # the base curve is the seed's, not an arm's
        self.folder.write_table("neurons", neurons_all)
        self.folder.write_table("layers", layers_all)
        self.folder.write_table("probes", probes_all)
        self.folder.write_table("dynamics", dynamics_all)

        def curve(arm: str, column: str) -> dict:
            test = performance[(performance.arm == arm) & (performance.split == "test")]
            per_stage = {stage: interval(test[test.stage == stage][column].tolist()) for stage in self.config.stages()}
            rounds = [per_stage[f"round{r}"]["mean"] for r in range(1, config.rounds + 1)]
            return {
                "base": per_stage["base"]["mean"],
                "pruned": per_stage["pruned"]["mean"],
                "rounds": rounds,
                "intervals": per_stage,
            }

        main_arm = config.arms[0]
        final = f"round{config.rounds}"
        primed = []
        correlations = []
        for seed in config.seeds:
            at = neurons_all[(neurons_all.seed == seed) & (neurons_all.arm == main_arm)]
            base_table, final_table = at[at.stage == "base"], at[at.stage == final]
            chosen = primed_neurons(base_table, final_table, top=config.primed_top, concept=self.corpus_concept.members)
            primed.append(chosen.assign(seed=seed))
            alive = final_table[~final_table.pruned]
            correlations.append(spearman(alive.saliency.tolist(), alive.similarity_to_base.tolist()))
        primed_all = pd.concat(primed, ignore_index=True)
        self.folder.write_table("primed", primed_all)

        def layer_means(arm: str, stage: str, column: str) -> list[float]:
            rows = layers_all[(layers_all.arm == arm) & (layers_all.stage == stage)]
            return rows.groupby("layer")[column].mean().round(12).tolist()

        summary = {
            "model": config.model,
            "concept": self.concept.name,
            "concept_classes": list(self.concept.members),
            "data": {"source": self.data.source, **{split: len(s) for split, s in self.data.splits().items()}},
            "concept_corpus": {
                "source": config.concept_corpus,
                "concept": self.corpus_concept.name,
                "sentences": len(self.corpus),
                "words": sum(len(s) for s in self.corpus),
                "concept_words": sum(self.corpus_concept.covers(t) for s in self.corpus for t in s.tags),
            },
            "site": config.site,
            "ranking": config.ranking,
            "aggregation": config.aggregation,
            "seeds": list(config.seeds),
            "pruned": {
                "count": self.count,
                "of": self.site.n_neurons,
                "mode": config.prune_mode,
                "value": config.prune_value,
                "arm": main_arm,
            },
            "f1": curve(main_arm, "f1"),
            "concept_f1": curve(main_arm, "concept_f1"),
            "layer_saliency": {stage: layer_means(main_arm, stage, "mean") for stage in self.config.stages()},
            "redistribution": {
                "base": layer_means(main_arm, "base", "salient_share"),
                "final": layer_means(main_arm, final, "salient_share"),
            },
            "primed_neurons": len(primed_all),
            "blend": self._blend_summary(primed_all, neurons_all[neurons_all.arm == main_arm]),
            "saliency_similarity_spearman": interval(correlations),
            "seconds": sum(r["seconds"] for r in records if r["stage"] != "base" or r["arm"] == main_arm),
        }
        for arm, key in (("random", "random_baseline"), ("none", "control")):
            if arm in config.arms and arm != main_arm:
                summary[key] = {"f1": curve(arm, "f1"), "concept_f1": curve(arm, "concept_f1")}
        summary["collateral"] = {arm: self._collateral(performance, types, arm) for arm in config.arms}
        summary["probes"] = {
            arm: {
                stage: probes_all[(probes_all.arm == arm) & (probes_all.stage == stage)]
                .groupby("layer")[["accuracy", "f1", "majority"]]
                .mean()
                .round(12)
                .to_dict("list")
                for stage in config.stages()
            }
            for arm in config.arms
        }
        if self.concept_arm is not None:
            summary["relocation"] = self._relocation_summary()
        if not dynamics_all.empty:
            summary["recovery"] = self._recovery_summary(dynamics_all)
        summary["retraining"] = {
            arm: self._retraining_summary(arm, summary, probes_all, curve(arm, "concept_f1")["intervals"])
            for arm in config.arms
        }
        if config.prune_mode == "weights" and not config.freeze:
            summary["regrowth"] = {
                stage: {
                    key: _mean_known(
                        [r["regrowth_split"][key] for r in records if r["arm"] == main_arm and r["stage"] == stage]
                    )
                    for key in ("pruned_saliency_share", "pruned_in_top", "concept_f1_remasked", "f1_remasked")
                }
                for stage in config.stages()[2:]
            }
        return summary

    def _blend_summary(self, primed: pd.DataFrame, neurons: pd.DataFrame) -> dict:
        """The primed neurons' blend of old class and concept, beside every surviving neuron's entropy (§19)."""
        final = self.config.stages()[-1]
        survivors = neurons[neurons.stage == final].merge(
            neurons[neurons.stage == "base"], on=["seed", "layer", "index"], suffixes=("", "_base")
        )
        survivors = survivors[~survivors.pruned]
        measures = (
            "concept_share_before",
            "concept_share_after",
            "old_share_before",
            "old_share_after",
            "blend",
            "entropy_before",
            "entropy_after",
        )
        return {
            "occurrences": self.config.composition_top,
            "neurons": len(primed),
            "with_old_class": int(primed.old_class.notna().sum()),
            "old_classes": {str(k): int(v) for k, v in primed.old_class.value_counts().items()},
            "primed": {m: _finite(float(primed[m].mean())) if len(primed) else None for m in measures},
            "survivors": {
                "neurons": len(survivors),
                "entropy_before": _finite(float(survivors.entropy_base.mean())),
                "entropy_after": _finite(float(survivors.entropy.mean())),
            },
        }

    def _recovery_summary(self, dynamics: pd.DataFrame) -> dict:
        """Per arm, how fast the concept came back on the monitor sentences: every seed's measures and
        their means with Student-t intervals over the seeds that reached them (``n``)."""
        summary: dict = {}
        for arm in self.config.arms:
            per_seed = {}
            for seed in self.config.seeds:
                base = dynamics[(dynamics.seed == seed) & (dynamics.stage == "base")].sort_values("step")
                curve = dynamics[(dynamics.seed == seed) & (dynamics.arm == arm) & (dynamics.stage != "base")]
                reference = float(base.concept_f1.iloc[-1])
                per_seed[str(seed)] = {"base_concept_f1": reference, **recovery_measures(curve, reference)}
            measures = [key for key in next(iter(per_seed.values())) if key != "steps"]
            summary[arm] = {key: _known_interval([r[key] for r in per_seed.values()]) for key in measures}
            summary[arm]["per_seed"] = per_seed
        return {"sentences": len(self.monitor_set), "arms": summary}

    def _retraining_summary(self, arm: str, summary: dict, probes: pd.DataFrame, intervals: dict) -> dict:
        """What an arm pruned and retrained on, and where the concept stood after pruning and after the last round
        (test split; ``intervals``: the concept's F1 per stage over seeds)."""
        pruning, condition = arm_parts(arm)
        collateral = summary["collateral"][arm]
        final = self.config.stages()[-1]
        last_layer = probes[(probes.arm == arm) & (probes.layer == probes.layer.max())].groupby("stage").accuracy.mean()
        return {
            "pruning": pruning,
            "data": condition,
            "sentences": len(self.training[arm]),
            "concept_f1": {stage: collateral["concept_f1"][stage] for stage in ("base", "pruned", final)},
            "concept_f1_intervals": {stage: intervals[stage] for stage in ("base", "pruned", final)},
            "other_f1": {stage: collateral["other_f1"][stage] for stage in ("base", "pruned", final)},
            "probe_accuracy_last_layer": {stage: float(last_layer[stage]) for stage in ("base", "pruned", final)},
        }

    def _relocation_summary(self) -> dict:
        """Each condition of the relocation test, as means over seeds, and every seed's record."""
        per_seed = {str(seed): self.folder.relocation(seed) for seed in self.config.seeds}
        conditions = [key for key, value in per_seed[str(self.config.seeds[0])].items() if isinstance(value, dict)]
        return {
            "count": per_seed[str(self.config.seeds[0])]["count"],
            "conditions": {
                condition: {
                    metric: _mean_known([r[condition][metric] for r in per_seed.values()])
                    for metric in ("f1", "concept_f1", "other_f1")
                }
                for condition in conditions
            },
            "per_seed": per_seed,
        }

    def _collateral(self, performance: pd.DataFrame, types: pd.DataFrame, arm: str) -> dict:
        """What an arm did to every entity type on the test split, and how selective it was (design §17)."""
        stages = self.config.stages()
        test = performance[(performance.arm == arm) & (performance.split == "test")].groupby("stage")
        concept, others = test.concept_f1.mean(), test.other_f1.mean()
        per_type = types[(types.arm == arm) & (types.split == "test")].groupby(["type", "stage"]).f1.mean()
        return {
            "concept_f1": {stage: concept[stage] for stage in stages},
            "other_f1": {stage: _finite(others[stage]) for stage in stages},
            "per_type": {
                kind: {stage: per_type[kind, stage] for stage in stages}
                for kind in dict.fromkeys(types.type)  # label order
            },
            "selectivity": {stage: selectivity(concept.to_dict(), others.to_dict(), stage) for stage in stages[1:]},
        }


def evaluate_ablated(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    neurons: Sequence[Neuron],
    *,
    site: str,
    value: str,
    means: torch.Tensor | None,
) -> dict:
    """``evaluate_tagger`` with some neurons masked for the while (mask hooks, taken off after)."""
    handle = prune(tagger.model, neurons, site=site, value=value, means=means)
    try:
        return evaluate_tagger(tagger, sentences)
    finally:
        handle.remove()


def concept_carriers(table: pd.DataFrame, count: int) -> list[Neuron]:
    """The ``count`` best-ranked neurons of a stage's neuron table that are not pruned (fewer if fewer are left).

    Example:
        >>> table = pd.DataFrame({"layer": [0, 0, 1], "index": [0, 1, 0], "position": [1, 0, 2],
        ...                       "pruned": [False, True, False]})
        >>> concept_carriers(table, 2)
        [Neuron(layer=0, index=0), Neuron(layer=1, index=0)]
    """
    alive = table[~table.pruned].sort_values("position").head(count)
    return [Neuron(int(layer), int(index)) for layer, index in zip(alive.layer, alive["index"], strict=True)]


def headline_f1(scores: dict, concept: Concept) -> dict:
    """Overall F1, the concept's F1 and the other entity types' mean F1 (None if the split has none)
    of ``evaluate_tagger`` scores."""
    return {
        "f1": scores["f1"],
        "concept_f1": concept_scores(scores, concept.members)["f1"],
        "other_f1": _finite(_mean_f1(scores, concept.contrast)),
    }


def _mean_f1(scores: dict, kinds: Sequence[str]) -> float:
    """Mean F1 of the entity types among ``kinds`` that the split has (NaN if none)."""
    present = [scores["per_type"][kind]["f1"] for kind in kinds if scores["per_type"].get(kind, {}).get("support")]
    return sum(present) / len(present) if present else math.nan


def _mean_known(values: Sequence[float | int | None]) -> float | None:
    """The mean of the values that are known (None if none is)."""
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def _known_interval(values: Sequence[float | int | None]) -> dict:
    """The Student-t interval of the values that are known (``n`` of them; for JSON, NaN becomes None)."""
    known = interval([float(value) for value in values if value is not None])
    return {name: value if name == "n" else _finite(value) for name, value in known.items()}


def _finite(value: float) -> float | None:
    """A number for JSON: NaN becomes None."""
    return None if math.isnan(value) else float(value)


def _unit_means(folder: RunFolder, seed: int, site: NeuronSite) -> torch.Tensor:
    """Each neuron's mean activation on the concept corpus at the base stage."""
    table = folder.stage_table(seed, "", "base")
    return rearrange(torch.tensor(table["mean"].to_numpy()), "(layers units) -> layers units", units=site.units)


def _read_top_tokens(table: pd.DataFrame) -> TopTokens:
    """The top tokens of a finished stage, read back from its neuron table."""
    neurons = tuple(Neuron(int(l), int(i)) for l, i in zip(table.layer, table["index"], strict=True))
    tokens = tuple(tuple((w, 1.0) for w in text.split()) for text in table.top_tokens)
    return TopTokens(neurons, tokens, tuple(() for _ in neurons))


def load_stage(
    out_dir: str | Path, stage: str, *, seed: int = 0, arm: str = "concept", device: str | torch.device = "cpu"
) -> Tagger:
    """The tagger of a finished stage, with its arm's pruning applied (mask hooks included).

    Args:
        out_dir: A study's folder.
        stage: ``base``, ``pruned`` or ``round1`` ... ``roundR``.
        seed: Which seed's run.
        arm: ``concept``, ``random`` or ``none`` (ignored for ``base``).
        device: Where the weights go.

    Example:
        >>> # tagger = load_stage("runs/default", "round3")
        >>> # tagger.model.run_with_cache(...) then shows the pruned, retrained model's activations
    """
    folder = RunFolder(out_dir)
    config = folder.config
    tagger = Tagger.load(folder.tagger_dir(seed, arm, "base"), device=device)
    if stage == "base":
        return tagger
    if stage not in config.stages() or arm not in config.arms or not folder.is_finished(seed, arm, stage):
        raise LensRelearnError(f"{folder.stage_dir(seed, arm, stage)} is not a finished stage of {folder.path}.")
    means = _unit_means(folder, seed, neuron_site(tagger.model, config.site)) if config.prune_value == "mean" else None
    prune(
        tagger.model,
        folder.pruned(seed, arm),
        site=config.site,
        mode=config.prune_mode,
        value=config.prune_value,
        means=means,
        freeze=config.freeze,
    )
    if stage != "pruned":
        tagger.load_weights(folder.tagger_dir(seed, arm, stage))
    return tagger.eval()


def run_experiment(
    config: ExperimentConfig, out_dir: str | Path, *, progress: bool = True, device: str | None = None
) -> dict:
    """Run (or resume) a relearning study and write its results to ``out_dir``.

    Args:
        config: What to run.
        out_dir: Where results go: ``config.json``, ``summary.json``, ``performance.csv``,
            ``layers.csv``, ``neurons.parquet``, ``primed.csv``, and one folder a stage (with
            the tagger after each round). A folder holding an interrupted run of the same
            config is resumed after its last finished stage.
        progress: Show progress bars (``False`` hides those of transformers and datasets too).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when there is one). Under
            ``torchrun`` every rank runs the study on its share of the data (``lens_relearn.parallel``).

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        LensRelearnError: The config asks for something impossible (checked before training),
            or ``out_dir`` holds a run of a different config.
    """
    where = parallel.resolve_device(device)
    parallel.start(where)
    folder = RunFolder(out_dir)
    if folder.has_config() and folder.config != config:
        existing = folder.config
        changed = [f.name for f in dataclasses.fields(config) if getattr(existing, f.name) != getattr(config, f.name)]
        raise LensRelearnError(
            f"{folder.path} holds a run of a different config (differs in {', '.join(changed)}); "
            "choose another folder or delete it."
        )
    with contextlib.nullcontext() if progress else quiet_libraries():
        study = _Study(config, folder, progress, where)  # loads data and model, checks concept, site and count
        if not folder.has_config():
            folder.write_config(config)
        summary = study.run()
    folder.write_summary(summary)
    return summary
