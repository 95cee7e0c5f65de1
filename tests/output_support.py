"""Shared helpers for the tests of outputs that cannot be written: a read-only folder and a
disk that fills up inside ``torch.save``."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from unittest import mock


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` refuses new files as on a read-only mount: mode 0555, and where that does not
    bind (root may write anyway), creating a file in it fails with EROFS."""
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    folder.chmod(0o555)
    try:
        binds = not os.access(folder, os.W_OK)
        with contextlib.nullcontext() if binds else mock.patch("os.open", refusing):
            yield
    finally:
        folder.chmod(0o755)


class _FullDisk:
    """A binary file that takes ``room`` more bytes, then fails as a full disk does."""

    def __init__(self, fh: BinaryIO, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.fh.write(bytes(data[: self.room]))  # a partial write, then the disk is full
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def torch_save_on_full_disk(
    real_save: Callable[..., None], room: int = 4096
) -> Callable[..., None]:
    """A ``torch.save`` that runs the real one into a file with only ``room`` bytes of space
    left, so torch's own zip writer meets the full disk (and raises its ``RuntimeError:
    [enforce fail at inline_container.cc:...] unexpected pos``)."""

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        real_save(obj, _FullDisk(f, room), *args, **kwargs)

    return save
