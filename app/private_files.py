"""Files the product writes: owner-only, and replaced whole or not at all.

Owner-only: session folders, snapshots, exported clips and the outputs of ``process`` and
``explain`` are frames of a patient's tissue. Every folder this project creates for them is
``0700`` and every file ``0600``; a folder that already existed (one the user chose, e.g.
``~/Desktop``) keeps its mode, and the files written into it are ``0600``. Permissions are set
explicitly after creation (``chmod``), so a permissive umask (``0000``) changes nothing.

Whole or not at all: :func:`atomic_write` (and :func:`write_atomic` on top of it) writes to a
new temporary file in the target's folder, optionally fsyncs it, then renames it over the
target (``os.replace`` is atomic on POSIX and Windows). A process killed mid-write, a full
disk or a failing serialiser leaves the previous file readable and no temporary file behind.
Every writer of the project (session files, bookmarks, exports, ``explain`` outputs,
checkpoints, resume files, frame caches, cross-validation reports) goes through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, BinaryIO

from app.interrupt import deferred_signals

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "atomic_write",
    "check_writable_folder",
    "fsync_dir",
    "fsync_file",
    "make_private",
    "make_private_dirs",
    "open_private",
    "private_opener",
    "write_atomic",
    "write_files_atomic",
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


# ---------------------------------------------------------------------- atomic replacement


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (new, renamed, removed files) durable; a no-op where folders
    cannot be opened (Windows) or file systems that do not sync folders."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EBADF):
            return
        raise
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file already written and closed to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, sync: bool = True, private: bool = True
) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` whole when the block ends without an error.

    The file is a new temporary file next to ``path`` (``.<name>.<pid>.<random>.tmp``, created
    exclusively: an existing file or link is never followed or reused). When the block ends it
    is flushed, with ``sync`` fsync'd, and renamed over ``path``; with ``sync`` the rename is
    fsync'd too, so the new file survives a power loss. When the block (or the flush, fsync or
    rename) raises, the temporary file is removed, ``path`` is left as it was and the error
    propagates.

    Args:
        path: The file to replace; its folder must exist.
        sync: fsync the data and the rename (durable across power loss); without it the file
            is still whole or absent after a process kill.
        private: Create the file ``0600`` (:func:`private_opener`); False lets the umask
            decide, as for any new file (model checkpoints and training files, meant to be
            shared).

    Yields:
        The temporary file, open for writing in binary mode.

    Example::

        with atomic_write(folder / "maps.npz") as fh:
            np.savez(fh, mean=mean)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    created = False
    try:
        with open(tmp, "xb", opener=private_opener if private else None) as fh:
            created = True
            yield fh
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def check_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Check, before any work, that files can be written into ``folder`` (or, while it does
    not exist, into the nearest existing folder above it, where it would be made), creating
    nothing: a probe file, removed at once, asks the file system itself (read-only mounts,
    permissions, ``/proc``), so a destination that cannot be written fails before minutes or
    hours of work, not after. Returns ``folder``.

    Raises:
        NotADirectoryError: ``folder`` or the nearest existing path above it is a file.
        OSError: no file can be created there; ``filename`` is the folder that refuses and
            ``strerror`` the system's reason.
    """
    folder = Path(folder)
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(existing))
    probe = existing / f".write-check-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.close(private_opener(str(probe), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except OSError as exc:
        why = f"cannot create files there ({exc.strerror or exc})"
        raise OSError(exc.errno, why, str(existing)) from None
    probe.unlink()
    return folder


def write_files_atomic(
    folder: str | os.PathLike[str],
    payloads: Mapping[str, bytes | Callable[[BinaryIO], None]],
    *,
    sync: bool = True,
    private: bool = True,
) -> None:
    """Write several files into ``folder`` as one set: each is written to its temporary name
    first (see :func:`atomic_write`), and only when every one was written are they all renamed
    into place, with ending signals held back meanwhile. A failure (a full disk) or a signal
    while writing leaves the folder's previous files as they were, none half replaced.

    Args:
        folder: an existing folder.
        payloads: file name -> bytes, or a function writing the file to a binary handle.
        sync: as for :func:`atomic_write`.
        private: as for :func:`atomic_write`.
    """
    with deferred_signals(), contextlib.ExitStack() as renames:
        for name, payload in payloads.items():
            target = atomic_write(Path(folder) / name, sync=sync, private=private)
            _write_payload(renames.enter_context(target), payload)


def write_atomic(
    path: str | os.PathLike[str],
    payload: bytes | Callable[[BinaryIO], None],
    *,
    sync: bool = True,
    private: bool = True,
) -> None:
    """Write ``payload`` (bytes, or a function writing to a binary file) to ``path``, whole or
    not at all (see :func:`atomic_write`, which takes the same keywords)."""
    with atomic_write(path, sync=sync, private=private) as fh:
        _write_payload(fh, payload)


def _write_payload(fh: BinaryIO, payload: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``payload``: bytes as they are, or a function that writes to ``fh``."""
    if isinstance(payload, bytes):
        fh.write(payload)
    else:
        payload(fh)
