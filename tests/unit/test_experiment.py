import dataclasses
import json
import typing

import pytest

from lens_relearn import LensRelearnError, load_ner
from lens_relearn.study import skeleton, stage
from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.folders import StudyFolder
from lens_relearn.study.runner import run_experiment

TINY = {
    "model": "tiny-bert",
    "n_train": 60,
    "n_validation": 30,
    "n_test": 30,
    "n_novel": 10,
    "base_epochs": 1,
    "rounds": 1,
    "max_types": 300,
    "primed_top": 20,
}


def test_config_round_trips_through_json():
    config = preset("paper", model="tiny-gpt2", seeds=(0, 1), arms=("concept", "none"))
    assert ExperimentConfig.from_json(config.to_json()) == config


def test_random_baseline_differs_by_seed_but_not_in_size_or_pool(tmp_path):
    config = ExperimentConfig(**TINY, seeds=(0, 1), prune_count=40)
    run_experiment(config, tmp_path, progress=False)
    sets = {
        seed: [tuple(n) for n in json.loads((tmp_path / f"seed{seed}/random/pruned/pruned.json").read_text())]
        for seed in (0, 1)
    }
    assert sets[0] != sets[1]
    assert len(sets[0]) == len(sets[1]) == 40
    for neurons in sets.values():
        assert len(set(neurons)) == 40 and all(0 <= l < 2 and 0 <= i < 256 for l, i in neurons)


def test_the_test_split_is_never_used_for_ranking(tmp_path, monkeypatch):
    seen = []
    shared = stage.shared_pass

    def spying(tagger, sentences, **kw):
        if kw.get("statistics"):
            seen.append(list(sentences))
        return shared(tagger, sentences, **kw)

    monkeypatch.setattr(stage, "shared_pass", spying)
    config = ExperimentConfig(**TINY, arms=("concept",))
    run_experiment(config, tmp_path, progress=False)
    data = load_ner("synthetic", n_train=60, n_validation=30, n_test=30, n_novel=10)
    held_out = {tuple(s.words) for s in data.test + data.novel_test}
    assert len(seen) == 3  # base, pruned, one round
    for corpus in seen:
        assert corpus == data.validation
        assert not {tuple(s.words) for s in corpus} & held_out


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"concept": "CITY"}, "concept 'CITY' is not in the data; the classes present are O"),
        ({"prune_count": 513}, "Cannot prune 513 neurons: the site 'mlp' of 'tiny-bert' has 512"),
        ({"model": "no-such-model"}, "Known offline specs"),
    ],
)
def test_impossible_configs_stop_before_training(tmp_path, monkeypatch, changes, message):
    monkeypatch.setattr(skeleton, "train_tagger", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(LensRelearnError, match=message):
        run_experiment(ExperimentConfig(**{**TINY, **changes}), tmp_path, progress=False)


# A config checks itself on construction: impossible values never reach the runner.

LITERAL_FIELDS = {
    name: typing.get_args(kind)
    for name, kind in typing.get_type_hints(ExperimentConfig).items()
    if typing.get_origin(kind) is typing.Literal
}


def test_a_value_outside_a_literal_is_refused_naming_the_allowed_values():
    with pytest.raises(LensRelearnError, match=r"^site='attn' is not one of mlp, resid\.$"):
        ExperimentConfig(site="attn")


def test_a_preset_with_an_impossible_change_is_refused():
    with pytest.raises(LensRelearnError, match=r"^prune_mode='cut' is not one of mask, weights\.$"):
        preset("quick", prune_mode="cut")


def test_every_literal_field_is_checked():
    assert set(LITERAL_FIELDS) == {"site", "aggregation", "ranking", "prune_mode", "prune_value", "mask_forget"}
    for name, allowed in LITERAL_FIELDS.items():
        for value in allowed:
            assert getattr(ExperimentConfig(**{name: value}), name) == value
        with pytest.raises(LensRelearnError) as error:
            ExperimentConfig(**{name: "nope"})
        assert str(error.value) == f"{name}='nope' is not one of {', '.join(allowed)}."


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"arms": ("concept", "concept@shuffled")},
            "Unknown arm 'concept@shuffled': an arm is a removal's name (concept, random, none, or one registered), "
            "optionally followed by @without_concept, @concept_as_o or @few:N (retrained without the concept's "
            "sentences, with its tags relabelled O, or with N of its sentences and every sentence without it).",
        ),
        (
            {"arms": ("concept", "concept")},
            "arms=('concept', 'concept') must be one or more distinct arms.",
        ),
        ({"arms": ()}, "arms=() must be one or more distinct arms."),
        ({"seeds": ()}, "At least one seed is needed."),
        ({"rounds": 0}, "rounds=0 must be at least 1."),
        ({"round_epochs": 0}, "round_epochs=0 must be at least 1."),
        ({"base_epochs": 0}, "base_epochs=0 must be at least 1."),
        ({"batch_size": 0}, "batch_size=0 must be at least 1."),
        ({"top_k": 0}, "top_k=0 must be at least 1."),
        ({"max_types": 0}, "max_types=0 must be at least 1."),
        ({"primed_top": 0}, "primed_top=0 must be at least 1."),
        ({"prune_count": -1}, "prune_count=-1 must be at least 0 (or None)."),
        ({"prune_fraction": 1.5}, "prune_fraction=1.5 must lie in [0, 1]."),
        ({"prune_fraction": -0.1}, "prune_fraction=-0.1 must lie in [0, 1]."),
        ({"warmup_fraction": 1.0}, "warmup_fraction=1.0 must lie in [0, 1)."),
        ({"lr": 0.0}, "lr=0.0 must be greater than 0."),
        ({"lr": float("nan")}, "lr=nan must be greater than 0."),
    ],
)
def test_impossible_numbers_and_arms_are_refused_on_construction(changes, message):
    with pytest.raises(LensRelearnError) as error:
        ExperimentConfig(**changes)
    assert str(error.value) == message


def test_the_edges_of_the_ranges_are_accepted():
    ExperimentConfig(
        prune_fraction=0.0, prune_count=0, warmup_fraction=0.0, rounds=1, batch_size=1, arms=("none",), seeds=(3,)
    )
    ExperimentConfig(prune_fraction=1.0, prune_count=None, warmup_fraction=0.99)


def test_replace_and_from_json_check_too():
    with pytest.raises(LensRelearnError, match="ranking='nope' is not one of probeless, binary"):
        ExperimentConfig().replace(ranking="nope")
    text = json.dumps({**dataclasses.asdict(ExperimentConfig()), "aggregation": "max"})
    with pytest.raises(LensRelearnError, match="aggregation='max' is not one of first, last, average"):
        ExperimentConfig.from_json(text)


def test_a_folder_of_another_config_is_refused(tmp_path, monkeypatch):
    StudyFolder(tmp_path).claim(ExperimentConfig(**TINY))
    monkeypatch.setattr(skeleton, "train_tagger", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(LensRelearnError, match="different config \\(it differs in lr\\)"):
        run_experiment(ExperimentConfig(**{**TINY, "lr": 1e-3}), tmp_path, progress=False)


def test_unknown_preset():
    with pytest.raises(LensRelearnError, match="Unknown preset 'fast'"):
        preset("fast")
