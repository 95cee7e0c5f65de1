"""A full disk, told apart from other write errors: the recorder then stops with a message
while the live view goes on (see :class:`app.recording.writer.SessionRecorder`).

How the session files are written (owner-only, replaced whole or not at all, fsync'd) is
:mod:`app.private_files`.
"""

from __future__ import annotations

import errno

__all__ = ["DISK_FULL_ERRNOS", "is_disk_full"]

DISK_FULL_ERRNOS = frozenset(
    code for code in (getattr(errno, "ENOSPC", None), getattr(errno, "EDQUOT", None)) if code
)
"""errno values that mean the disk (or the user's quota) is full."""


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is an OSError saying there is no space left (ENOSPC / EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
