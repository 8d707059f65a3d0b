import json

import pytest

from lens_relearn import LensRelearnError, load_ner
from lens_relearn.study import runner as experiment
from lens_relearn.study.config import ExperimentConfig, preset
from lens_relearn.study.runner import run_experiment

TINY = dict(model="tiny-bert", n_train=60, n_validation=30, n_test=30, n_novel=10, base_epochs=1,
            rounds=1, max_types=300, primed_top=20)


def test_config_round_trips_through_json():
    config = preset("paper", model="tiny-gpt2", seeds=(0, 1), arms=("concept", "none"))
    assert ExperimentConfig.from_json(config.to_json()) == config


def test_random_baseline_differs_by_seed_but_not_in_size_or_pool(tmp_path):
    config = ExperimentConfig(**TINY, seeds=(0, 1), prune_count=40)
    run_experiment(config, tmp_path, progress=False)
    sets = {seed: [tuple(n) for n in json.loads((tmp_path / f"seed{seed}/random/pruned/pruned.json").read_text())]
            for seed in (0, 1)}
    assert sets[0] != sets[1]
    assert len(sets[0]) == len(sets[1]) == 40
    for neurons in sets.values():
        assert len(set(neurons)) == 40 and all(0 <= l < 2 and 0 <= i < 256 for l, i in neurons)


def test_the_test_split_is_never_used_for_ranking(tmp_path, monkeypatch):
    seen = []
    collect = experiment.collect_stats
    monkeypatch.setattr(experiment, "collect_stats", lambda model, sentences, **kw: seen.append(list(sentences)) or collect(model, sentences, **kw))
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
        ({"site": "attn"}, "site='attn' is not one of mlp, resid"),
        ({"arms": ("concept", "shuffled")}, "must be distinct names among concept, random, none"),
        ({"model": "no-such-model"}, "Known offline specs"),
    ],
)
def test_impossible_configs_stop_before_training(tmp_path, monkeypatch, changes, message):
    monkeypatch.setattr(experiment, "train_tagger", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(LensRelearnError, match=message):
        run_experiment(ExperimentConfig(**{**TINY, **changes}), tmp_path, progress=False)


def test_a_folder_of_another_config_is_refused(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(ExperimentConfig(**TINY).to_json())
    monkeypatch.setattr(experiment, "train_tagger", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(LensRelearnError, match="different config \\(differs in lr\\)"):
        run_experiment(ExperimentConfig(**{**TINY, "lr": 1e-3}), tmp_path, progress=False)


def test_unknown_preset():
    with pytest.raises(LensRelearnError, match="Unknown preset 'fast'"):
        preset("fast")
