"""The tagger: a word-level head on a bridge model, its training and its entity-level scores."""

from lens_relearn.tagger.model import Tagger
from lens_relearn.tagger.scores import concept_scores, entity_scores, evaluate_tagger
from lens_relearn.tagger.training import TrainHistory, train_tagger

__all__ = ["Tagger", "TrainHistory", "concept_scores", "entity_scores", "evaluate_tagger", "train_tagger"]
