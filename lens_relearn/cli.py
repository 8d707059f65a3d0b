"""The ``lens-relearn`` command line."""

from __future__ import annotations

import argparse
import sys
import time

from lens_relearn.errors import LensRelearnError


def _sites(args: argparse.Namespace) -> None:
    from lens_relearn.models import load_model, neuron_sites

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
    from lens_relearn.data import CONLL_TAGS, load_ner
    from lens_relearn.models import load_model
    from lens_relearn.tagger import Tagger, evaluate_tagger, train_tagger

    data = load_ner(args.data, seed=args.seed)
    tagger = Tagger(load_model(args.model), CONLL_TAGS, aggregation=args.aggregation, seed=args.seed)
    start = time.perf_counter()
    train_tagger(tagger, data.train, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                 seed=args.seed)
    minutes = (time.perf_counter() - start) / 60
    print(f"{args.model} fine-tuned on {len(data.train)} {args.data} sentences in {minutes:.1f} min")
    print(f"{'split':<12} {'F1':>6} {'LOC F1':>7} {'token acc':>9}")
    for split, sentences in data.splits().items():
        if split == "train":
            continue
        scores = evaluate_tagger(tagger, sentences)
        loc = scores["per_type"].get("LOC", {}).get("f1", float("nan"))
        print(f"{split:<12} {scores['f1']:6.3f} {loc:7.3f} {scores['token_accuracy']:9.3f}")
    if args.out:
        print(f"saved to {tagger.save(args.out)}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lens-relearn``."""
    parser = argparse.ArgumentParser(
        prog="lens-relearn",
        description="Prune the neurons that carry a concept, retrain, and see where it comes back.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sites = commands.add_parser(
        "sites",
        help="load models and print their neuron sites",
        description="Load each model and print its neuron sites (layers, units, hook points).",
    )
    sites.add_argument("specs", nargs="+", help="model specs, e.g. minilm smollm2 tiny-gpt2")
    sites.set_defaults(handler=_sites)

    finetune = commands.add_parser(
        "finetune",
        help="fine-tune a model as an NER tagger and score it",
        description="Fine-tune a model as an NER tagger on the training split, then print "
        "entity-level F1 (all types and LOC) on the other splits.",
    )
    finetune.add_argument("model", help="model spec, e.g. minilm")
    finetune.add_argument("--data", default="synthetic", help="NER source (default: synthetic)")
    finetune.add_argument("--epochs", type=int, default=3, help="passes over the training split")
    finetune.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (AdamW)")
    finetune.add_argument("--batch-size", type=int, default=16, help="sentences a step")
    finetune.add_argument("--aggregation", default="first", choices=("first", "last", "average"),
                          help="how sub-token states make a word's state")
    finetune.add_argument("--seed", type=int, default=0, help="seeds data, head and batch order")
    finetune.add_argument("--out", help="folder to save the tagger in")
    finetune.set_defaults(handler=_finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``lens-relearn``; user mistakes print one line of advice and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except LensRelearnError as error:
        print(f"lens-relearn: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
