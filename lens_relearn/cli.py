"""The ``lens-relearn`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path

from lens_relearn.errors import LensRelearnError

# lens_relearn.study.config.PRESETS, without importing torch
PRESET_NAMES = ("quick", "default", "default3", "compare", "attacks", "decoder", "paper")
REMOVAL_PRESET_NAMES = ("removal",)  # lens_relearn.study.config.REMOVAL_PRESETS

if typing.TYPE_CHECKING:
    from lens_relearn.study.config import ExperimentConfig


def _sites(args: argparse.Namespace) -> None:
    from lens_relearn.models.loading import load_model
    from lens_relearn.models.sites import neuron_sites

    for spec in args.specs:
        start = time.perf_counter()
        model = load_model(spec)
        seconds = time.perf_counter() - start
        print(f"{spec}: {type(model.original_model).__name__}, loaded in {seconds:.1f} s")
        for site in neuron_sites(model).values():
            print(
                f"  {site.name:<5} {site.n_layers:>3} layers x {site.units} units "
                f"= {site.n_neurons} neurons  [{site.hook_names[0]} ... {site.hook_names[-1]}]"
            )


def _finetune(args: argparse.Namespace) -> None:
    from lens_relearn.data.sentences import find_concept
    from lens_relearn.data.sources import load_ner
    from lens_relearn.models.loading import load_model
    from lens_relearn.tagger.model import Tagger
    from lens_relearn.tagger.scores import concept_scores, evaluate_tagger
    from lens_relearn.tagger.training import train_tagger

    data = load_ner(args.data, seed=args.seed, n_train=args.n_train)
    concept = find_concept(args.concept, data.labels)
    from lens_relearn.parallel import resolve_device

    device = resolve_device(args.device)
    tagger = Tagger(load_model(args.model, device=device), data.labels, aggregation=args.aggregation, seed=args.seed)
    start = time.perf_counter()
    train_tagger(tagger, data.train, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    minutes = (time.perf_counter() - start) / 60
    print(f"{args.model} fine-tuned on {len(data.train)} {args.data} sentences in {minutes:.1f} min")
    print(f"{'split':<12} {'F1':>6} {concept.name + ' F1':>{max(8, len(concept.name) + 3)}} {'token acc':>9}")
    for split, sentences in data.splits().items():
        if split == "train":
            continue
        scores = evaluate_tagger(tagger, sentences)
        own = concept_scores(scores, concept.members)["f1"]
        print(
            f"{split:<12} {scores['f1']:6.3f} {own:>{max(8, len(concept.name) + 3)}.3f} {scores['token_accuracy']:9.3f}"
        )
    if args.out:
        print(f"saved to {tagger.save(args.out)}")


def _run(args: argparse.Namespace) -> None:
    from lens_relearn.analyses.collateral import CollateralSummary
    from lens_relearn.study.runner import run_experiment

    config = _config(args)
    out = Path(args.out)
    summary = run_experiment(config, out, progress=not args.quiet, device=args.device)
    if not _main_rank_alone():
        return
    pruned, corpus = summary.pruned, summary.concept_corpus
    print(
        f"{config.model}: {pruned.count} of {pruned.of} {config.site} neurons removed ({pruned.arm} arm), "
        f"{summary.seconds / 60:.1f} min"
    )
    print(
        f"concept corpus: {corpus.source}, {corpus.sentences} sentences, "
        f"{corpus.concept_words} words labelled {corpus.concept}"
    )
    collateral = summary.section(CollateralSummary)
    width = max(8, len(summary.concept) + 3)
    print(f"{'stage':<8} {'F1':>6} {summary.concept + ' F1':>{width}} {'others F1':>9}")
    f1, concept = summary.f1, summary.concept_f1
    values = [f1.base, f1.pruned, *f1.rounds]
    concept_values = [concept.base, concept.pruned, *concept.rounds]
    for stage, overall, own in zip(config.stages(), values, concept_values, strict=True):
        other = collateral.arms[pruned.arm].other_f1[stage] if collateral else None
        print(f"{stage:<8} {overall:6.3f} {own:{width}.3f} {'n/a' if other is None else f'{other:.3f}':>9}")
    for arm, curves in summary.arms.items():
        if arm != pruned.arm:
            concept_f1 = curves.concept_f1
            print(f"{arm} arm {summary.concept} F1: pruned {concept_f1.pruned:.3f}, last {concept_f1.rounds[-1]:.3f}")
    if collateral:
        shown = ", ".join(
            f"{arm} arm {'n/a' if value is None else f'{value:.2f}'}"
            for arm, value in ((arm, c.selectivity["pruned"]) for arm, c in collateral.arms.items())
        )
        print(f"selectivity after pruning: {shown}")
    if skipped := summary.analyses.skipped:
        print("analyses not run: " + "; ".join(f"{name} ({why})" for name, why in skipped.items()))
    print(f"results: {out.resolve()}")
    if not args.no_report:
        from lens_relearn.views.report import write_report

        print(f"report:  {write_report(out).resolve()}")


def _report(args: argparse.Namespace) -> None:
    from lens_relearn.models.loading import quiet_libraries
    from lens_relearn.views.report import write_report

    with quiet_libraries():  # the stages' models load without a bar each: the command says one line
        path = write_report(args.dir, seed=args.seed)
    print(f"report: {path.resolve()}")


def _sweep(args: argparse.Namespace) -> None:
    from lens_relearn.study.sweep import selectivity_sweep
    from lens_relearn.views.sweep import plot_sweep

    config = _config(args)
    table = selectivity_sweep(
        config,
        args.out,
        methods=args.methods,
        fractions=args.fractions,
        random_seeds=args.random_seeds,
        progress=not args.quiet,
        device=args.device,
    )
    if not _main_rank_alone():
        return
    base = table.iloc[0]
    print(f"{config.model}: base {config.concept} F1 {base.concept_f1:.3f}, other types' mean F1 {base.other_f1:.3f}")
    print(f"{'method':<17} {'pruned':>7} {config.concept + ' F1':>8} {'others F1':>9} {'selectivity':>11}")
    means = table[table.method != "base"].groupby(["method", "fraction"], sort=False).mean(numeric_only=True)
    for (method, fraction), row in means.iterrows():
        print(f"{method:<17} {fraction:>7.0%} {row.concept_f1:8.3f} {row.other_f1:9.3f} {row.selectivity:11.3f}")
    out = Path(args.out)
    figure = plot_sweep(table, concept=config.concept, model=config.model)
    figure.savefig(out / "sweep.png", dpi=100)
    print(f"results: {(out / 'sweep.csv').resolve()}")
    print(f"plot:    {(out / 'sweep.png').resolve()}")


def _remove(args: argparse.Namespace) -> None:
    from lens_relearn.study.config import REMOVAL_PRESETS, RemovalConfig, removal_preset
    from lens_relearn.study.folders import RemovalFolder
    from lens_relearn.study.iterative import run_removal

    study = _config(args, REMOVAL_PRESETS[args.preset]["study"])
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(RemovalConfig) if f.name != "study"}
    config = removal_preset(args.preset, study=study, **{k: v for k, v in changes.items() if v is not None})
    out = Path(args.out)
    summary = run_removal(config, out, progress=not args.quiet, device=args.device)
    if not _main_rank_alone():
        return
    concept = summary.concept
    print(
        f"{config.study.model}: {summary.step} of {summary.neurons} {config.study.site} neurons removed an "
        f"iteration; the concept arm stopped after {summary.iterations} iteration(s) "
        f"({summary.pruned_share:.1%} removed): {summary.stop}"
    )
    print(f"{'arm':<8} {'iter':>4} {'removed':>8} {concept + ' before':>12} {concept + ' after':>11} {'others':>7}")
    for row in RemovalFolder(out).table("removal").itertuples():
        others = "n/a" if math.isnan(row.other_f1_after) else f"{row.other_f1_after:.3f}"
        print(
            f"{row.arm:<8} {row.iteration:>4} {row.pruned_share:>8.1%} {row.concept_f1_before:>12.3f} "
            f"{row.concept_f1_after:>11.3f} {others:>7}"
        )
    print(f"results: {out.resolve()}")
    if not args.no_report:
        from lens_relearn.views.removal import write_removal_report

        print(f"report:  {write_removal_report(out).resolve()}")


def _main_rank_alone() -> bool:
    """After a data-parallel run, leave the process group; whether this process is rank 0 (it prints and reports)."""
    from lens_relearn import parallel

    main = parallel.is_main()
    parallel.stop()
    return main


def _launch(argv: list[str], nproc: int) -> None:
    """Run this same command on ``nproc`` ranks on this machine through torchrun (``--standalone``)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}  # the cores shared out
    finished = subprocess.run([*command, "-m", "lens_relearn", *argv], check=False, env={**threads, **os.environ})
    if finished.returncode:
        raise LensRelearnError(
            f"a rank of the {nproc} stopped (torchrun exit status {finished.returncode}; its error is above). "
            "Run the same command again: it resumes after the last stage that finished."
        )


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line without ``--nproc N`` (what each rank runs).

    Example:
        >>> _without_nproc(["run", "--nproc", "2", "--out", "x"]), _without_nproc(["run", "--nproc=2"])
        (['run', '--out', 'x'], ['run'])
    """
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            kept.append(word)
    return kept


def _config(args: argparse.Namespace, preset_name: str | None = None) -> ExperimentConfig:
    """The preset named by ``--preset`` (or ``preset_name``) with every config flag given."""
    from lens_relearn.study.config import ExperimentConfig, preset

    changes = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(ExperimentConfig) if getattr(args, f.name) is not None
    }
    for name in ("arms", "seeds", "analyses"):
        if name in changes:
            changes[name] = tuple(changes[name])
    return preset(preset_name or args.preset, **changes)


def _add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when there is one, else the CPU)")


def _add_parallel_flags(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--nproc``: where to run, and on how many ranks of this machine (through torchrun)."""
    _add_device_flag(parser)
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="ranks on this machine, data-parallel through torchrun (one a GPU; on the CPU, gloo); "
        "several machines: torchrun --nnodes ... -m lens_relearn ...",
    )


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag a config field; unset flags keep the preset's value."""
    from lens_relearn.study.config import ExperimentConfig

    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        text = f"{f.metadata['help']} (config default: {f.default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(kind) is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(kind)):
            parser.add_argument(
                flag, nargs="+", action=_Listed, convert=_value_type(_item(kind)), default=None, help=text
            )
        else:
            parser.add_argument(flag, type=_value_type(kind), default=None, help=text)


def _item(kind: object) -> object:
    """The item type of ``tuple[X, ...]`` or ``tuple[X, ...] | None``."""
    if typing.get_origin(kind) is not tuple:
        kind = next(a for a in typing.get_args(kind) if typing.get_origin(a) is tuple)
    return typing.get_args(kind)[0]


class _Listed(argparse.Action):
    """A list flag whose values come spaced or comma-separated (``--analyses collateral,probes``)."""

    def __init__(self, *args: typing.Any, convert: Callable[[str], object] = str, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.convert = convert

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: typing.Any,
        option_string: str | None = None,
    ) -> None:
        items = [part.strip() for value in values for part in str(value).split(",") if part.strip()]
        try:
            setattr(namespace, self.dest, [self.convert(item) for item in items])
        except ValueError:
            parser.error(f"{option_string} takes {getattr(self.convert, '__name__', 'value')}s: {' '.join(values)}")


def _value_type(kind: object) -> type:
    """The type a flag's value is parsed as: ``Literal`` values stay strings (the config checks them)."""
    if typing.get_origin(kind) is typing.Literal:
        return str
    options = [a for a in typing.get_args(kind) if a is not type(None)]
    if options:  # X | None
        return _value_type(options[0])
    return kind  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lens-relearn``."""
    parser = argparse.ArgumentParser(
        prog="lens-relearn",
        description="Prune the neurons that carry a concept, retrain, and see where it comes back.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_sites(commands)
    _add_finetune(commands)
    _add_run(commands)
    _add_report(commands)
    _add_sweep(commands)
    _add_remove(commands)
    return parser


def _add_sites(commands: argparse._SubParsersAction) -> None:
    """The ``sites`` command."""
    sites = commands.add_parser(
        "sites",
        help="load models and print their neuron sites",
        description="Load each model and print its neuron sites (layers, units, hook points).",
    )
    sites.add_argument("specs", nargs="+", help="model specs, e.g. minilm smollm2 tiny-gpt2")
    sites.set_defaults(handler=_sites)


def _add_finetune(commands: argparse._SubParsersAction) -> None:
    """The ``finetune`` command."""
    finetune = commands.add_parser(
        "finetune",
        help="fine-tune a model as an NER tagger and score it",
        description="Fine-tune a model as an NER tagger on the training split, then print "
        "entity-level F1 (all types and the concept's) on the other splits.",
    )
    finetune.add_argument("model", help="model spec, e.g. minilm")
    finetune.add_argument("--data", default="synthetic", help="NER source (default: synthetic)")
    finetune.add_argument(
        "--n-train", type=int, help="training sentences: generated (synthetic, default 6000) or at most this many"
    )
    finetune.add_argument("--concept", default="LOC", help="entity type(s) whose F1 is shown (default: LOC)")
    finetune.add_argument("--epochs", type=int, default=3, help="passes over the training split")
    finetune.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (AdamW)")
    finetune.add_argument("--batch-size", type=int, default=16, help="sentences a step")
    finetune.add_argument(
        "--aggregation",
        default="first",
        choices=("first", "last", "average"),
        help="how sub-token states make a word's state",
    )
    finetune.add_argument("--seed", type=int, default=0, help="seeds data, head and batch order")
    finetune.add_argument("--out", help="folder to save the tagger in")
    _add_device_flag(finetune)
    finetune.set_defaults(handler=_finetune)


def _add_run(commands: argparse._SubParsersAction) -> None:
    """The ``run`` command."""
    run = commands.add_parser(
        "run",
        help="run the relearning study (prune concept neurons, retrain, measure)",
        description="Fine-tune a tagger, rank the neurons that carry the concept, prune them "
        "(and, as a baseline, as many random neurons), retrain in rounds, and describe every "
        "stage. A preset sets the defaults; every config field is a flag. Running the same "
        "command on a folder with an interrupted run resumes it.",
    )
    run.add_argument(
        "--preset",
        default="default",
        choices=PRESET_NAMES,
        help="quick: MiniLM on a small corpus, about 3 min on 2 cores; default: the "
        "calibrated MiniLM study; default3: it over seeds 0, 1, 2 with every retraining condition "
        "(concept@without_concept, concept@concept_as_o); compare: the default study with every removal "
        "(concept, random, learned_mask, erase), each also retrained without the concept; attacks: every removal "
        "retrained one round on few:0, few:8, few:32, few:128, full and concept_as_o, over seeds 0, 1, 2; "
        "paper: Lo et al.'s "
        "protocol (resid site, half the neurons, lr 2e-5, batch 8, 4 rounds of 2 epochs)",
    )
    run.add_argument("--out", required=True, help="folder for the results")
    run.add_argument("--quiet", action="store_true", help="print only the final table and paths")
    run.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_parallel_flags(run)
    _add_config_flags(run)
    run.set_defaults(handler=_run)


def _add_report(commands: argparse._SubParsersAction) -> None:
    """The ``report`` command."""
    report = commands.add_parser(
        "report",
        help="write DIR/report.html for a finished study",
        description="Write one self-contained HTML page for a finished study: F1 per stage and "
        "arm, the plots, the primed neurons with their neuron views, and the config. It opens "
        "offline; nothing is loaded from the network.",
    )
    report.add_argument("dir", help="the folder of a finished `lens-relearn run`")
    report.add_argument(
        "--seed", type=int, default=None, help="whose models the neuron views show (default: the first)"
    )
    report.set_defaults(handler=_report)


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    """The ``sweep`` command."""
    from lens_relearn.neurons.ranking import METHODS
    from lens_relearn.study.sweep import FRACTIONS, SWEEP_METHODS

    sweep = commands.add_parser(
        "sweep",
        help="prune the base tagger by each ranking at several fractions and score every entity type",
        description="Fine-tune (or load) the base tagger once, then for each ranking method and "
        "fraction prune its top neurons (no retraining) and score the test split: the concept's "
        "F1 against the other entity types' mean F1, with random neurons as the reference. "
        "Writes sweep.csv, summary.json (the best pruning) and sweep.png (the selectivity frontier).",
    )
    sweep.add_argument("--preset", default="default", choices=PRESET_NAMES, help="as for run")
    sweep.add_argument("--out", required=True, help="folder for the results (a rerun resumes)")
    sweep.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=SWEEP_METHODS,
        help="ranking methods, and learned_mask (a mask learned at each fraction: slower)",
    )
    sweep.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS), help="shares of neurons")
    sweep.add_argument("--random-seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds of the random draws")
    sweep.add_argument("--quiet", action="store_true", help="print only the final table and paths")
    _add_parallel_flags(sweep)
    _add_config_flags(sweep)
    sweep.set_defaults(handler=_sweep)


def _add_remove(commands: argparse._SubParsersAction) -> None:
    """The ``remove`` command."""
    from lens_relearn.study.config import RemovalMethod

    remove = commands.add_parser(
        "remove",
        help="remove the concept again and again: rank, prune, retrain, until it stays gone",
        description="From the base tagger, repeat: rank the neurons on the current model (or learn a mask on it), "
        "prune the best-ranked step of those not pruned yet, retrain, score; stop when the concept stays gone, "
        "when the other entity types fall below a floor, or at a limit. A random arm prunes as many random "
        "neurons. Writes removal.csv, summary.json and report.html; running it again on an interrupted run "
        "resumes it.",
    )
    remove.add_argument("--preset", default="removal", choices=REMOVAL_PRESET_NAMES, help="removal: MiniLM, 5%% a step")
    remove.add_argument("--out", required=True, help="folder for the results (a rerun resumes)")
    remove.add_argument("--quiet", action="store_true", help="print only the final table and paths")
    remove.add_argument("--no-report", action="store_true", help="do not write report.html")
    remove.add_argument(
        "--method",
        choices=typing.get_args(RemovalMethod),
        help="how the concept arm chooses an iteration's neurons: the study's ranking (default) or a learned mask",
    )
    remove.add_argument("--step-fraction", type=float, help="share of the site's neurons pruned an iteration")
    remove.add_argument("--step-count", type=int, help="neurons pruned an iteration (overrides --step-fraction)")
    remove.add_argument("--retrain-epochs", type=int, help="epochs of retraining an iteration")
    remove.add_argument("--gone-share", type=float, help="gone: concept F1 after retraining at most this share of base")
    remove.add_argument("--patience", type=int, help="iterations in a row the concept must stay gone")
    remove.add_argument("--floor-share", type=float, help="stop when the other types' F1 falls below this share")
    remove.add_argument("--max-iterations", type=int, help="iterations at most")
    remove.add_argument("--max-fraction", type=float, help="share of the site's neurons removed at most")
    _add_parallel_flags(remove)
    _add_config_flags(remove)
    remove.set_defaults(handler=_remove)


def _quietly(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """With ``--quiet``, transformers and datasets stay silent for the whole command, report included."""
    if not getattr(args, "quiet", False):
        return contextlib.nullcontext()
    from lens_relearn.models.loading import quiet_libraries

    return quiet_libraries()


def main(argv: list[str] | None = None) -> int:
    """Run ``lens-relearn``; user mistakes print one line of advice and exit with status 2."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "nproc", 1) > 1 and "WORLD_SIZE" not in os.environ:
            _launch(_without_nproc(argv), args.nproc)
            return 0
        with _quietly(args):
            args.handler(args)
    except LensRelearnError as error:
        print(f"lens-relearn: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
