"""``python -m app train``, ``phantom`` and ``demo-model``: the model-side tools, reachable
from the one command line.

Each hands the rest of the command line, untouched, to its module's own ``main(argv)``
(:mod:`models.training.cli`, :mod:`models.data.phantom`, :mod:`models.demo`), so the options,
``--help`` and exit statuses are the module's own; ``python -m models.train ...`` (and
``torchrun -m models.train``) and ``python -m models.phantom ...`` keep working as aliases. The
module is imported only when its command runs (training pulls in the whole training stack).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = ["FORWARDED", "add_parser"]

Main = Callable[[Sequence[str]], "int | None"]
"""A module's ``main(argv)``: an exit status, or None for success."""


def _train(argv: Sequence[str]) -> int | None:
    from models.training.cli import main

    return main(argv)


def _phantom(argv: Sequence[str]) -> int | None:
    from models.data.phantom import main

    return main(argv)


def _demo_model(argv: Sequence[str]) -> int | None:
    from models.demo import main

    return main(argv)


FORWARDED: dict[str, tuple[Main, str]] = {
    "train": (_train, "train a model on your videos (see train --help)"),
    "phantom": (_phantom, "write synthetic pCLE phantom videos with masks"),
    "demo-model": (_demo_model, "rebuild the shipped demo video and model"),
}
"""Command name: the ``main`` it runs and its one-line help."""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add one subparser per :data:`FORWARDED` command. It has no options of its own (not even
    ``--help``), so :func:`app.cli.main` passes every argument after the command name on, as
    ``args.forward``."""
    for command, (main, help_text) in FORWARDED.items():
        parser = sub.add_parser(command, help=help_text, add_help=False)
        parser.set_defaults(handler=_handler(main), forwards=True)


def _handler(main: Main) -> Callable[[argparse.Namespace], int]:
    def forward(args: argparse.Namespace) -> int:
        status = main(list(args.forward))
        return 0 if status is None else int(status)

    return forward
