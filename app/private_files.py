"""Files that hold patient video: readable by their owner only, whatever the umask.

Session folders, snapshots, exported clips and the outputs of ``process`` and ``explain`` are
frames of a patient's tissue. Every folder this project creates for them is ``0700`` and every
file ``0600``; a folder that already existed (one the user chose, e.g. ``~/Desktop``) keeps
its mode, and the files written into it are ``0600``. Permissions are set explicitly after
creation (``chmod``), so a permissive umask (``0000``) changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "make_private",
    "make_private_dirs",
    "open_private",
    "private_opener",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: str | os.PathLike[str], *, parents: bool = True) -> Path:
    """Create ``path`` and (with ``parents``) its missing parents, each ``0700``; existing
    folders are left as they are. Returns ``path``.

    Raises:
        OSError: a folder cannot be created (the error names it), ``path`` is a file, or
            (without ``parents``) its parent is missing.
    """
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
        if not parents:
            break
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by someone else: not ours to change
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def make_private(path: str | os.PathLike[str]) -> Path:
    """Make an existing file ``0600`` (for files that a library wrote: OpenCV, Qt)."""
    os.chmod(path, PRIVATE_FILE_MODE)
    return Path(path)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates the file ``0600`` (and makes an existing
    one ``0600``)."""
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    if hasattr(os, "fchmod"):  # POSIX; elsewhere the mode given to os.open is all there is
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        except BaseException:
            os.close(fd)
            raise
    return fd


def open_private(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> IO[Any]:
    """:func:`open` for a file that must be readable by its owner only."""
    return open(path, mode, opener=private_opener, **kwargs)
