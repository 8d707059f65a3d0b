"""Primed neurons and blending: which neurons took the concept over, and whether they kept their old class (§19).

A primed neuron is among the best ``primed_top`` of the last round's ranking of the first arm,
was not among them at the base model, and was not pruned (docs/design.md §8). Its blend compares
the class composition of its top-activating words before and after (``primed_neurons``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lens_relearn.study.analysis import Analysis, Needs, StudyContext, finite
from lens_relearn.study.tables import primed_neurons

MEASURES = (
    "concept_share_before",
    "concept_share_after",
    "old_share_before",
    "old_share_after",
    "blend",
    "entropy_before",
    "entropy_after",
)


@dataclass(frozen=True)
class SurvivorEntropy:
    """Every surviving neuron's composition entropy (bits), at the base model and after the last round."""

    neurons: int
    entropy_before: float | None
    entropy_after: float | None


@dataclass(frozen=True)
class BlendSummary:
    """The primed neurons of every seed and their blend, beside every survivor's entropy.

    Attributes:
        occurrences: Top-activating word occurrences a composition counts (``composition_top``).
        neurons: Primed neurons, over the seeds.
        with_old_class: How many had an entity class other than the concept before.
        old_classes: How many had each old class.
        primed: The primed neurons' mean of each of ``MEASURES`` (None without primed neurons).
        survivors: Every surviving neuron's mean entropy.
    """

    occurrences: int
    neurons: int
    with_old_class: int
    old_classes: dict[str, int]
    primed: dict[str, float | None]
    survivors: SurvivorEntropy


class Blend(Analysis):
    """Primed neurons (``primed.csv``) and the blend of their old class and the concept."""

    name = "blend"
    needs = Needs(composition=True)
    summary_type = BlendSummary

    def summarise(self, study: StudyContext) -> BlendSummary:
        config, final = study.config, study.stages[-1]
        neurons = study.folder.table("neurons")
        neurons = neurons[neurons.arm == study.main_arm]
        primed = []
        for seed in config.seeds:
            at = neurons[neurons.seed == seed]
            chosen = primed_neurons(
                at[at.stage == "base"],
                at[at.stage == final],
                top=config.primed_top,
                concept=study.inputs.corpus_concept.members,
            )
            primed.append(chosen.assign(seed=seed))
        table = pd.concat(primed, ignore_index=True)
        study.folder.write_table("primed", table)
        survivors = neurons[neurons.stage == final].merge(
            neurons[neurons.stage == "base"], on=["seed", "layer", "index"], suffixes=("", "_base")
        )
        survivors = survivors[~survivors.pruned]
        return BlendSummary(
            occurrences=config.composition_top,
            neurons=len(table),
            with_old_class=int(table.old_class.notna().sum()),
            old_classes={str(k): int(v) for k, v in table.old_class.value_counts().items()},
            primed={m: finite(float(table[m].mean())) if len(table) else None for m in MEASURES},
            survivors=SurvivorEntropy(
                len(survivors), finite(float(survivors.entropy_base.mean())), finite(float(survivors.entropy.mean()))
            ),
        )
