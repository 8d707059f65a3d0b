import pytest
import torch

from lens_relearn import LensRelearnError, Tagger, collect_stats, evaluate_tagger, load_model, train_tagger
from lens_relearn.data import CONLL_TAGS, Sentence
from lens_relearn.tagger import concept_scores, entity_scores
from lens_relearn.tagger.scores import concept_scores_by_form
from lens_relearn.tagger.training import Schedule

SENTENCES = [
    Sentence(
        ["Rain", "fell", "in", "Oslo", "and", "New", "York", "."], ["O", "O", "O", "B-LOC", "O", "B-LOC", "I-LOC", "O"]
    ),
    Sentence(
        ["Ada", "Lovelace", "joined", "Acme", "Corp", "in", "Paris"],
        ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC"],
    ),
    Sentence(["The", "French", "team", "won", "."], ["O", "B-MISC", "O", "O", "O"]),
    Sentence(["Nothing", "happened", "today"], ["O", "O", "O"]),
] * 6


# entity_scores against seqeval's documented results (default mode, conlleval semantics).


def test_seqeval_readme_example():
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = entity_scores(gold, pred)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.5, 0.5)
    assert scores["per_type"]["MISC"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
        "predicted": 1,
        "correct": 0,
    }
    assert scores["per_type"]["PER"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 1,
        "predicted": 1,
        "correct": 1,
    }


def test_partial_span_is_a_miss_and_a_false_alarm():
    scores = entity_scores([["B-LOC", "I-LOC", "O"]], [["B-LOC", "O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_type_error_counts_against_both_types():
    scores = entity_scores([["B-PER", "O", "B-LOC"]], [["B-ORG", "O", "B-LOC"]])
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["per_type"]["PER"]["recall"] == 0.0 and scores["per_type"]["ORG"]["precision"] == 0.0
    assert scores["per_type"]["ORG"]["support"] == 0


def test_concept_scores_pool_the_concepts_types_and_keep_types_apart():
    gold = [["B-GPE", "I-GPE", "O", "B-LOC", "B-FAC"], ["B-LOC", "O"]]
    pred = [["B-GPE", "I-GPE", "O", "B-GPE", "B-LOC"], ["B-LOC", "O"]]
    scores = entity_scores(gold, pred)
    places = concept_scores(scores, ["GPE", "LOC"])
    # Gold GPE, LOC, LOC; predicted GPE (right), GPE (wrong type), LOC (a FAC), LOC (right).
    assert (places["support"], places["predicted"], places["correct"]) == (3, 4, 2)
    assert places["precision"] == 0.5 and places["recall"] == 2 / 3
    assert concept_scores(scores, ["LOC"]) == scores["per_type"]["LOC"]
    assert concept_scores(scores, ["CITY"])["f1"] == 0.0


def test_i_after_o_opens_an_entity():
    scores = entity_scores([["O", "B-LOC", "I-LOC", "O"]], [["O", "I-LOC", "I-LOC", "O"]])
    assert scores["f1"] == 1.0
    split = entity_scores([["B-PER", "I-PER"]], [["B-PER", "I-ORG"]])
    assert split["precision"] == 0.0 and split["recall"] == 0.0


def test_mixed_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-MISC", "O"]]
    scores = entity_scores(gold, pred)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)


def test_misaligned_inputs_are_refused():
    with pytest.raises(LensRelearnError):
        entity_scores([["O", "O"]], [["O"]])


# Training, determinism, checkpoints.


def make_tagger(spec="tiny-bert"):
    return Tagger(load_model(spec), CONLL_TAGS)


def test_training_learns_the_training_data():
    tagger = make_tagger()
    before = evaluate_tagger(tagger, SENTENCES)
    history = train_tagger(tagger, SENTENCES, epochs=8, lr=3e-3, batch_size=4, progress=False)
    after = evaluate_tagger(tagger, SENTENCES)
    assert len(history.losses) == 8 * 6 and len(history.epoch_seconds) == 8
    assert history.losses[-1] < history.losses[0] / 4
    assert after["f1"] > 0.9 > before["f1"]
    assert after["token_accuracy"] == pytest.approx(1.0)


def test_same_seed_gives_identical_losses():
    runs = [
        train_tagger(
            make_tagger("tiny-llama"), SENTENCES, epochs=1, lr=1e-3, batch_size=4, seed=7, progress=False
        ).losses
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = train_tagger(make_tagger("tiny-llama"), SENTENCES, epochs=1, lr=1e-3, batch_size=4, seed=8, progress=False)
    assert other.losses != runs[0]


def test_the_fused_optimizer_takes_the_same_steps_up_to_rounding():
    taggers = {fused: make_tagger("tiny-llama") for fused in (False, True)}
    start = torch.cat([p.detach().flatten() for p in taggers[True].parameters()])
    losses = {
        fused: train_tagger(
            tagger, SENTENCES, epochs=2, lr=1e-3, batch_size=4, seed=7, fused=fused, progress=False
        ).losses
        for fused, tagger in taggers.items()
    }
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    weights = {
        fused: torch.cat([p.detach().flatten() for p in tagger.parameters()]) for fused, tagger in taggers.items()
    }
    moved = (weights[False] - start).abs().max()
    assert (weights[True] - weights[False]).abs().max() < moved / 100, "the same steps, not merely small ones"
    assert Schedule(taggers[True], steps=1, lr=1e-3, fused=True).optimizer.defaults["fused"] is True


def test_saved_tagger_reloads_with_identical_logits(tiny_model, tmp_path):
    tagger = Tagger(tiny_model, CONLL_TAGS, aggregation="average")
    train_tagger(tagger, SENTENCES[:8], epochs=1, lr=1e-2, batch_size=4, progress=False)
    tagger.save(tmp_path / "tagger")
    again = Tagger.load(tmp_path / "tagger")
    batch = tagger.encode(SENTENCES[:4])
    with torch.no_grad():
        assert torch.equal(tagger.eval()(batch), again(batch))
    assert again.aggregation == "average" and again.labels == CONLL_TAGS


def test_masked_unit_stays_zero_through_training_and_evaluation():
    tagger = make_tagger("tiny-gpt2")
    unit = 5

    def zero_unit(activation, hook):
        activation[..., unit] = 0.0
        return activation

    tagger.model.add_perma_hook("blocks.1.mlp.hook_post", zero_unit)
    seen = []
    tagger.model.blocks[1].mlp.out.original_component.register_forward_pre_hook(
        lambda module, args: seen.append(args[0][..., unit].detach().clone())
    )
    train_tagger(tagger, SENTENCES, epochs=1, batch_size=4, progress=False)
    evaluate_tagger(tagger, SENTENCES, batch_size=8)
    assert len(seen) == 6 + 3
    assert all(torch.all(batch == 0) for batch in seen)


def modes(tagger: Tagger) -> set[bool]:
    """The training flags of every module, the wrapped Hugging Face model's (and its dropouts) included."""
    return {m.training for m in (*tagger.modules(), *tagger.model.original_model.modules())}


@pytest.mark.parametrize("training", [True, False])
def test_a_pass_over_sentences_leaves_the_tagger_in_the_mode_it_found(training):
    tagger = make_tagger().train(training)
    tagger.predict(SENTENCES[:2])
    assert modes(tagger) == {training}
    collect_stats(tagger.model, SENTENCES[:2], progress=False)
    assert modes(tagger) == {training}


def test_words_past_the_context_are_predicted_o():
    tagger = make_tagger()
    long = Sentence(["Oslo"] * 600, ["B-LOC"] * 600)
    with pytest.warns(UserWarning, match="longer than 512 tokens"):
        predicted = tagger.predict([long])[0]
    assert len(predicted) == 600 and set(predicted[510:]) == {"O"}


def test_tags_outside_the_labels_are_refused():
    tagger = Tagger(load_model("tiny-bert"), ["O", "B-LOC", "I-LOC"])
    with pytest.raises(LensRelearnError, match="not among the tagger's labels"):
        train_tagger(tagger, SENTENCES, epochs=1, progress=False)


def test_bad_configuration_is_refused():
    with pytest.raises(LensRelearnError, match="Unknown aggregation"):
        Tagger(load_model("tiny-bert"), CONLL_TAGS, aggregation="max")
    with pytest.raises(LensRelearnError, match="No training sentences"):
        train_tagger(make_tagger(), [], progress=False)


# The learning-rate schedule (transformers' linear schedule with warm-up).


def rates(schedule, n):
    """The learning rate of each of ``n`` steps, as the optimizer sees it when it steps."""
    seen = []
    for _ in range(n):
        seen.append([group["lr"] for group in schedule.optimizer.param_groups])
        schedule.step()
    return seen


def test_schedule_without_warmup_has_the_rates_of_the_hand_written_one_bit_for_bit():
    torch.manual_seed(0)
    steps, lr = 10, 5e-5

    def old_factor(step):  # the hand-written LambdaLR factor it replaced, warm-up 0
        return max(0.0, (steps - step) / max(1, steps - 0))

    schedule = Schedule(torch.nn.Linear(3, 2), steps=steps, lr=lr, warmup_fraction=0.0)
    assert rates(schedule, steps) == [[lr * old_factor(step)] * 2 for step in range(steps)]
    assert schedule.optimizer.param_groups[0]["lr"] == 0.0


def test_schedule_with_warmup_starts_at_zero_like_transformers():
    schedule = Schedule(torch.nn.Linear(3, 2), steps=10, lr=1.0, warmup_fraction=0.3)
    seen = [group[0] for group in rates(schedule, 10)]
    # 3 warm-up steps at i / 3 (the hand-written schedule used (i + 1) / 3), then a linear decay over 7.
    assert seen == pytest.approx([0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7], abs=1e-15)


def test_schedule_resumes_from_its_state_dict():
    first = Schedule(torch.nn.Linear(3, 2), steps=10, lr=1.0, warmup_fraction=0.2)
    rates(first, 4)
    again = Schedule(torch.nn.Linear(3, 2), steps=10, lr=1.0, warmup_fraction=0.2)
    again.load_state_dict(first.state_dict())
    assert rates(again, 6) == rates(first, 6)


def test_the_concept_scores_split_into_names_seen_in_training_and_the_others():
    known = [Sentence(["Rain", "in", "New", "York", "today"], ["O"] * 5), Sentence(["Oslo", "is", "cold"], ["O"] * 3)]
    test = [
        Sentence(["New", "York", "and", "Lima"], ["B-LOC", "I-LOC", "O", "B-LOC"]),
        Sentence(["York", "New", "Bergen"], ["B-LOC", "I-LOC", "O"]),
        Sentence(["Oslo", "Ada"], ["B-LOC", "B-PER"]),
    ]
    predicted = [["B-LOC", "I-LOC", "O", "O"], ["B-LOC", "I-LOC", "B-LOC"], ["B-LOC", "B-LOC"]]
    parts = concept_scores_by_form(test, predicted, ["LOC"], known)
    assert parts["seen"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2, "correct": 2}
    unseen = parts["unseen"]  # Lima missed; "York New" (not in a row in training) found; Bergen and Ada wrongly tagged
    assert (unseen["support"], unseen["predicted"], unseen["correct"]) == (2, 3, 1)
    assert unseen["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert concept_scores_by_form(test, predicted, ["PER"], known)["unseen"]["support"] == 1
