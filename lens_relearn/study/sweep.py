"""The selectivity sweep: how much of the concept, and how much of everything else, pruning removes.

For every ranking method (and, when asked, a learned mask: ``lens_relearn.neurons.masks``) and
several fractions of the site's neurons, the base tagger is pruned
(mask hooks, no retraining) and scored on the test split: the concept's F1 and the mean F1 of
the other entity types. As many random neurons, drawn with several seeds, are the reference.
One line a method in the plane (other types' F1, concept F1) is the method's frontier: the best
method removes the concept while the other types keep their F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from lens_relearn import parallel
from lens_relearn.errors import LensRelearnError
from lens_relearn.models.sites import Neuron
from lens_relearn.neurons.activations import collect_stats
from lens_relearn.neurons.pruning import PruneSpec, random_neurons
from lens_relearn.neurons.ranking import METHODS, Ranking
from lens_relearn.stats import selectivity
from lens_relearn.study.analysis import evaluate_ablated, mean_f1
from lens_relearn.study.config import ExperimentConfig
from lens_relearn.study.folders import SweepFolder
from lens_relearn.study.inputs import Inputs, load_inputs
from lens_relearn.study.skeleton import base_tagger, launched, learned_mask, rank
from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores

FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)
LEARNED_MASK = "learned_mask"  # a sweep method beside the rankings: a mask learned at each fraction's budget
SWEEP_METHODS: tuple[str, ...] = (*METHODS, LEARNED_MASK)
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
        out_dir: Where ``run.json``, the base tagger (``base/``), ``sweep.csv`` and ``summary.json``
            (the best pruning) go. A folder with a sweep of the same config keeps its base tagger and its finished rows.
        methods: Ranking methods (``METHODS``), and ``learned_mask`` (a mask learned at each fraction's budget
            with the config's ``mask_*`` settings: one optimisation a fraction).
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
        LensRelearnError: An unknown method, a fraction outside (0, 1], or a folder that holds
            another kind of run or a sweep of another config (nothing is written then).
    """
    if unknown := [m for m in methods if m not in SWEEP_METHODS]:
        raise LensRelearnError(f"Unknown sweep methods {unknown}; choose among {', '.join(SWEEP_METHODS)}.")
    if bad := [f for f in fractions if not 0 < f <= 1]:
        raise LensRelearnError(f"Fractions {bad} are outside (0, 1].")
    folder = SweepFolder(out_dir)
    folder.check(config)
    with launched(device, progress) as where:
        inputs = load_inputs(config, where)
        folder.claim(config)
        progress = progress and parallel.is_main()
        tagger = _base(config, inputs, folder, where, progress)
        return _sweep(config, inputs, folder, tagger, methods, fractions, random_seeds, progress)


def _sweep(
    config: ExperimentConfig,
    inputs: Inputs,
    folder: SweepFolder,
    tagger: Tagger,
    methods: Sequence[str],
    fractions: Sequence[float],
    random_seeds: Sequence[int],
    progress: bool,
) -> pd.DataFrame:
    """Score every pruning not scored yet, each row written as it is finished; then the best pruning."""
    rows = folder.table("sweep").to_dict("records") if folder.has_table("sweep") else []
    finished = {(r["method"], r["fraction"], r["seed"]) for r in rows}
    stats = collect_stats(
        tagger.model, inputs.corpus, site=config.site, aggregation=config.aggregation, progress=progress
    )
    spec = PruneSpec(config.site, "mask", config.prune_value, means=stats.mean())
    concept = inputs.concept

    def score(method: str, fraction: float, seed: int, neurons: list[Neuron]) -> None:
        if (method, fraction, seed) in finished:
            return
        scores = evaluate_ablated(tagger, inputs.data.test, neurons, spec)
        row = {"method": method, "fraction": fraction, "seed": seed, "pruned": len(neurons), "f1": scores["f1"]}
        row["concept_f1"] = concept_scores(scores, concept.members)["f1"]
        row["other_f1"] = mean_f1(scores, concept.contrast)
        for kind in (c for c in concept.classes if c != "O"):
            row[f"f1_{kind}"] = scores["per_type"].get(kind, {}).get("f1", 0.0)
        rows.append(row)
        folder.write_table("sweep", _with_selectivity(rows))

    score("base", 0.0, 0, [])
    points = [(m, f) for m in methods for f in fractions] + [("random", f) for f in fractions]
    rankings: dict[str, Ranking] = {}
    for method, fraction in tqdm(points, desc="sweep", unit="point", disable=not progress):
        count = round(fraction * inputs.site.n_neurons)
        if method == "random":
            for seed in random_seeds:
                score(method, fraction, seed, random_neurons(tagger.model, count, site=config.site, seed=seed))
            continue
        if method == LEARNED_MASK:
            if (method, fraction, 0) not in finished:  # one optimisation a fraction, on the training split
                score(method, fraction, 0, list(learned_mask(config, tagger, inputs, count, seed=0).neurons))
            continue
        if method not in rankings:
            rankings[method] = rank(config.replace(ranking=method), tagger, inputs, stats=stats, progress=False)
        score(method, fraction, 0, rankings[method].top(count))
    table = _with_selectivity(rows)
    summary = {"concept": concept.name, "base": table.iloc[0][["f1", "concept_f1", "other_f1"]].to_dict()}
    summary["best"] = best_pruning(table)
    folder.write_summary(summary)
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


def _base(
    config: ExperimentConfig, inputs: Inputs, folder: SweepFolder, device: torch.device, progress: bool
) -> Tagger:
    """The base tagger: saved in the folder, or given as ``base_checkpoint``, or fine-tuned now (and saved)."""
    if not config.base_checkpoint and (folder.base_dir / "tagger.safetensors").is_file():
        return Tagger.load(folder.base_dir, device=device)
    tagger = base_tagger(config, inputs, config.seeds[0], device, progress=progress)
    if not config.base_checkpoint:
        tagger.save(folder.base_dir)
    return tagger.eval()
