"""Distance from the base model: how far each stage's representations and weights moved (docs/design.md §25).

At every stage, for a fixed seeded subset of the test split's sentences (``distance_sentences``):
linear CKA, layer by layer, between the base model's and this stage's word representations at the
study's site and at the residual stream (``lens_relearn.neurons.distance``), and the relative L2
distance of the tagger's weights from the base tagger's. A removal by hooks moves no weight; a
retraining round does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import safetensors.torch

from lens_relearn.files import replace_file
from lens_relearn.neurons.distance import linear_cka, weight_distance
from lens_relearn.neurons.passes import VECTOR_SITE
from lens_relearn.study.analysis import Analysis, Needs, StageOutcome, StudyContext, word_sample
from lens_relearn.study.folders import StageKey
from lens_relearn.tagger.model import WEIGHTS_FILE


@dataclass(frozen=True)
class StageDistance:
    """A stage's distance from the base model (means over seeds).

    Attributes:
        cka_site: Linear CKA with the base model a layer of the study's site.
        cka_resid: The same a residual layer (the embeddings' output, then each block's).
        weights: ``‖θ - θ_base‖ / ‖θ_base‖`` of the tagger's weights.
    """

    cka_site: list[float]
    cka_resid: list[float]
    weights: float


@dataclass(frozen=True)
class DistanceSummary:
    """Every arm's stages' distance from the base model, by arm and stage; ``site``: the study's site."""

    site: str
    sentences: int
    arms: dict[str, dict[str, StageDistance]]


WORDS_FILE = "distance_words.safetensors"  # the base stage's words, for a resumed study


class Distance(Analysis):
    """CKA per layer and weight distance to the base model at every stage (``distance.csv`` in each stage folder:
    a row a measure and layer, ``cka_site``, ``cka_resid``, and ``weight_distance`` at layer -1)."""

    name = "distance"
    needs = Needs(test_words=True)
    summary_type = DistanceSummary

    def at_stage(self, study: StudyContext, outcome: StageOutcome) -> Mapping[str, pd.DataFrame]:
        seed, sites, words = outcome.key.seed, self._sites(study), outcome.test_pass.words
        parameters = {name: value.detach() for name, value in outcome.tagger.named_parameters()}
        if outcome.key.arm is None:
            self._save(study, outcome.key, words)
            study.kept(self.name, seed, lambda: (words, {name: value.clone() for name, value in parameters.items()}))
        base_words, base_weights = study.kept(self.name, seed, lambda: self._saved(study, seed))
        rows = [
            {"measure": measure, "layer": layer, "value": linear_cka(base_words[site][layer], words[site][layer])}
            for measure, site in zip(("cka_site", "cka_resid"), sites, strict=True)
            for layer in range(len(words[site]))
        ]
        rows.append({"measure": "weight_distance", "layer": -1, "value": weight_distance(parameters, base_weights)})
        return {"distance": pd.DataFrame(rows)}

    def summarise(self, study: StudyContext) -> DistanceSummary:
        table = study.stage_tables("distance")
        study.folder.write_table("distance", table)
        means = table.groupby(["arm", "stage", "measure", "layer"]).value.mean().round(12)

        def stage(arm: str, name: str) -> StageDistance:
            return StageDistance(
                means.loc[(arm, name, "cka_site")].tolist(),
                means.loc[(arm, name, "cka_resid")].tolist(),
                float(means.loc[(arm, name, "weight_distance", -1)]),
            )

        arms = {arm: {name: stage(arm, name) for name in study.stages} for arm in study.config.arms}
        return DistanceSummary(study.config.site, len(word_sample(study.config, study.inputs.data.test)), arms)

    def _sites(self, study: StudyContext) -> tuple[str, str]:
        return study.config.site, VECTOR_SITE

    def _save(self, study: StudyContext, key: StageKey, words: dict) -> None:
        """The base model's words, kept in its stage folder for a resumed study."""
        tensors = {f"{site}.{i}": kept.contiguous() for site, layers in words.items() for i, kept in enumerate(layers)}
        path = study.folder.stage_dir(key) / WORDS_FILE
        replace_file(path, lambda staging: safetensors.torch.save_file(tensors, str(staging)))

    def _saved(self, study: StudyContext, seed: int) -> tuple[dict, dict]:
        """The base model's words and weights, as its stage folder keeps them (a resumed study)."""
        base = StageKey(seed, None, "base")
        tensors = safetensors.torch.load_file(str(study.folder.stage_dir(base) / WORDS_FILE))
        words: dict[str, list] = {}
        for name in sorted(tensors, key=lambda name: (name.rsplit(".", 1)[0], int(name.rsplit(".", 1)[1]))):
            words.setdefault(name.rsplit(".", 1)[0], []).append(tensors[name])
        weights = safetensors.torch.load_file(str(study.folder.tagger_dir(base) / WEIGHTS_FILE))
        return words, weights
