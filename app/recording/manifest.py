"""The session manifest: what a recorded session is (format, software, source, model, method).

``manifest.json`` is written when a session starts and rewritten when it closes; both writes
are atomic. A session whose process died keeps the start version: ``closed_cleanly`` false.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from app.private_files import write_atomic

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "RecordingError",
    "describe_source",
    "read_manifest",
    "software_version",
    "write_manifest",
]

FORMAT = "pcle-viewer-session"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class RecordingError(Exception):
    """A session cannot be recorded or read; the message says why, for the user."""


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

    Besides the format, the fields that review reads are checked for their type (each may be
    absent or null), so that a damaged or hand-edited manifest is refused here, by name.

    Raises:
        RecordingError: missing, unreadable, not a session, a newer format, or a field of the
            wrong type.
    """
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordingError(f"{folder} is not a recorded session (no {MANIFEST_NAME})") from None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise RecordingError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a pcle-viewer session manifest")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RecordingError(
            f"{path}: 'format_version' must be a positive integer, got {_shown(version)}"
        )
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: session format version {version!r} is newer than this program reads "
            f"({FORMAT_VERSION}); update the viewer"
        )
    _check_fields(path, manifest, _FIELDS)
    checkpoint = manifest.get("checkpoint") or {}
    _check_fields(path, checkpoint, _CHECKPOINT_FIELDS, "checkpoint.")
    _check_fields(path, checkpoint.get("metadata") or {}, _METADATA_FIELDS, "checkpoint.metadata.")
    return manifest


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int too large for a float
        return False


_KINDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "text": ("a string", lambda v: isinstance(v, str)),
    "flag": ("true or false", lambda v: isinstance(v, bool)),
    "count": ("an integer >= 0", _is_count),
    "number": ("a finite number", _is_finite),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "texts": (
        "an object of strings",
        lambda v: isinstance(v, dict) and all(isinstance(x, (str, type(None))) for x in v.values()),
    ),
    "names": (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    ),
    "size": (
        "2 positive integers (height, width)",
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_count(x) and x > 0 for x in v),
    ),
}
"""Field kinds: what to call one in a message, and the test of a value."""

_FIELDS = {
    "software": "texts",
    "started_utc": "text",
    "monotonic_start": "number",
    "source": "text",
    "checkpoint": "object",
    "method": "text",
    "passes": "count",
    "mc": "flag",
    "ended_utc": "text",
    "frames": "count",
    "closed_cleanly": "flag",
    "error": "text",
}
_CHECKPOINT_FIELDS = {"file": "text", "sha256": "text", "metadata": "object"}
_METADATA_FIELDS = {
    "arch": "text",
    "class_names": "names",
    "input_size": "size",
    "intended_use": "text",
}


def _shown(value: object) -> str:
    text = repr(value)
    return (text if len(text) <= 60 else text[:57] + "...") + f" ({type(value).__name__})"


def _check_fields(
    path: Path, data: dict[str, Any], kinds: dict[str, str], prefix: str = ""
) -> None:
    """Raise RecordingError naming the first field of ``data`` that is not null and not of
    its kind in ``kinds``."""
    for name, kind in kinds.items():
        value = data.get(name)
        description, test = _KINDS[kind]
        if value is not None and not test(value):
            raise RecordingError(
                f"{path}: field {prefix + name!r} must be {description}, got {_shown(value)}"
            )
