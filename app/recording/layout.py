"""Where things live in a session folder and how a source frame is stored losslessly.

::

    manifest.json                    what the session is (see app.recording.manifest)
    frames.csv                       one row per frame, appended as frames arrive
    display.csv                      when each frame reached the viewer's screen (live viewer)
    results/chunk_00000.npz          per-frame results of a completed chunk
    results/chunk_00001.partial.npz  the chunk being filled, rewritten at every flush
    frames/chunk_00000/000000.png    source frames, one file per frame, named by position
    bookmarks.json                   bookmarks and notes made in review (app.review.bookmarks)

Frames are stored exactly as the source delivered them: 8- or 16-bit grey or colour as PNG
(lossless, and the only common format that holds 16-bit grey), any other dtype as ``.npy``.
A colour frame whose three channels are equal (OpenCV decodes grey video that way) is stored
as one grey channel (``.g3.png``) and read back as the same three-channel array: lossless, and
a third of the encoding work.
One file per frame (rather than a per-chunk FFV1 video) keeps every frame readable after a
kill: an .avi whose writer died has no index and may not open.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DEFAULT_SESSIONS_DIR",
    "DISPLAY_LOG_NAME",
    "FRAMES_DIR",
    "RESULTS_DIR",
    "TABLE_NAME",
    "chunk_file",
    "decode_frame",
    "encode_frame",
    "frame_file",
    "frame_folder",
    "new_session_folder",
    "parse_chunk_file",
    "parse_frame_file",
    "parse_frame_folder",
]

RESULTS_DIR = "results"
FRAMES_DIR = "frames"
TABLE_NAME = "frames.csv"
DISPLAY_LOG_NAME = "display.csv"

DEFAULT_SESSIONS_DIR = Path.home() / "pcle-sessions"
"""Where the viewer records sessions unless told otherwise."""

GREY3_SUFFIX = ".g3.png"
"""Suffix of a colour frame whose three channels were equal, stored as one grey channel."""

_CHUNK_RE = re.compile(r"^chunk_(\d{5,})(\.partial)?\.npz$")
_FRAME_RE = re.compile(r"^(\d{6,})\.")
_FRAME_FOLDER_RE = re.compile(r"^chunk_(\d{5,})$")


def chunk_file(index: int, *, partial: bool = False) -> str:
    """File name of result chunk ``index`` (complete or partial)."""
    return f"chunk_{index:05d}{'.partial' if partial else ''}.npz"


def parse_chunk_file(name: str) -> tuple[int, bool] | None:
    """(chunk index, partial) for a chunk file name; None for anything else."""
    match = _CHUNK_RE.match(name)
    return (int(match.group(1)), match.group(2) is not None) if match else None


def frame_folder(chunk: int) -> str:
    """Folder of chunk ``chunk``'s source frames, relative to the session folder."""
    return f"{FRAMES_DIR}/chunk_{chunk:05d}"


def frame_file(chunk: int, position: int, suffix: str) -> str:
    """Path of a frame's file relative to the session folder; ``suffix`` from
    :func:`encode_frame`."""
    return f"{frame_folder(chunk)}/{position:06d}{suffix}"


def parse_frame_folder(name: str) -> int | None:
    """The chunk index of a frame folder's name (``chunk_00002``: 2); None for anything else."""
    match = _FRAME_FOLDER_RE.match(name)
    return int(match.group(1)) if match else None


def parse_frame_file(name: str) -> int | None:
    """The position of a frame file's name (``000123.png``: 123); None for anything else."""
    match = _FRAME_RE.match(name)
    return int(match.group(1)) if match else None


def _png_ok(image: np.ndarray) -> bool:
    if image.dtype not in (np.uint8, np.uint16):
        return False
    return image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))


def _grey_in_colour(image: np.ndarray) -> bool:
    """A 3-channel 8/16-bit frame whose channels are equal (how OpenCV decodes grey video)."""
    return (
        _png_ok(image)
        and image.ndim == 3
        and image.shape[2] == 3
        and np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 1], image[..., 2])
    )


def encode_frame(image: np.ndarray) -> tuple[str, bytes]:
    """A frame's file suffix and bytes, lossless: PNG for 8/16-bit images (one grey channel,
    ``.g3.png``, for colour frames whose channels are equal), ``.npy`` otherwise."""
    suffix = ".png"
    if _grey_in_colour(image):
        image, suffix = np.ascontiguousarray(image[..., 0]), GREY3_SUFFIX
    if _png_ok(image):
        ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError(f"OpenCV cannot encode a {image.dtype} {image.shape} frame as PNG")
        return suffix, buffer.tobytes()
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(image), allow_pickle=False)
    return ".npy", out.getvalue()


def decode_frame(path: Path) -> np.ndarray:
    """Read a frame stored by :func:`encode_frame`, with its original dtype and shape.

    Raises:
        OSError: the file is missing or does not decode.
    """
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"{path} does not decode as an image")
    if path.name.endswith(GREY3_SUFFIX):
        if image.ndim != 2:
            raise OSError(f"{path} should hold one grey channel")
        return np.repeat(image[..., None], 3, axis=2)
    return image


def new_session_folder(
    root: Path, now: datetime | None = None, taken: Collection[Path] = ()
) -> Path:
    """A fresh, not yet existing folder ``root/session-YYYYmmdd-HHMMSS[-N]`` for a recording.

    The name holds the local start time only: nothing that could identify a patient.

    Args:
        root: the folder sessions are created in.
        now: the start time (default: now).
        taken: folders already handed out, which must not be handed out again even when they
            no longer exist (a session deleted during the same second would otherwise lend
            its name, and its notices, to the next one).
    """
    stamp = (now or datetime.now()).strftime("session-%Y%m%d-%H%M%S")
    folder = Path(root) / stamp
    n = 2
    while folder.exists() or folder in taken:
        folder = Path(root) / f"{stamp}-{n}"
        n += 1
    return folder
