"""Cellvizio ``.mkt`` files written from the layout in :mod:`app.pipeline.mkt` (no real file is
available to test against)."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from app.pipeline.mkt import FRAME_CHUNK, MAGIC, METADATA_CHUNK

END_MARKER = b"\n</CSTA>".ljust(16, b"\x00")
FILE_HEADER = b"MKT test file header".ljust(64, b"\x00")


def chunk(kind: int, payload: bytes) -> bytes:
    """One chunk: the 16-byte header, the payload, the 16-byte end marker."""
    header = MAGIC + b"\x00\x01" + struct.pack(">HI", kind, len(payload)) + b"\x00\x00"
    assert len(header) == 16
    return header + payload + END_MARKER


def metadata_payload(entries: Mapping[str, object], triples: int = 3) -> bytes:
    table = struct.pack("<I", triples) + b"".join(
        struct.pack("<III", FRAME_CHUNK, 64 + 100 * i, 100) for i in range(triples)
    )
    text = "".join(f"{key}={value}\r\n" for key, value in entries.items())
    return table + text.encode("ascii")


def write_mkt(
    path: Path,
    frames: Sequence[np.ndarray],
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """A file of ``frames`` ((H, W) int16 each) and, unless ``metadata`` is None, a metadata
    chunk with ``metadata`` after them (width, height default to the first frame's)."""
    parts = [FILE_HEADER]
    parts += [chunk(FRAME_CHUNK, np.asarray(f, dtype="<i2").tobytes()) for f in frames]
    if metadata is not None:
        height, width = frames[0].shape
        entries = {"width": width, "height": height, **metadata}
        parts.append(chunk(METADATA_CHUNK, metadata_payload(entries)))
    path.write_bytes(b"".join(parts))
    return path


def frames_12bit(count: int, height: int = 36, width: int = 40, seed: int = 0) -> list[np.ndarray]:
    """Distinct frames of 12-bit content with some negative pixels (as raw Cellvizio data)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        frame = rng.integers(-50, 4000, size=(height, width), dtype=np.int16)
        frame[0, 0] = 4095 if i == 0 else i  # the brightest pixel of the file, and an id
        frames.append(frame)
    return frames
