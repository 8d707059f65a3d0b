"""The selectivity sweep: how much of the concept, and how much of everything else, pruning removes.

For every ranking method and several fractions of the site's neurons, the base tagger is pruned
(mask hooks, no retraining) and scored on the test split: the concept's F1 and the mean F1 of
the other entity types. As many random neurons, drawn with several seeds, are the reference.
One line a method in the plane (other types' F1, concept F1) is the method's frontier: the best
method removes the concept while the other types keep their F1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from lens_relearn import parallel
from lens_relearn.data.sentences import NerData, find_concept
from lens_relearn.errors import LensRelearnError
from lens_relearn.files import replace_file
from lens_relearn.models.sites import Neuron, neuron_site
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.neurons.attribution import rank_by_attribution
from lens_relearn.neurons.pruning import random_neurons
from lens_relearn.neurons.ranking import METHODS, Ranking, rank_neurons
from lens_relearn.stats import selectivity
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.runner import _mean_f1, evaluate_ablated
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores

FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)
CONCEPT_GOAL, OTHERS_GOAL = 0.5, 0.9  # concept F1 at most half its base, other types at least 90% of theirs


def selectivity_sweep(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    methods: Sequence[str] = METHODS,
    fractions: Sequence[float] = FRACTIONS,
    random_seeds: Sequence[int] = (0, 1, 2),
    progress: bool = True,
    device: str | None = None,
) -> pd.DataFrame:
    """Prune the base tagger by each method at each fraction, without retraining, and score it.

    Args:
        config: The study's config: model, data, concept, concept corpus, site, prune value,
            base training (``seeds[0]``), or ``base_checkpoint``.
        out_dir: Where ``config.json``, the base tagger (``base/``), ``sweep.csv`` and
            ``sweep.json`` go. A folder with a sweep of the same config keeps its base tagger
            and its finished rows.
        methods: Ranking methods (``METHODS``).
        fractions: Shares of the site's neurons to prune.
        random_seeds: Seeds of the random reference (one row a seed and fraction).
        progress: Show progress bars.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when there is one); under
            ``torchrun``, data-parallel (``lens_relearn.parallel``).

    Returns:
        One row a pruning: ``method`` (``base``, a method or ``random``), ``fraction``,
        ``seed``, ``pruned``, ``f1``, ``concept_f1``, ``other_f1``, ``selectivity`` and one
        ``f1_<type>`` column an entity type; also written to ``sweep.csv``.

    Raises:
        LensRelearnError: An unknown method, a fraction outside (0, 1], or a folder that holds a
            sweep of another config.
    """
    if unknown := [m for m in methods if m not in METHODS]:
        raise LensRelearnError(f"Unknown ranking methods {unknown}; choose among {', '.join(METHODS)}.")
    if bad := [f for f in fractions if not 0 < f <= 1]:
        raise LensRelearnError(f"Fractions {bad} are outside (0, 1].")
    where = parallel.resolve_device(device)
    parallel.start(where)
    progress = progress and parallel.is_main()
    out = Path(out_dir)
    _claim(out, config)
    data = config.load_data()
    concept = find_concept(config.concept, data.labels)
    corpus, corpus_concept = config.load_concept_corpus(data)
    tagger = _base_tagger(config, data, out / "base", progress, where)
    site = neuron_site(tagger.model, config.site)
    done = pd.read_csv(out / "sweep.csv") if (out / "sweep.csv").is_file() else pd.DataFrame()
    rows = done.to_dict("records")
    finished = {(r["method"], r["fraction"], r["seed"]) for r in rows}
    stats = collect_stats(tagger.model, corpus, site=config.site, aggregation=config.aggregation, progress=progress)

    def score(method: str, fraction: float, seed: int, neurons: list[Neuron]) -> None:
        if (method, fraction, seed) in finished:
            return
        scores = evaluate_ablated(
            tagger, data.test, neurons, site=config.site, value=config.prune_value, means=stats.mean()
        )
        row = {"method": method, "fraction": fraction, "seed": seed, "pruned": len(neurons), "f1": scores["f1"]}
        row["concept_f1"] = concept_scores(scores, concept.members)["f1"]
        row["other_f1"] = _mean_f1(scores, concept.contrast)
        for kind in (c for c in concept.classes if c != "O"):
            row[f"f1_{kind}"] = scores["per_type"].get(kind, {}).get("f1", 0.0)
        rows.append(row)
        replace_file(out / "sweep.csv", lambda staging: _with_selectivity(rows).to_csv(staging, index=False))

    score("base", 0.0, 0, [])
    points = [(m, f) for m in methods for f in fractions] + [("random", f) for f in fractions]
    rankings: dict[str, Ranking] = {}
    for method, fraction in tqdm(points, desc="sweep", unit="point", disable=not progress):
        count = round(fraction * site.n_neurons)
        if method == "random":
            for seed in random_seeds:
                score(method, fraction, seed, random_neurons(tagger.model, count, site=config.site, seed=seed))
            continue
        if method not in rankings:
            rankings[method] = (
                rank_by_attribution(tagger, corpus, corpus_concept, site=config.site, progress=False)
                if method == "attribution"
                else rank_neurons(stats, corpus_concept, method=method)
            )
        score(method, fraction, 0, rankings[method].top(count))
    table = _with_selectivity(rows)
    summary = {"concept": concept.name, "base": table.iloc[0][["f1", "concept_f1", "other_f1"]].to_dict()}
    summary["best"] = best_pruning(table)
    replace_file(out / "sweep.json", lambda staging: staging.write_text(json.dumps(summary, indent=2)))
    return table


def best_pruning(table: pd.DataFrame) -> dict | None:
    """The most selective pruning that removes the concept: concept F1 at most half its base.

    Among the rows of ranking methods (random excluded) that reach the concept goal, the one
    keeping the highest share of the other types' F1; ``goal_met`` says whether that share is
    at least 0.9. None when no method removes the concept.
    """
    base = table[table.method == "base"].iloc[0]
    ranked = table[~table.method.isin(["base", "random"])]
    removing = ranked[ranked.concept_f1 <= CONCEPT_GOAL * base.concept_f1]
    if removing.empty:
        return None
    best = removing.loc[removing.other_f1.idxmax()]
    kept = float(best.other_f1 / base.other_f1)
    return {
        "method": best.method,
        "fraction": float(best.fraction),
        "concept_f1": float(best.concept_f1),
        "other_f1": float(best.other_f1),
        "others_kept": kept,
        "goal_met": kept >= OTHERS_GOAL,
    }


def _with_selectivity(rows: list[dict]) -> pd.DataFrame:
    """The rows as a table, each with its selectivity against the unpruned tagger (the first row)."""
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["selectivity"] = [
        selectivity({"base": base.concept_f1, "pruned": c}, {"base": base.other_f1, "pruned": o}, "pruned")
        for c, o in zip(table.concept_f1, table.other_f1, strict=True)
    ]
    return table


def _claim(out: Path, config: ExperimentConfig) -> None:
    """Keep the folder to sweeps of one config."""
    path = out / "config.json"
    if path.is_file() and ExperimentConfig.from_json(path.read_text()) != config:
        raise LensRelearnError(f"{out} holds a sweep of a different config; choose another folder or delete it.")
    out.mkdir(parents=True, exist_ok=True)
    replace_file(path, lambda staging: staging.write_text(config.to_json()))


def _base_tagger(config: ExperimentConfig, data: NerData, folder: Path, progress: bool, device: torch.device) -> Tagger:
    """The base tagger: saved in the folder, given as ``base_checkpoint``, or fine-tuned now."""
    if config.base_checkpoint:
        return Tagger.load(config.base_checkpoint, device=device)
    if (folder / "tagger.safetensors").is_file():
        return Tagger.load(folder, device=device)
    seed = config.seeds[0]
    tagger = config.new_tagger(data.labels, seed, device)
    config.train(tagger, data.train, epochs=config.base_epochs, seed=seed, progress=progress)
    tagger.save(folder)
    return tagger.eval()
