"""What every subcommand shares: the user-facing error and the default output root."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_OUT", "CommandError"]

DEFAULT_OUT = Path("out")


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""
