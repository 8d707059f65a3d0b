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
