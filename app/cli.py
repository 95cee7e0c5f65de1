"""Command line: ``python -m app COMMAND`` (view, run, explain, bench, process, bench-pipeline,
bench-recording, evaluate, review, soak, train, phantom, demo-model).

Without a subcommand, ``python -m app [options]`` is ``python -m app view [options]``: the
viewer, on the shipped demo unless told otherwise.

This module only builds the parser and dispatches; nothing below it imports it. Each
command's arguments and handler live in one module of :mod:`app.commands`, which adds them
with ``add_parser(sub)``: :mod:`~app.commands.view`, :mod:`~app.commands.run`,
:mod:`~app.commands.explain`, :mod:`~app.commands.bench`, :mod:`~app.commands.process`,
:mod:`~app.commands.bench_pipeline`, :mod:`~app.commands.bench_recording`,
:mod:`~app.commands.evaluate`, :mod:`~app.commands.review`, :mod:`~app.commands.soak`, and
:mod:`~app.commands.forwarded` (``train``, ``phantom``, ``demo-model``, whose arguments go on
untouched to ``models.train``, ``models.phantom`` and ``models.demo``).
A handler returns the exit status; a :class:`~app.commands.common.CommandError` it raises is
printed without a traceback, status 2.
Heavy imports (Qt, the pipeline, torch models) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.commands import (
    bench,
    bench_pipeline,
    bench_recording,
    evaluate,
    explain,
    forwarded,
    process,
    review,
    run,
    soak,
    view,
)
from app.commands.common import DEFAULT_OUT, CommandError
from app.commands.explain import explain_file, read_frame

__all__ = [
    "DEFAULT_OUT",
    "CommandError",
    "build_parser",
    "explain_file",
    "main",
    "read_frame",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="pCLE explainability viewer: MC Dropout attribution and risk maps.",
    )
    sub = parser.add_subparsers(dest="command", required=False, metavar="COMMAND")
    # The order here is the order ``python -m app --help`` lists the commands in.
    view.add_parser(sub)
    run.add_parser(sub)
    explain.add_parser(sub)
    bench.add_parser(sub)
    process.add_parser(sub)
    bench_pipeline.add_parser(sub)
    bench_recording.add_parser(sub)
    evaluate.add_parser(sub)
    review.add_parser(sub)
    soak.add_parser(sub)
    forwarded.add_parser(sub)  # train, phantom, demo-model
    return parser


def _with_default_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with ``view`` in front when it names no subcommand (``python -m app``, or
    ``python -m app --source 0``); ``-h`` alone still shows the overall help."""
    commands = {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }
    if argv and (argv[0] in commands or argv[0] in ("-h", "--help")):
        return argv
    return ["view", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(
        _with_default_command(parser, list(sys.argv[1:] if argv is None else argv))
    )
    if getattr(args, "forwards", False):
        args.forward = rest  # the forwarded command's own arguments (app.commands.forwarded)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")  # what parse_args says
    try:
        return args.handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
