"""Polysemantic blending: class compositions in the neuron tables, the primed neurons' blend, and where they show."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lens_relearn import load_model, open_run
from lens_relearn.analyses.blend import BlendSummary
from lens_relearn.neurons.activations import composition_entropy
from lens_relearn.study.tables import InputEmbedder, primed_neurons, token_vectors
from lens_relearn.views import neuron_views
from lens_relearn.views.blend import plot_blend


def neuron_rows(position, shares, *, layer=0, index=0):
    """One neuron's row of a stage's neuron table, with a class composition."""
    total = sum(shares.values())
    row = {
        "layer": layer,
        "index": index,
        "position": position,
        "saliency": 1.0,
        "pruned": False,
        "top_tokens": "w",
        "concept_similarity": 0.0,
        "similarity_to_base": 1.0,
        **{f"share_{kind}": share / total for kind, share in shares.items()},
    }
    row["entropy"] = float(composition_entropy(torch.tensor(list(shares.values()), dtype=torch.float64) / total))
    return row


def test_an_old_entity_class_and_the_concept_blend_after_retraining():
    base = pd.DataFrame(
        [
            neuron_rows(5, {"O": 2, "PER": 6, "ORG": 2, "GPE": 0, "LOC": 0}, index=0),  # a PER neuron
            neuron_rows(6, {"O": 8, "PER": 0, "ORG": 0, "GPE": 0, "LOC": 2}, index=1),  # no other entity: no old class
            neuron_rows(7, {"O": 0, "PER": 0, "ORG": 10, "GPE": 0, "LOC": 0}, index=2),  # an ORG neuron, ORG gone after
        ]
    )
    final = pd.DataFrame(
        [
            neuron_rows(0, {"O": 2, "PER": 4, "ORG": 0, "GPE": 1, "LOC": 3}, index=0),
            neuron_rows(1, {"O": 5, "PER": 0, "ORG": 0, "GPE": 0, "LOC": 5}, index=1),
            neuron_rows(2, {"O": 0, "PER": 0, "ORG": 0, "GPE": 0, "LOC": 10}, index=2),
        ]
    )
    primed = primed_neurons(base, final, top=3, concept=["GPE", "LOC"]).set_index("index")
    assert primed.loc[0, "old_class"] == "PER" and primed.loc[2, "old_class"] == "ORG"
    assert primed.loc[0, ["old_share_before", "old_share_after"]].tolist() == pytest.approx([0.6, 0.4])
    assert primed.loc[0, "concept_share_after"] == pytest.approx(0.4), "a concept of two classes sums them"
    assert primed.loc[0, "blend"] == pytest.approx(0.8), "twice the smaller of 0.4 (PER) and 0.4 (GPE + LOC)"
    assert primed.loc[2, "blend"] == 0.0, "the old class is gone: no blend"
    assert isinstance(primed.loc[1, "old_class"], float) and math.isnan(primed.loc[1, "old_class"])
    assert math.isnan(primed.loc[1, "blend"]), "O is not an old concept"
    assert primed.loc[0, "entropy_after"] == pytest.approx(final.entropy[0])


def test_every_stage_of_the_study_records_each_neurons_composition(tiny_run):
    neurons = pd.read_parquet(tiny_run / "neurons.parquet")
    shares = [c for c in neurons.columns if c.startswith("share_")]
    assert set(shares) == {"share_O", "share_LOC", "share_PER", "share_ORG", "share_MISC"}
    np.testing.assert_allclose(neurons[shares].sum(axis=1), 1.0, atol=1e-12)
    entropy = composition_entropy(torch.tensor(neurons[shares].to_numpy()))
    np.testing.assert_allclose(neurons.entropy, entropy.numpy(), atol=1e-9)
    # 50 occurrences a neuron: every share is a multiple of 1/50.
    np.testing.assert_allclose(neurons[shares] * 50, np.round(neurons[shares] * 50), atol=1e-9)


def test_the_primed_table_and_the_summary_hold_the_blend(tiny_run):
    primed = pd.read_csv(tiny_run / "primed.csv")
    neurons = pd.read_parquet(tiny_run / "neurons.parquet")
    at = neurons[(neurons.arm == "concept") & (neurons.seed == 0)].set_index(["stage", "layer", "index"])
    first = primed.iloc[0]
    base, final = at.loc[("base", first.layer, first["index"])], at.loc[("round2", first.layer, first["index"])]
    others = {"PER": base.share_PER, "ORG": base.share_ORG, "MISC": base.share_MISC}
    assert first.old_class == max(others, key=others.get)
    assert first.old_share_after == pytest.approx(final[f"share_{first.old_class}"])
    assert first.concept_share_before == pytest.approx(base.share_LOC)
    assert first.blend == pytest.approx(2 * min(final[f"share_{first.old_class}"], final.share_LOC))
    blend = open_run(tiny_run).summary.section(BlendSummary)
    assert blend.neurons == len(primed) and blend.occurrences == 50
    assert blend.primed["blend"] == pytest.approx(primed.blend.mean())
    assert blend.old_classes == primed.old_class.value_counts().to_dict()
    survivors = neurons[(neurons.arm == "concept") & (neurons.stage == "round2") & ~neurons.pruned]
    assert blend.survivors.neurons == len(survivors)
    assert blend.survivors.entropy_after == pytest.approx(survivors.entropy.mean())


def test_the_neuron_view_shows_a_composition_bar_a_stage(tiny_run):
    neurons = pd.read_parquet(tiny_run / "neurons.parquet")
    row = neurons[(neurons.arm == "concept") & (neurons.stage == "round1") & (neurons.layer == 1)].iloc[0]
    (view,) = neuron_views(tiny_run, [(1, int(row["index"]))], n_sentences=1)
    assert view.body.count('<div class="composition">') == 3, "base, round1, round2"
    bars = view.body.split('<div class="composition">')[1:]
    round1 = bars[1].split("</div>")[0]
    for kind in ("O", "LOC", "PER", "ORG", "MISC"):
        share = row[f"share_{kind}"]
        assert (f'data-class="{kind}" style="width:{100 * share:.2f}%' in round1) == (share > 0)
    assert f"{row.entropy:.2f}</td>" in view.body


def test_the_blend_plot_draws_every_survivor_and_the_primed_neurons(tiny_run):
    axis = plot_blend(tiny_run).axes[0]
    survivors, primed = axis.collections
    neurons = pd.read_parquet(tiny_run / "neurons.parquet")
    at = neurons[(neurons.arm == "concept") & (neurons.seed == 0)]
    final = at[at.stage == "round2"].merge(at[at.stage == "base"], on=["layer", "index"], suffixes=("", "_base"))
    alive = final[~final.pruned]
    drawn = survivors.get_offsets()
    assert len(drawn) == len(alive)
    np.testing.assert_allclose(np.sort(drawn[:, 0]), np.sort(alive.entropy_base), atol=1e-9)
    np.testing.assert_allclose(np.sort(drawn[:, 1]), np.sort(alive.entropy), atol=1e-9)
    assert len(primed.get_offsets()) == len(pd.read_csv(tiny_run / "primed.csv"))


def test_the_report_shows_the_blend_of_the_primed_neurons(tiny_run, tiny_page):
    primed = pd.read_csv(tiny_run / "primed.csv").iloc[0]
    section = tiny_page[tiny_page.index('<h2 id="analysis-blend">Primed neurons</h2>') :]
    row = section[section.index(f"<td>L{primed.layer}.{primed['index']}</td>") :].split("</tr>")[0]
    assert f"<td>{primed.old_class}</td>" in row and f"{primed.blend:.3f}" in row
    assert "Class composition counts each neuron's 50 top-activating words." in section


def test_token_vectors_are_the_mean_input_embedding_of_each_neurons_tokens():
    embed = InputEmbedder(load_model("tiny-bert"))
    even = token_vectors(embed, [[("Oslo", 1.0), ("Paris", 0.5)], [("rain", 1.0), ("Oslo", 0.2)]])
    assert torch.equal(even[0], embed(["Oslo", "Paris"]).mean(0))
    assert torch.equal(even[1], embed(["rain", "Oslo"]).mean(0))
    uneven = token_vectors(embed, [["Oslo"], ["rain", "Paris"]])
    assert torch.equal(uneven[0], embed(["Oslo"])[0]) and torch.equal(uneven[1], embed(["rain", "Paris"]).mean(0))
    assert not torch.equal(even[0], embed(["Oslo"])[0]), "two words, not one"
