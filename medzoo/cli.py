"""The `medzoo` command: thin subcommands over the library."""

import argparse
import json
import os
import sys


def _demo(args):
    from medzoo.pipelines.demo import run_demo

    run_demo(out_dir=args.out, epochs=args.epochs, latency_runs=args.runs, seed=args.seed)
    return 0


def _models(args):
    from medzoo.models import get_model_info, list_models

    for name in list_models(args.pattern, task=args.task):
        info = get_model_info(name)
        print(f"{name:22s} {info['task']:9s} {info['description']}")
    return 0


def _info(args):
    from medzoo.models import get_model_info

    print(json.dumps(get_model_info(args.name), indent=2, default=str))
    return 0


def _backbones(args):
    from medzoo.models.backbones import BACKBONES

    print(f"{'backbone':20s} {'size':>4s} {'min':>4s}  expects")
    for name, spec in sorted(BACKBONES.items()):
        print(f"{name:20s} {spec.default_size:4d} {spec.min_size:4d}  {spec.input_range}")
    return 0


def build_parser():
    """Returns the argument parser of the `medzoo` command."""
    parser = argparse.ArgumentParser(prog="medzoo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train, export and time a model on the sample slide")
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--epochs", type=int, default=6, help="training epochs (default: 6)")
    demo.add_argument("--runs", type=int, default=50, help="timed calls per runtime (default: 50)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(run=_demo)

    models = commands.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="glob pattern (default: *)")
    models.add_argument("--task", choices=("image", "sequence"), help="only this task")
    models.set_defaults(run=_models)

    info = commands.add_parser("info", help="a registered model's task and default arguments")
    info.add_argument("name")
    info.set_defaults(run=_info)

    backbones = commands.add_parser("backbones", help="list the backbone table")
    backbones.set_defaults(run=_backbones)
    return parser


def main(argv=None):
    """Runs the `medzoo` command; returns its exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ logs out of the table
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # InputError and bad arguments: a message, not a traceback
        print(f"medzoo {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
