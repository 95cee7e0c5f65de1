"""Command line: ``python -m app COMMAND`` (view, run, explain, bench, process, bench-pipeline,
bench-recording, evaluate, calibrate, review, soak, train, phantom, demo-model).

Without a subcommand, ``python -m app [options]`` is ``python -m app view [options]``: the
viewer, on the shipped demo unless told otherwise.

This module only builds the parser and dispatches; nothing below it imports it. Each
command's arguments and handler live in one module of :mod:`app.commands`, which adds them
with ``add_parser(sub)``: :mod:`~app.commands.view`, :mod:`~app.commands.run`,
:mod:`~app.commands.explain`, :mod:`~app.commands.bench`, :mod:`~app.commands.process`,
:mod:`~app.commands.bench_pipeline`, :mod:`~app.commands.bench_recording`,
:mod:`~app.commands.evaluate`, :mod:`~app.commands.calibrate`, :mod:`~app.commands.review`,
:mod:`~app.commands.soak`, and
:mod:`~app.commands.forwarded` (``train``, ``phantom``, ``demo-model``, whose arguments go on
untouched to ``models.train``, ``models.phantom`` and ``models.demo``).
A handler returns the exit status. Every failure goes through :func:`exit_status_of` (one
mapping, listed in the README): 0 done; 2 bad input (a :class:`~app.commands.common.CommandError`
or an argparse error); 3 an output could not be written
(:class:`~app.commands.common.OutputError`, or an ``OSError`` such as a full disk that a
handler did not catch); 128 + the signal's number when a signal ended the command (130 SIGINT,
143 SIGTERM, 129 SIGHUP; :mod:`app.interrupt`); 1 only for a bug (with its traceback).
Heavy imports (Qt, the pipeline, torch models) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections.abc import Sequence

from app.commands import (
    bench,
    bench_pipeline,
    bench_recording,
    calibrate,
    evaluate,
    explain,
    forwarded,
    process,
    review,
    run,
    soak,
    view,
)
from app.commands.common import (
    DEFAULT_OUT,
    EXIT_BAD_INPUT,
    EXIT_OUTPUT_FAILED,
    CommandError,
)
from app.commands.explain import explain_file, read_frame
from app.interrupt import Interrupted, exit_status, raise_on_signals

__all__ = [
    "DEFAULT_OUT",
    "CommandError",
    "build_parser",
    "exit_status_of",
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
    calibrate.add_parser(sub)
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
        with raise_on_signals():
            return args.handler(args)
    except (CommandError, KeyboardInterrupt, OSError) as exc:
        print(_describe(exc), file=sys.stderr)
        return exit_status_of(exc)


# What an OSError that reached main means for the user: the disk or the folder refused a write.
_OUTPUT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}
)


def exit_status_of(exc: BaseException) -> int:
    """The exit status for a failure that ended a command (the mapping the README lists)."""
    if isinstance(exc, CommandError):
        return exc.exit_status
    if isinstance(exc, Interrupted):
        return exit_status(exc.signum)
    if isinstance(exc, KeyboardInterrupt):
        return exit_status(signal.SIGINT)
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return EXIT_OUTPUT_FAILED
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT
    return 1


def _describe(exc: BaseException) -> str:
    """The one line printed for a failure (no traceback)."""
    if isinstance(exc, KeyboardInterrupt):
        name = exc.args[0] if isinstance(exc, Interrupted) else "SIGINT"
        return f"interrupted by {name}; outputs that were complete before it are kept"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"error: {where}{exc.strerror}"
    return f"error: {exc}"
