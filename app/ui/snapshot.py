"""Snapshots: a PNG of the three panels and a JSON of the numbers behind them.

:func:`snapshot_record` gathers the numbers (plain data, no Qt; the frame's come from its
:class:`~app.render.summary.FrameSummary`); :func:`save_snapshot` writes both files side by
side, ``snapshot-<time>-frame<id>.png`` and ``.json``, into the snapshot folder. (A review
snapshot, :func:`app.review.export_snapshot`, lays the same summary out in its own format.)
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.pipeline import FrameResult, StatsSnapshot, WindowSummary
from app.private_files import make_private, make_private_dirs, open_private
from app.ui.readouts import Prediction

__all__ = ["DEFAULT_SNAPSHOT_DIR", "SnapshotFiles", "save_snapshot", "snapshot_record"]

DEFAULT_SNAPSHOT_DIR = Path.home() / "pcle-snapshots"


class SavableImage(Protocol):
    """What :func:`save_snapshot` needs of an image (``QPixmap`` and ``QImage`` have it)."""

    def save(self, path: str) -> bool: ...


@dataclass(frozen=True)
class SnapshotFiles:
    """The files one snapshot wrote."""

    png: Path
    json: Path


def _window(summary: WindowSummary) -> dict[str, float | int | None]:
    def number(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 3)

    return {
        "count": summary.count,
        "avg": number(summary.avg),
        "p95": number(summary.p95),
        "max": number(summary.max),
    }


def _stats_record(stats: StatsSnapshot) -> dict[str, Any]:
    return {
        "capture_to_display_ms": _window(stats.display_latency_ms),
        "capture_to_result_ms": _window(stats.latency_ms),
        "input_fps": round(stats.input_fps, 3),
        "output_fps": round(stats.output_fps, 3),
        "display_fps": round(stats.display_fps, 3),
        "frames_read": stats.frames_read,
        "frames_processed": stats.frames_processed,
        "dropped_frames": stats.dropped_frames,
        "frame_errors": stats.frame_errors,
    }


def _result_record(result: FrameResult, mean_cv: float | None) -> dict[str, Any]:
    summary = result.summary(mean_cv)
    prediction = Prediction.of(summary)
    settings = result.settings
    return {
        "frame_id": summary.frame_id,
        "source_index": summary.source_index,
        "source_time_s": round(summary.source_time_s, 4),
        "predicted_class": prediction.predicted.name,
        "explained_class": prediction.explained.name,
        "probabilities": {c.name: round(c.mean, 6) for c in prediction.classes},
        "probability_std": {c.name: round(c.std, 6) for c in prediction.classes},
        "entropy_nats": round(prediction.entropy, 6),
        "mutual_information_nats": round(prediction.mutual_information, 6),
        "mean_cv_in_fov": None if mean_cv is None else round(mean_cv, 6),
        "capture_to_result_ms": round(summary.latency_ms, 3),
        "timings_ms": {k: round(v, 3) for k, v in summary.timings_ms.items()},
        "settings": {
            "method": settings.method,
            "passes": settings.passes,
            "mc": settings.mc,
            "target_class": settings.target_class,
            "device": settings.device,
            "backend": settings.backend,
            "ran_on": result.explanation.backend,
            "seed": settings.seed,
            "checkpoint": settings.checkpoint.name,  # a file name, never a path
        },
        "model": {
            "arch": result.metadata.arch,
            "class_names": list(summary.class_names),
            "intended_use": result.metadata.intended_use,
        },
    }


def snapshot_record(
    result: FrameResult | None,
    stats: StatsSnapshot | None,
    *,
    source: str,
    mode: str,
    device: str,
    mean_cv: float | None = None,
    opacity: float | None = None,
    displayed_age_ms: float | None = None,
    taken_at: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The numbers behind a snapshot, JSON-ready.

    Args:
        result: the result the map panels show (None before the first).
        stats: the pipeline's statistics now.
        source: what the source is (name, kind, rate).
        mode: "live" or "analysis".
        device: the device the explanations run on.
        mean_cv: the mean risk over the field of view, when known.
        opacity: the overlay opacity of the picture.
        displayed_age_ms: how old the shown frame was when the snapshot was taken.
        taken_at: the wall-clock time (now when None).
        extra: more entries to record.

    Returns:
        ``taken_at`` (ISO 8601), ``source``, ``mode``, ``device``, ``overlay_opacity``,
        ``frame_age_ms``, ``result`` (frame id, classes, probabilities and spreads, entropy,
        mutual information, mean CV, settings, model; None before the first result) and
        ``latency`` (capture to display and to result, avg/p95/max ms; fps; drops).
    """
    taken_at = taken_at or dt.datetime.now(dt.timezone.utc).astimezone()
    record: dict[str, Any] = {
        "taken_at": taken_at.isoformat(timespec="milliseconds"),
        "source": source,
        "mode": mode,
        "device": device,
        "overlay_opacity": opacity,
        "frame_age_ms": None if displayed_age_ms is None else round(displayed_age_ms, 1),
        "result": None if result is None else _result_record(result, mean_cv),
        "latency": None if stats is None else _stats_record(stats),
    }
    record.update(extra or {})
    return record


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _stem(record: Mapping[str, Any], taken_at: dt.datetime) -> str:
    stamp = taken_at.strftime("%Y%m%d-%H%M%S-") + f"{taken_at.microsecond // 1000:03d}"
    result = record.get("result")
    frame = f"-frame{result['frame_id']}" if result else ""
    return f"snapshot-{stamp}{frame}"


def save_snapshot(
    folder: str | Path,
    picture: SavableImage,
    record: Mapping[str, Any],
    taken_at: dt.datetime | None = None,
) -> SnapshotFiles:
    """Write ``picture`` as PNG and ``record`` as JSON into ``folder`` (created).

    Raises:
        OSError: the folder cannot be created or the files cannot be written.
    """
    folder = Path(folder).expanduser()
    make_private_dirs(folder)
    taken_at = taken_at or dt.datetime.now()
    stem = _stem(record, taken_at)
    png, meta = folder / f"{stem}.png", folder / f"{stem}.json"
    counter = 1
    while png.exists() or meta.exists():  # two snapshots in one millisecond
        png, meta = folder / f"{stem}-{counter}.png", folder / f"{stem}-{counter}.json"
        counter += 1
    if not picture.save(str(png)):
        raise OSError(f"could not write {png}")
    make_private(png)
    with open_private(meta, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(_finite(record), indent=2, allow_nan=False) + "\n")
    return SnapshotFiles(png, meta)
