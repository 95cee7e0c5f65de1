"""Cellvizio ``.mkt`` recordings, read directly: Mauna Kea's chunked container of raw frames.

The layout, as the public readers describe it (it has not been checked against a real file on
this machine: none is available here):

- a sequence of chunks, each a 16-byte header, a payload, and a 16-byte end marker;
- a header begins with the magic ``b"\\n<CSTA"``; its bytes 8-9 are the chunk type (big-endian
  uint16: 2 for a frame, 5 for the metadata) and bytes 10-13 the payload size (big-endian
  uint32);
- a frame's payload is ``width x height`` little-endian int16 pixels, row by row;
- the metadata chunk, near the end, holds a little-endian uint32 count, that many
  ``(type, offset, size)`` uint32 triples, then ASCII ``key=value`` lines (``width``,
  ``height``, ``framerate``, ``fovx`` and ``fovy`` in micrometres, and others).

Reading is made to survive damage: the walk from chunk to chunk looks for the next header
when one is not where the last chunk said (bytes written over the middle of a file), a file
that ends inside a frame keeps the frames before it (truncated), and a file without its
metadata chunk still plays when its frames have a size Cellvizio uses. Every such repair is
said in :attr:`MktIndex.notices`.

Pixels are 12- to 15-bit content in int16. :class:`MktReader` delivers them as uint16
frames, negative values at 0, shifted left so the file's depth fills 16 bits (the depth is the
smallest of 12, 14 or 15 bits that holds the brightest of up to 16 frames spread over the
file), so the rest of the pipeline treats them as any 16-bit frame. The frame source is
:class:`app.pipeline.sources.MktFileSource`.
"""

from __future__ import annotations

import math
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["MKT_SUFFIX", "MktError", "MktIndex", "MktReader", "read_mkt_index"]

MKT_SUFFIX = ".mkt"
MAGIC = b"\n<CSTA"
HEADER_SIZE = 16
END_MARKER_SIZE = 16
FRAME_CHUNK = 2
METADATA_CHUNK = 5
KNOWN_WIDTHS = (576, 512)
"""Frame widths Cellvizio uses (576x580, 576x578, 576x576, 512x512): the size of a frame in a
file without its metadata chunk is told from its byte count with them."""
_DEPTHS = (12, 14, 15)  # int16 holds at most 15 bits of positive content
_DEPTH_PROBES = 16
_SCAN_BLOCK = 1 << 20


class MktError(Exception):
    """A ``.mkt`` file cannot be read; the message says why."""


@dataclass(frozen=True)
class MktIndex:
    """Where a ``.mkt`` file's frames are, and what its metadata says.

    Attributes:
        frames: byte offset of each complete frame's pixels, in file order.
        width: frame width in pixels.
        height: frame height in pixels.
        metadata: the metadata chunk's ``key=value`` lines (empty without one).
        fps: the metadata's ``framerate``; None when it has none (or no metadata).
        field_of_view_um: (x, y) field of view in micrometres (``fovx``, ``fovy``); None when
            the metadata does not give both.
        truncated: the file ends inside a frame (the frames before it are kept).
        notices: what was repaired while indexing, for the user.
    """

    frames: tuple[int, ...]
    width: int
    height: int
    metadata: dict[str, str] = field(default_factory=dict)
    fps: float | None = None
    field_of_view_um: tuple[float, float] | None = None
    truncated: bool = False
    notices: tuple[str, ...] = ()

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 2


@dataclass(frozen=True)
class _Chunk:
    kind: int
    start: int  # offset of the payload
    size: int


def _find_magic(fd: int, start: int, file_size: int) -> int:
    """Offset of the next header magic at or after ``start``; -1 when there is none."""
    position = start
    while position < file_size:
        block = os.pread(fd, _SCAN_BLOCK + len(MAGIC) - 1, position)
        if not block:
            return -1
        found = block.find(MAGIC)
        if found >= 0:
            return position + found
        position += _SCAN_BLOCK
    return -1


def _walk(fd: int, file_size: int, name: str) -> tuple[list[_Chunk], bool, list[str]]:
    """Every chunk whose header and payload lie in the file; whether the file ends inside
    one; notices of the damage skipped over."""
    chunks: list[_Chunk] = []
    notices: list[str] = []
    truncated = False
    position = _find_magic(fd, 0, file_size)
    if position < 0:
        raise MktError(f"{name} is not a Cellvizio .mkt file: no chunk header found")
    while position >= 0:
        header = os.pread(fd, HEADER_SIZE, position)
        if len(header) < HEADER_SIZE:
            truncated = True
            break
        kind, size = struct.unpack(">HI", header[8:14])
        start = position + HEADER_SIZE
        if start + size > file_size:
            later = _find_magic(fd, position + len(MAGIC), file_size)
            if later < 0:  # the last chunk is cut off: the file was truncated
                truncated = True
                break
            notices.append(
                f"a damaged chunk header at byte {position} was skipped (it claims {size} "
                "bytes that the file does not hold)"
            )
            position = later
            continue
        chunks.append(_Chunk(kind, start, size))
        expected = start + size + END_MARKER_SIZE
        if expected >= file_size:
            break
        if os.pread(fd, len(MAGIC), expected) == MAGIC:
            position = expected
            continue
        position = _find_magic(fd, start + size, file_size)
        if position > expected:
            notices.append(
                f"{position - expected} damaged bytes after byte {expected} were skipped; "
                "frames stored there are lost"
            )
        elif position < 0 and file_size - expected > HEADER_SIZE:
            notices.append(
                f"the last {file_size - expected} bytes hold no chunk header (damaged) and "
                "were ignored"
            )
    return chunks, truncated, notices


def _metadata(fd: int, chunk: _Chunk) -> dict[str, str]:
    """The ``key=value`` lines of a metadata chunk (after its table of chunk triples)."""
    payload = os.pread(fd, chunk.size, chunk.start)
    if len(payload) < 4:
        return {}
    (count,) = struct.unpack("<I", payload[:4])
    text_start = 4 + 12 * count
    if text_start > len(payload):
        return {}
    entries: dict[str, str] = {}
    for line in payload[text_start:].decode("ascii", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            entries[key.strip().lower()] = value.strip().strip("\x00")
    return entries


def _number(metadata: dict[str, str], key: str) -> float | None:
    try:
        value = float(metadata[key])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _frame_size(
    metadata: dict[str, str], frames: list[_Chunk], name: str
) -> tuple[int, int, str | None]:
    """(width, height, notice): from the metadata, else from the commonest frame size."""
    width, height = _number(metadata, "width"), _number(metadata, "height")
    if width is not None and height is not None and width.is_integer() and height.is_integer():
        return int(width), int(height), None
    if not frames:
        raise MktError(f"{name} holds no complete frame")
    size, _ = Counter(c.size for c in frames).most_common(1)[0]
    pixels = size // 2
    side = math.isqrt(pixels)
    reason = "the metadata gives none" if metadata else "the file has no metadata chunk"
    if size % 2 == 0 and side * side == pixels:
        return side, side, f"frame size {side}x{side} taken from the frames ({reason})"
    for known in KNOWN_WIDTHS:
        if size % 2 == 0 and pixels % known == 0:
            rows = pixels // known
            return known, rows, f"frame size {known}x{rows} taken from the frames ({reason})"
    raise MktError(f"{name}: cannot tell the frame size ({size} bytes a frame) because {reason}")


def read_mkt_index(path: str | Path) -> MktIndex:
    """Index a ``.mkt`` file: the offset of every complete frame, and its metadata.

    Args:
        path: the file.

    Returns:
        The :class:`MktIndex`.

    Raises:
        MktError: the file is missing, a folder, unreadable, empty, not a ``.mkt`` file, or
            holds no complete frame.
    """
    path = Path(path)
    if not path.exists():
        raise MktError(f"no such file: {path}")
    if path.is_dir():
        raise MktError(f"{path} is a folder, not a .mkt file")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise MktError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise MktError(f"{path.name} is empty")
        chunks, truncated, notices = _walk(fd, size, path.name)
        metadata_chunks = [c for c in chunks if c.kind == METADATA_CHUNK]
        metadata = _metadata(fd, metadata_chunks[-1]) if metadata_chunks else {}
    except OSError as exc:
        raise MktError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    frame_chunks = [c for c in chunks if c.kind == FRAME_CHUNK]
    width, height, size_notice = _frame_size(metadata, frame_chunks, path.name)
    frame_bytes = width * height * 2
    kept = tuple(c.start for c in frame_chunks if c.size == frame_bytes)
    if size_notice:
        notices.append(size_notice)
    if len(kept) < len(frame_chunks):
        notices.append(
            f"{len(frame_chunks) - len(kept)} frame chunks of another size than "
            f"{width}x{height} were skipped (damaged)"
        )
    if not kept:
        raise MktError(f"{path.name} holds no complete {width}x{height} frame")
    fov_x, fov_y = _number(metadata, "fovx"), _number(metadata, "fovy")
    return MktIndex(
        frames=kept,
        width=width,
        height=height,
        metadata=metadata,
        fps=_number(metadata, "framerate"),
        field_of_view_um=(fov_x, fov_y) if fov_x and fov_y else None,
        truncated=truncated,
        notices=tuple(notices),
    )


class MktReader:
    """Frames of an indexed ``.mkt`` file by number, as uint16 (see the module documentation).

    Args:
        path: the file.

    Raises:
        MktError: see :func:`read_mkt_index`, or no frame can be read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.index = read_mkt_index(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise MktError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            self.bit_depth = self._depth()
            """Bits of content the frames hold (12, 14 or 15), found on opening."""
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.index.frames)

    def _pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored: (H, W) int16."""
        want = self.index.frame_bytes
        try:
            data = os.pread(self._fd, want, self.index.frames[index])
        except OSError as exc:
            raise MktError(
                f"{self.path.name}: frame {index} cannot be read: {exc.strerror}"
            ) from exc
        if len(data) < want:
            raise MktError(f"{self.path.name}: frame {index} is cut off (the file has shrunk)")
        return np.frombuffer(data, dtype="<i2").reshape(self.index.height, self.index.width)

    def _depth(self) -> int:
        count = len(self)
        probes = np.unique(np.linspace(0, count - 1, min(count, _DEPTH_PROBES)).astype(int))
        brightest = max(int(self._pixels(int(i)).max()) for i in probes)
        return next((d for d in _DEPTHS if brightest < 1 << d), _DEPTHS[-1])

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W) uint16: negative values at 0, the depth shifted to 16 bits.

        Raises:
            MktError: the frame cannot be read (the file shrank or went away since opening).
        """
        pixels = np.clip(self._pixels(index), 0, None).astype(np.uint16)
        return pixels << np.uint16(16 - self.bit_depth)

    def close(self) -> None:
        """Release the file. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
