"""Durable file writes for session recording: atomic replace, fsync, disk-full detection.

A file written here is either absent or whole: it is written to a temporary name in the same
folder, optionally fsync'd, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows), so a process killed mid-write leaves the previous version readable. It holds patient
data, so it is created readable by its owner only (:mod:`app.private_files`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from app.private_files import private_opener

__all__ = ["DISK_FULL_ERRNOS", "fsync_dir", "fsync_file", "is_disk_full", "write_atomic"]

DISK_FULL_ERRNOS = frozenset(
    code for code in (getattr(errno, "ENOSPC", None), getattr(errno, "EDQUOT", None)) if code
)
"""errno values that mean the disk (or the user's quota) is full."""


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is an OSError saying there is no space left (ENOSPC / EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new, renamed, removed files) durable; a no-op where folders
    cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EBADF):  # file systems that do not sync folders
            return
        raise
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file already written and closed to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, payload: bytes | Callable[[BinaryIO], None], *, sync: bool = True
) -> None:
    """Write ``payload`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    With ``sync`` the data and the rename are fsync'd (durable across power loss); without it
    the file is still whole or absent after a process kill. On error the temporary file is
    removed and the error re-raised; a previous ``path`` is left untouched.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb", opener=private_opener) as fh:
            if isinstance(payload, bytes):
                fh.write(payload)
            else:
                payload(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)
