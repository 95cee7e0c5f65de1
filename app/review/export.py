"""Exports from a recorded session: a clip (three-panel video) and a snapshot (PNG + JSON).

Exports are meant to be shared: they name the source by kind only ("video file (.mp4)",
"capture device 0") and carry no file path unless ``include_paths`` is asked for. The
session's own folder path is never written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from app.private_files import make_private_dirs, write_atomic
from app.render.panel_video import VIDEO_FORMATS, PanelVideoWriter, count_video_frames
from app.review.session import ReviewFrame, ReviewSession

__all__ = ["ClipReport", "SnapshotReport", "export_clip", "export_snapshot"]


@dataclass(frozen=True)
class ClipReport:
    """What :func:`export_clip` wrote: the video, its frame count and size, its codec."""

    path: Path
    frames: int
    width: int
    height: int
    codec: str


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
    progress: Callable[[int, int], None] | None = None,
) -> ClipReport:
    """Write frames ``start`` to ``stop`` (exclusive) as a three-panel video.

    Args:
        session: the session.
        path: the video file; ``.mp4`` (mp4v) or ``.avi`` (MJPG); another suffix is replaced
            by the first format OpenCV can write.
        start: the first frame.
        stop: one past the last frame (None: to the end).
        fps: frame rate (None: the rate the session was recorded at).
        height: panel height in pixels (None: the model's input height).
        progress: called with (frames done, frames in all) after each frame; an exception it
            raises (e.g. to cancel) stops the export, and the partial file is removed.

    Returns:
        A :class:`ClipReport`; the video is read back, so ``frames`` is what a player shows.

    Raises:
        ValueError: an empty or out-of-range span.
        RuntimeError: no video format can be written, or the file reads back short.
        RecordingError: a frame of the span cannot be read.
    """
    stop = len(session) if stop is None else stop
    if not 0 <= start < stop <= len(session):
        raise ValueError(
            f"frames {start}..{stop} are not a span of this session (0..{len(session)})"
        )
    path = Path(path)
    make_private_dirs(path.parent)
    writer = PanelVideoWriter(path.with_suffix(""), fps or session.fps, _video_formats(path))
    total = stop - start
    size = (0, 0)
    try:
        with writer:
            for done, position in enumerate(range(start, stop), start=1):
                image = session.frame(position).panels(height)
                size = (image.shape[1], image.shape[0]) if done == 1 else size
                writer.write(image)
                if progress is not None:
                    progress(done, total)
    except BaseException:  # a failed or cancelled export leaves no partial video behind
        if writer.path is not None:
            writer.path.unlink(missing_ok=True)
        raise
    assert writer.path is not None
    written = count_video_frames(writer.path)
    if written != total:
        raise RuntimeError(f"{writer.path} reads back with {written} frames, {total} were written")
    return ClipReport(writer.path, written, size[0], size[1], writer.codec)


def export_snapshot(
    session: ReviewSession,
    position: int,
    folder: str | Path,
    *,
    height: int | None = None,
    note: str | None = None,
    include_paths: bool = False,
    frame: ReviewFrame | None = None,
) -> SnapshotReport:
    """Write frame ``position``'s three panels as PNG and its numbers as JSON into ``folder``.

    Files are named ``review-frame<position>.png`` / ``.json`` and written atomically.

    Args:
        session: the session.
        position: the frame.
        folder: where to write (created).
        height: panel height in pixels (None: the model's input height).
        note: the frame's bookmark note, when the user wants it in the export.
        include_paths: also write the session folder's path.
        frame: the frame already loaded (saves reading it again).

    Returns:
        A :class:`SnapshotReport`.
    """
    frame = frame if frame is not None else session.frame(position)
    folder = Path(folder)
    make_private_dirs(folder)
    stem = folder / f"review-frame{frame.position:06d}"
    ok, png = cv2.imencode(".png", frame.panels(height))
    if not ok:
        raise RuntimeError("OpenCV cannot encode the snapshot as PNG")
    record = {
        "session": _session_record(session, include_paths),
        "frame": frame.numbers(),
        "note": note,
    }
    png_path, json_path = stem.with_suffix(".png"), stem.with_suffix(".json")
    write_atomic(png_path, png.tobytes())
    write_atomic(json_path, (json.dumps(record, indent=2, allow_nan=False) + "\n").encode())
    return SnapshotReport(png_path, json_path)
