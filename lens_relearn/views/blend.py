"""Primed neurons and blending, seen: the neurons that took the concept over, their old class and their blend."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from lens_relearn.analyses.blend import BlendSummary
from lens_relearn.views.finished import FinishedStudy, finished
from lens_relearn.views.neuron_views import neuron_views
from lens_relearn.views.page import figure_html, html_table
from lens_relearn.views.plots import CONCEPT_COLOUR
from lens_relearn.views.sections import ReportSection

CAPTION = (
    "Entropy of the class composition of each surviving neuron's top-activating words, at the base model and after "
    "the last round; primed neurons in red. Above the diagonal: a neuron mixes more classes than before."
)
BLEND_HEADER = ["old class", "old class share: base → final", "concept share: base → final", "blend"]
CASE_STUDIES = 3  # primed neurons the report shows with a view


def plot_blend(out_dir: str | Path | FinishedStudy, *, seed: int | None = None) -> Figure:
    """Entropy of each neuron's class composition at the base model against after the last round.

    The composition is the share of each class among a neuron's top-activating words
    (docs/design.md §19): entropy 0 when one class holds them all. Surviving neurons of the
    study's first arm are grey; primed neurons (``primed.csv``) red. A neuron above the diagonal
    mixes more classes after retraining than before.

    Args:
        out_dir: A finished study's folder (with class compositions).
        seed: Which seed (default: the study's first).

    Returns:
        A scatter with the diagonal.
    """
    run = finished(out_dir)
    arm, seed = run.arm(None), run.seed(seed)
    base, final = run.neurons_at(seed, arm, "base"), run.neurons_at(seed, arm, run.final)
    both = final.merge(base, on=["layer", "index"], suffixes=("", "_base"))
    alive = both[~both.pruned]
    primed = run.table("primed")
    primed = primed[primed.seed == seed][["layer", "index"]].merge(alive, on=["layer", "index"])
    figure = Figure(figsize=(6.5, 6), layout="constrained")
    axis = figure.subplots()
    for rows, name, size, colour, alpha in (
        (alive, "surviving", 6, "tab:gray", 0.35),
        (primed, "primed", 18, CONCEPT_COLOUR, 1.0),
    ):
        if rows.empty:
            continue
        means = f"mean {rows.entropy_base.mean():.2f} → {rows.entropy.mean():.2f}"
        axis.scatter(
            rows.entropy_base,
            rows.entropy,
            s=size,
            color=colour,
            alpha=alpha,
            label=f"{name} neurons ({len(rows)}; {means})",
        )
    top = max(float(both[["entropy", "entropy_base"]].max().max()), 1e-3) * 1.05
    axis.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--")
    axis.set_xlim(0, top)
    axis.set_ylim(0, top)
    axis.set_aspect("equal")
    axis.set_xlabel("entropy of the class composition at base (bits)")
    axis.set_ylabel(f"entropy at {run.final} (bits)")
    axis.set_title(f"{run.config.model}: do neurons blend classes after relearning? ({arm} arm, seed {seed})")
    axis.legend(loc="upper left", fontsize=8)
    axis.grid(alpha=0.3)
    return figure


def blend_cells(row: pd.Series) -> tuple[str, str, str, float]:
    """A primed neuron's old class, the shares of it and of the concept before and after, and its blend."""
    if "blend" not in row:
        return ("–", "–", "–", math.nan)
    old = row.old_class if isinstance(row.old_class, str) else "none"
    old_shares = "–" if old == "none" else f"{row.old_share_before:.2f} → {row.old_share_after:.2f}"
    return (old, old_shares, f"{row.concept_share_before:.2f} → {row.concept_share_after:.2f}", float(row.blend))


def _primed(out: FinishedStudy, seed: int, count: int, top: int) -> str:
    primed = out.table("primed")
    primed = primed[primed.seed == seed]
    intro = (
        f"<p>Neurons among the top {top} of the last round's ranking that were neither among the "
        f"top {top} at the base model nor pruned: the concept moved into them. A neuron's old class is "
        "the entity class other than the concept with the largest share of its top-activating words at the "
        "base model; its blend is twice the smaller of that class's and the concept's shares after the last "
        "round (1: an even mix of old and new, 0: one of them gone).</p>"
    )
    if primed.empty:
        return intro + f"<p>No primed neurons for seed {seed}.</p>"
    intro += _blend_sentence(out.section(BlendSummary))
    primed = primed.head(count)
    intro += f"<p>The first {len(primed)} by final rank (seed {seed}):</p>"
    rows = [
        (
            f"L{r.layer}.{r['index']}",
            f"{r.position_before + 1} → {r.position_after + 1}",
            r.saliency_before,
            r.saliency_after,
            r.concept_similarity_before,
            r.concept_similarity_after,
            r.similarity_to_base,
            *blend_cells(r),
            r.top_tokens_before,
            r.top_tokens_after,
        )
        for _, r in primed.iterrows()
    ]
    header = [
        "neuron",
        "rank: base → final",
        "saliency before",
        "saliency after",
        "concept similarity before",
        "concept similarity after",
        "similarity to base",
        *BLEND_HEADER,
        "top tokens before",
        "top tokens after",
    ]
    views = neuron_views(out, list(zip(primed.layer, primed["index"], strict=True)), seed=seed)
    return intro + html_table(header, rows) + "".join(view.body for view in views)


def _blend_sentence(blend: BlendSummary) -> str:
    """The primed neurons' blend in one sentence (means over the primed neurons of every seed).

    Example:
        >>> from lens_relearn.analyses.blend import SurvivorEntropy
        >>> text = _blend_sentence(BlendSummary(50, 4, 3, {"PER": 2, "ORG": 1}, {"old_share_before": 0.3,
        ...     "old_share_after": 0.1, "concept_share_before": 0.1, "concept_share_after": 0.5, "blend": 0.2,
        ...     "entropy_before": 1.0, "entropy_after": 1.2}, SurvivorEntropy(90, 0.9, 0.95)))
        >>> text[text.index("3 of") : text.index(" and the concept")]
        "3 of the 4 primed neurons had an old class (PER 2, ORG 1). On average the old class's share went 0.30 → 0.10"
    """
    if not blend.neurons:
        return ""
    primed, survivors = blend.primed, blend.survivors
    classes = ", ".join(f"{html.escape(kind)} {count}" for kind, count in blend.old_classes.items()) or "none"
    return (
        f"<p>Class composition counts each neuron's {blend.occurrences} top-activating words. "
        f"{blend.with_old_class} of the {blend.neurons} primed neurons had an old class ({classes}). "
        f"On average the old class's share went {_share(primed['old_share_before'])} → "
        f"{_share(primed['old_share_after'])} and the concept's {_share(primed['concept_share_before'])} → "
        f"{_share(primed['concept_share_after'])} (blend {_share(primed['blend'])}); the entropy of their "
        f"composition went {_share(primed['entropy_before'])} → {_share(primed['entropy_after'])} bits, against "
        f"{_share(survivors.entropy_before)} → {_share(survivors.entropy_after)} for all "
        f"{survivors.neurons} surviving neurons.</p>"
    )


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _render(run: FinishedStudy, seed: int) -> str:
    return _primed(run, seed, CASE_STUDIES, run.config.primed_top) + figure_html(plot_blend(run, seed=seed), CAPTION)


SECTION = ReportSection("blend", "Primed neurons", _render)
