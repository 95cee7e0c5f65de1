"""What the subcommands share: the user-facing error, the default output root, the options
that choose a model and an explanation."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.explain import METHODS

__all__ = [
    "DEFAULT_OUT",
    "EXIT_BAD_INPUT",
    "EXIT_DONE",
    "EXIT_OUTPUT_FAILED",
    "CommandError",
    "OutputError",
    "add_explanation_options",
    "add_json_option",
    "check_json_report",
    "write_json_report",
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

    @classmethod
    def cannot_write(cls, what: str, path: Path, exc: OSError | RuntimeError) -> OutputError:
        """``cannot write <what> to <path>: [<the path that refused>: ]<why>``."""
        filename = getattr(exc, "filename", None)
        where = f"{filename}: " if filename and str(filename) != str(path) else ""
        why = getattr(exc, "strerror", None) or str(exc)
        return cls(f"cannot write {what} to {path}: {where}{why}")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json FILE``: where a benchmark's report goes as JSON (checked before it runs, see
    :func:`check_json_report`)."""
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON here")


def check_json_report(path: Path | None) -> Path | None:
    """``--json FILE`` checked before a benchmark runs (minutes), not after: not a folder, and
    its folder (made later when missing) takes new files. Returns ``path``.

    Raises:
        OutputError: the report could not be written there.
    """
    if path is None:
        return None
    from app.private_files import check_writable_folder

    if path.is_dir():
        raise OutputError(f"--json {path} is a folder; give the report's file name")
    try:
        check_writable_folder(path.parent)
    except OSError as exc:
        raise OutputError.cannot_write("the report", path, exc) from exc
    return path


def write_json_report(report: Mapping[str, Any], path: Path | None) -> None:
    """Write ``report`` as indented JSON to ``path`` (whole or not at all; its folder made),
    and say so on stderr; nothing when ``path`` is None.

    Raises:
        OutputError: the disk is full or the folder refuses the file.
    """
    if path is None:
        return
    from app.private_files import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(report, indent=2) + "\n").encode(), private=False)
    except OSError as exc:
        raise OutputError.cannot_write("the report", path, exc) from exc
    print(f"wrote {path}", file=sys.stderr)  # stdout may be the report itself


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


def add_backend_option(parser: argparse.ArgumentParser, default: str | None = "torch") -> None:
    """``--backend``: where the engine's deterministic prefix runs (Explainer's ``backend``)."""
    from app.explain.runtimes import BACKENDS

    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="where the deterministic part of the model runs: torch, an inference runtime "
        "(onnxruntime, openvino; CPU, fp32, checked against torch on the first frame), "
        "openvino-bf16 (reduced precision, approximate maps), or auto (the fastest exact one "
        f"installed) (default: {default or 'as last time, else torch'})",
    )
