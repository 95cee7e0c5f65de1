"""The session manifest: what a recorded session is (format, software, source, model, method).

``manifest.json`` is written when a session starts and rewritten when it closes; both writes
are atomic. A session whose process died keeps the start version: ``closed_cleanly`` false.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from app.recording.files import write_atomic

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "RecordingError",
    "describe_source",
    "read_manifest",
    "software_version",
    "utc_now_iso",
    "write_manifest",
]

FORMAT = "pcle-viewer-session"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class RecordingError(Exception):
    """A session cannot be recorded or read; the message says why, for the user."""


def utc_now_iso() -> str:
    """Now, ISO 8601 in UTC with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def software_version() -> str:
    """The installed pcle-viewer version, or "unknown" when it is not installed."""
    try:
        return importlib_metadata.version("pcle-viewer")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def describe_source(source: object, *, include_paths: bool = False) -> str:
    """A short description of a frame source for the manifest and for exports.

    By default it names the kind of source only ("video file (.mp4)", "12 images", "capture
    device 0"): a recorded session may be shared, and a file or folder name can name a
    patient. ``include_paths`` keeps full, absolute paths.

    Args:
        source: a path (video file or image folder), a list of image paths, a capture device
            index, a :class:`app.pipeline.sources.FrameSource`, or a ready-made description
            (a string that is not an existing path and has no path separator).
        include_paths: keep full, absolute paths.
    """
    if isinstance(source, bool):
        return str(source)
    if isinstance(source, int):
        return f"capture device {source}"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists() and os.sep not in str(source):
            return str(source)  # a description already, not a path
        if include_paths:
            return str(path.resolve())
        if str(source).startswith("/dev/"):
            return f"capture device {source}"
        if path.is_dir():
            return "image folder"
        return f"video file ({path.suffix.lower() or 'no suffix'})"
    if isinstance(source, Sequence):
        paths = [Path(p) for p in source]
        if include_paths:
            return "; ".join(str(p.resolve()) for p in paths)
        return f"{len(paths)} images"
    device = getattr(source, "device", None)
    if isinstance(device, int):
        return f"capture device {device}"
    for attr in ("path", "device"):
        value = getattr(source, attr, None)
        if isinstance(value, (str, os.PathLike)):
            return describe_source(value, include_paths=include_paths)
    paths = getattr(source, "paths", None)
    if isinstance(paths, Sequence) and paths:
        return describe_source(list(paths), include_paths=include_paths)
    return type(source).__name__


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically (temp + fsync + rename)."""
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"
    write_atomic(folder / MANIFEST_NAME, text.encode("utf-8"))


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check a session's manifest.

    Raises:
        RecordingError: missing, unreadable, not a session, or a newer format.
    """
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordingError(f"{folder} is not a recorded session (no {MANIFEST_NAME})") from None
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a pcle-viewer session manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: session format version {version!r} is newer than this program reads "
            f"({FORMAT_VERSION}); update the viewer"
        )
    return manifest
