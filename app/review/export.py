"""Exports from a recorded session: a clip (three-panel video) and a snapshot (PNG + JSON).

Exports are meant to be shared: they name the source by kind only ("video file (.mp4)",
"capture device 0") and carry no file path unless ``include_paths`` is asked for. The
session's own folder path is never written.

Both are written whole or not at all: a failed or cancelled export leaves the files that were
there before as they were.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from app.private_files import (
    check_writable_folder,
    fsync_dir,
    fsync_file,
    make_private_dirs,
    write_files_atomic,
)
from app.recording import RecordingError, format_positions
from app.render.panel_video import VIDEO_FORMATS, PanelVideoWriter, count_video_frames
from app.review.session import ReviewFrame, ReviewSession

__all__ = [
    "ClipReport",
    "SnapshotReport",
    "clip_path",
    "export_clip",
    "export_snapshot",
    "format_positions",
]


@dataclass(frozen=True)
class ClipReport:
    """What :func:`export_clip` wrote: the video, its frame count and size, its codec, and the
    frames of the span left out because they cannot be read (with why)."""

    path: Path
    frames: int
    width: int
    height: int
    codec: str
    skipped: tuple[int, ...] = ()
    skipped_because: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotReport:
    """What :func:`export_snapshot` wrote."""

    png: Path
    json: Path


def _session_record(session: ReviewSession, include_paths: bool) -> dict[str, Any]:
    m = session.manifest
    checkpoint = m.get("checkpoint") or {}
    metadata = checkpoint.get("metadata") or {}
    record = {
        "started_utc": m.get("started_utc"),
        "source": m.get("source"),
        "software": m.get("software"),
        "model": {
            "file": checkpoint.get("file"),
            "sha256": checkpoint.get("sha256"),
            "arch": metadata.get("arch"),
            "class_names": metadata.get("class_names"),
            "intended_use": metadata.get("intended_use"),
        },
        "frames_in_session": len(session),
    }
    if include_paths:
        record["session_folder"] = str(session.folder.resolve())
    elif record["source"] and ("/" in str(record["source"]) or "\\" in str(record["source"])):
        record["source"] = "not included (recorded with paths)"
    if not include_paths and record["model"]["file"]:
        record["model"]["file"] = Path(str(record["model"]["file"])).name
    return record


def clip_path(session: ReviewSession, path: str | Path) -> Path:
    """Where :func:`export_clip` writes for ``path``, checked to be writable (creating
    nothing): ``path`` itself, or, for an existing folder (or a path ending in a separator),
    ``<session folder name>-clip.mp4`` inside it.

    Raises:
        OSError: the clip cannot be written there (see
            :func:`app.private_files.check_writable_folder`), or a folder has the clip's name.
    """
    text = os.fspath(path)
    target = Path(path)
    if target.is_dir() or text.endswith(("/", os.sep)):
        target = target / f"{session.folder.name}-clip.mp4"
    check_writable_folder(target.parent)
    for candidate in (target, *(target.with_suffix(suffix) for _, suffix in VIDEO_FORMATS)):
        if candidate.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(candidate))
    return target


def _video_formats(path: Path) -> list[tuple[str, str]]:
    """The formats to try for ``path``: its own suffix's first."""
    suffix = path.suffix.lower()
    return sorted(VIDEO_FORMATS, key=lambda fmt: fmt[1] != suffix)


def export_clip(
    session: ReviewSession,
    path: str | Path,
    *,
    start: int = 0,
    stop: int | None = None,
    fps: float | None = None,
    height: int | None = None,
    whole_frame: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ClipReport:
    """Write frames ``start`` to ``stop`` (exclusive) as a three-panel video.

    Frames that cannot be read (a damaged result chunk or image file) are left out and listed
    in the report; the video is written to a hidden file next to its target and renamed over
    it only once it reads back whole.

    Args:
        session: the session.
        path: the video file (see :func:`clip_path` for a folder); ``.mp4`` (mp4v) or
            ``.avi`` (MJPG); another suffix is replaced by the first format OpenCV can write.
        start: the first frame.
        stop: one past the last frame (None: to the end).
        fps: frame rate, finite and > 0 (None: the rate the session was recorded at).
        height: panel height in pixels (None: the model's input height).
        whole_frame: the raw panel shows the whole frame (default: the field of view, as
            the map panels do).
        progress: called with (frames done, frames in all) after each frame; an exception it
            raises (e.g. to cancel) stops the export, and the partial file is removed.

    Returns:
        A :class:`ClipReport`; the video is read back, so ``frames`` is what a player shows.

    Raises:
        ValueError: an empty or out-of-range span, or an unusable ``fps``.
        OSError: the video cannot be written there (checked before any frame is read).
        RuntimeError: no video format can be written, or the file reads back short.
        RecordingError: no frame of the span can be read.
    """
    stop = len(session) if stop is None else stop
    if not 0 <= start < stop <= len(session):
        raise ValueError(
            f"frames {start}..{stop} are not a span of this session (0..{len(session)})"
        )
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"the clip's frame rate must be a finite number > 0, got {fps}")
    target = clip_path(session, path)
    make_private_dirs(target.parent)
    hidden = target.with_name(f".{target.stem}-{secrets.token_hex(4)}.partial")
    writer = PanelVideoWriter(hidden, fps or session.fps, _video_formats(target))
    total = stop - start
    size = (0, 0)
    skipped: list[int] = []
    because: dict[str, None] = {}
    try:
        with writer:
            for done, position in enumerate(range(start, stop), start=1):
                try:
                    image = session.frame(position).panels(height, whole_frame=whole_frame)
                except RecordingError as exc:
                    skipped.append(position)
                    because[str(exc).removeprefix(f"frame {position}: ")] = None
                else:
                    size = (image.shape[1], image.shape[0]) if writer.path is None else size
                    writer.write(image)
                if progress is not None:
                    progress(done, total)
        if writer.path is None:
            raise RecordingError(
                f"none of frames {start}-{stop - 1} can be read: {'; '.join(because)}"
            )
        written = count_video_frames(writer.path)
        if written != total - len(skipped):
            raise RuntimeError(
                f"{target} would read back with {written} frames, "
                f"{total - len(skipped)} were written"
            )
        final = target.with_suffix(writer.path.suffix)
        fsync_file(writer.path)
        os.replace(writer.path, final)
    except BaseException:  # a failed or cancelled export leaves no partial video behind
        if writer.path is not None:
            writer.path.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return ClipReport(
        final, written, size[0], size[1], writer.codec, tuple(skipped), tuple(because)
    )


def export_snapshot(
    session: ReviewSession,
    position: int,
    folder: str | Path,
    *,
    height: int | None = None,
    whole_frame: bool = False,
    note: str | None = None,
    include_paths: bool = False,
    frame: ReviewFrame | None = None,
) -> SnapshotReport:
    """Write frame ``position``'s three panels as PNG and its numbers as JSON into ``folder``.

    Files are named ``review-frame<position>.png`` / ``.json`` and written as one set
    (both or neither replaced).

    Args:
        session: the session.
        position: the frame.
        folder: where to write (created).
        height: panel height in pixels (None: the model's input height).
        whole_frame: as for :func:`export_clip`.
        note: the frame's bookmark note, when the user wants it in the export.
        include_paths: also write the session folder's path.
        frame: the frame already loaded (saves reading it again).

    Returns:
        A :class:`SnapshotReport`.

    Raises:
        OSError: ``folder`` cannot be written (checked before the frame is read).
        RecordingError: the frame cannot be read.
    """
    folder = check_writable_folder(folder)
    frame = frame if frame is not None else session.frame(position)
    make_private_dirs(folder)
    stem = folder / f"review-frame{frame.position:06d}"
    ok, png = cv2.imencode(".png", frame.panels(height, whole_frame=whole_frame))
    if not ok:
        raise RuntimeError("OpenCV cannot encode the snapshot as PNG")
    record = {
        "session": _session_record(session, include_paths),
        "frame": frame.numbers(),
        "note": note,
    }
    png_path, json_path = stem.with_suffix(".png"), stem.with_suffix(".json")
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    write_files_atomic(folder, {png_path.name: png.tobytes(), json_path.name: text.encode()})
    return SnapshotReport(png_path, json_path)
