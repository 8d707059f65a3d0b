"""A study's summary as typed sections: the core's (``StudySummary``) and each analysis's.

``summary.json`` holds the core's fields and, under its name, the section of every analysis
that ran. Views and the command line read it as ``StudySummary`` by attribute, and an
analysis's section through ``StudySummary.section`` as the analysis's own dataclass, so a
renamed field fails in mypy rather than in the report.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import pandas as pd

from lens_relearn.errors import LensRelearnError
from lens_relearn.stats import interval
from lens_relearn.study.analysis import ANALYSES, StudyContext, mean_f1
from lens_relearn.study.folders import NEURON_TABLE
from lens_relearn.tagger.scores import concept_scores

T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% Student-t interval over ``n`` values (``lens_relearn.stats.interval``)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Curve:
    """A score at every stage of an arm on the test split: means over seeds, and their intervals by stage."""

    base: float
    pruned: float
    rounds: list[float]
    intervals: dict[str, Interval]


@dataclass(frozen=True)
class ArmCurves:
    """An arm's overall F1 and the concept's F1, stage by stage."""

    f1: Curve
    concept_f1: Curve


@dataclass(frozen=True)
class DataCounts:
    """Where the NER data came from and how many sentences each split has."""

    source: str
    splits: dict[str, int]


@dataclass(frozen=True)
class CorpusCounts:
    """The concept corpus neurons were ranked on: its source, its concept label and its size."""

    source: str
    concept: str
    sentences: int
    words: int
    concept_words: int


@dataclass(frozen=True)
class RemovalCounts:
    """How many of the site's neurons an arm removes, how, and which arm leads."""

    count: int
    of: int
    mode: str
    value: str
    arm: str


@dataclass(frozen=True)
class AnalysesRun:
    """Which analyses ran, and why each other registered one did not."""

    ran: list[str]
    skipped: dict[str, str]


@dataclass(frozen=True)
class StudySummary:
    """What ``summary.json`` says: the core's fields, and each analysis's section in ``sections``.

    Attributes:
        f1, concept_f1: The first arm's curves (``arms`` has every arm's).
        layer_saliency: The first arm's mean saliency of each layer, by stage.
        seconds: The time the stages took (the base stage counted once).
        sections: Each analysis's section by name, as its ``summary_type``.
    """

    model: str
    concept: str
    concept_classes: list[str]
    data: DataCounts
    concept_corpus: CorpusCounts
    site: str
    ranking: str
    aggregation: str
    seeds: list[int]
    pruned: RemovalCounts
    f1: Curve
    concept_f1: Curve
    layer_saliency: dict[str, list[float]]
    arms: dict[str, ArmCurves]
    seconds: float
    analyses: AnalysesRun
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, kind: type[T]) -> T | None:
        """The section of that type (an analysis's ``summary_type``), or None if the analysis did not run.

        Example:
            >>> # run.summary.section(CollateralSummary).arms["concept"].selectivity["pruned"]
        """
        return next((value for value in self.sections.values() if isinstance(value, kind)), None)

    def to_dict(self) -> dict:
        """The summary as ``summary.json`` holds it: the core's fields, then each section under its name."""
        core = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "sections"}
        return {**core, **{name: to_plain(section) for name, section in self.sections.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> StudySummary:
        """Read ``summary.json``'s value back; a section of an analysis not registered now stays a dict."""
        core = from_plain(cls, values)
        sections = {}
        for name in (name for name in core.analyses.ran if values.get(name) is not None):
            kind = ANALYSES.get(name).summary_type if name in ANALYSES else None
            sections[name] = from_plain(kind, values[name]) if kind is not None else values[name]
        return dataclasses.replace(core, sections=sections)


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and dicts as JSON's dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    return value


def from_plain(kind: Any, value: Any) -> Any:
    """A JSON value as ``kind``: a dataclass, ``list[X]``, ``dict[str, X]``, ``X | None`` or a plain type.

    Example:
        >>> from_plain(dict[str, Interval], {"base": {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 3}})
        {'base': Interval(mean=0.5, low=0.4, high=0.6, n=3)}
    """
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        return from_plain(next(arg for arg in get_args(kind) if arg is not type(None)), value)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, dict):
            raise LensRelearnError(f"A {kind.__name__} section of summary.json is not an object: {value!r:.80}.")
        hints = get_type_hints(kind)
        fields = [f for f in dataclasses.fields(kind) if f.init]
        missing = [
            f.name for f in fields if f.name not in value and f.default is f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise LensRelearnError(f"A {kind.__name__} section of summary.json lacks {', '.join(missing)}.")
        return kind(**{f.name: from_plain(hints[f.name], value[f.name]) for f in fields if f.name in value})
    if origin is list:
        return [from_plain(get_args(kind)[0], item) for item in value]
    if origin is dict:
        return {key: from_plain(get_args(kind)[1], item) for key, item in value.items()}
    return value


def core_summary(study: StudyContext, ran: list[str], skipped: dict[str, str]) -> StudySummary:
    """The core's tables (``performance``, ``types``, ``neurons``, ``layers``) written, and its summary fields."""
    config, inputs = study.config, study.inputs
    records = study.records
    performance = _performance(study, records)
    study.folder.write_table("performance", performance)
    study.folder.write_table("types", _types(study, records))
    study.folder.write_table(NEURON_TABLE, study.stage_tables(NEURON_TABLE))
    layers = study.stage_tables("layers")
    study.folder.write_table("layers", layers)
    arms = {
        arm: ArmCurves(_curve(study, performance, arm, "f1"), _curve(study, performance, arm, "concept_f1"))
        for arm in config.arms
    }
    main = study.main_arm
    corpus, corpus_concept = inputs.corpus, inputs.corpus_concept

    def layer_means(stage: str) -> list[float]:
        rows = layers[(layers.arm == main) & (layers.stage == stage)]
        return rows.groupby("layer")["mean"].mean().round(12).tolist()

    return StudySummary(
        model=config.model,
        concept=inputs.concept.name,
        concept_classes=list(inputs.concept.members),
        data=DataCounts(inputs.data.source, {split: len(s) for split, s in inputs.data.splits().items()}),
        concept_corpus=CorpusCounts(
            config.concept_corpus,
            corpus_concept.name,
            len(corpus),
            sum(len(s) for s in corpus),
            sum(corpus_concept.covers(t) for s in corpus for t in s.tags),
        ),
        site=config.site,
        ranking=config.ranking,
        aggregation=config.aggregation,
        seeds=list(config.seeds),
        pruned=RemovalCounts(inputs.count, inputs.site.n_neurons, config.prune_mode, config.prune_value, main),
        f1=arms[main].f1,
        concept_f1=arms[main].concept_f1,
        layer_saliency={stage: layer_means(stage) for stage in study.stages},
        arms=arms,
        seconds=sum(r["seconds"] for r in records if r["stage"] != "base" or r["arm"] == main),
        analyses=AnalysesRun(ran, skipped),
    )


def _performance(study: StudyContext, records: list[dict]) -> pd.DataFrame:
    """One row a seed, arm, stage and split: F1, precision, recall, the concept's F1, the others' mean F1."""
    concept = study.inputs.concept
    return pd.DataFrame(
        [
            {
                "seed": r["seed"],
                "arm": r["arm"],
                "stage": r["stage"],
                "split": split,
                "f1": s["f1"],
                "precision": s["precision"],
                "recall": s["recall"],
                "concept_f1": concept_scores(s, concept.members)["f1"],
                "other_f1": mean_f1(s, concept.contrast),
                "token_accuracy": s["token_accuracy"],
            }
            for r in records
            for split, s in r["scores"].items()
        ]
    )


def _types(study: StudyContext, records: list[dict]) -> pd.DataFrame:
    """One row a seed, arm, stage, split and entity type: its F1 and support."""
    kinds = [c for c in study.inputs.concept.classes if c != "O"]
    return pd.DataFrame(
        [
            {
                "seed": r["seed"],
                "arm": r["arm"],
                "stage": r["stage"],
                "split": split,
                "type": kind,
                "f1": s["per_type"].get(kind, {}).get("f1", 0.0),
                "support": s["per_type"].get(kind, {}).get("support", 0),
            }
            for r in records
            for split, s in r["scores"].items()
            for kind in kinds
        ]
    )


def _curve(study: StudyContext, performance: pd.DataFrame, arm: str, column: str) -> Curve:
    test = performance[(performance.arm == arm) & (performance.split == "test")]
    per_stage = {stage: Interval(**interval(test[test.stage == stage][column].tolist())) for stage in study.stages}
    return Curve(
        per_stage["base"].mean,
        per_stage["pruned"].mean,
        [per_stage[f"round{r}"].mean for r in range(1, study.config.rounds + 1)],
        per_stage,
    )
