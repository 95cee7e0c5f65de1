"""What the subcommands share: the user-facing error, the default output root, the options
that choose a model and an explanation."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.explain import METHODS

__all__ = [
    "DEFAULT_OUT",
    "EXIT_BAD_INPUT",
    "EXIT_DONE",
    "EXIT_OUTPUT_FAILED",
    "CommandError",
    "OutputError",
    "add_explanation_options",
]

DEFAULT_OUT = Path("out")

EXIT_DONE = 0
"""The command did what it was asked."""
EXIT_BAD_INPUT = 2
"""A bad argument, input file, checkpoint or setting (argparse uses 2 as well)."""
EXIT_OUTPUT_FAILED = 3
"""An output could not be written (full disk, read-only, not a folder); earlier outputs kept."""


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status :attr:`exit_status`.

    Raise it for bad input (status 2); raise :class:`OutputError` when an output cannot be
    written (status 3).
    """

    exit_status: int = EXIT_BAD_INPUT


class OutputError(CommandError):
    """An output cannot be written: the message names the path and why; exit status 3."""

    exit_status = EXIT_OUTPUT_FAILED


def add_explanation_options(parser: argparse.ArgumentParser, passes_help: str) -> None:
    """``--checkpoint``, ``--method``, ``--passes``, ``--original`` and ``--class``: the model
    and how to explain it, for the commands that explain frames."""
    parser.add_argument("--checkpoint", help="model checkpoint (.pt) written by this project")
    parser.add_argument("--method", default="gradcam++", choices=list(METHODS))
    parser.add_argument("--passes", type=int, default=10, help=passes_help)
    parser.add_argument(
        "--original", action="store_true", help="Dropout off, one pass (the paper's 'original')"
    )
    parser.add_argument(
        "--class", dest="target_class", help="class to explain (name or index); default: predicted"
    )
