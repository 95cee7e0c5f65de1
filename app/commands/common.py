"""What the subcommands share: the user-facing error, the default output root, the options
that choose a model and an explanation."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.explain import METHODS

__all__ = ["DEFAULT_OUT", "CommandError", "add_explanation_options"]

DEFAULT_OUT = Path("out")


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


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
