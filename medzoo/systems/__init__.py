"""The seed systems, one package each: everything that belongs to one system alone.

A system package holds its data preparation, its own models and steps, its
pipeline and demo, and a `commands` module that the `medzoo` command loops
over. Generic layers (io, data, models, train, evaluate, export, bench,
serve) never import a system; a system imports them.

A `commands` module has:
    add_commands(subparsers)  its `medzoo` subcommands (optional);
    DEMO                      None, or {"out": default folder, "help": one line};
    run_demo(args)            with DEMO: `medzoo demo --system NAME`.

Examples:
    >>> [module.__name__.split(".")[2] for module in system_commands()]
    ['video', 'stroke', 'ct', 'echo', 'slide']
"""

import importlib

SYSTEMS = ("video", "stroke", "ct", "echo", "slide")


def system_commands():
    """The `commands` module of every system, in SYSTEMS order (they import nothing heavy)."""
    return [importlib.import_module(f"medzoo.systems.{name}.commands") for name in SYSTEMS]
