"""Headless processing: explain every frame of a recording into a panel video and a table.

``python -m app process VIDEO --checkpoint CKPT --out DIR`` runs the pipeline in analysis mode
(every frame, in order) and writes

- ``<name>.panels.mp4`` (or ``.avi``): raw | enhanced overlay | risk overlay per frame, at the
  source's frame rate; the file is read back to check that every frame is in it;
- ``<name>.frames.csv``: one row per frame (columns in :func:`csv_columns`).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.pipeline.events import EventKind
from app.pipeline.mode import Mode
from app.pipeline.panel_video import VIDEO_FORMATS, PanelVideoWriter, count_video_frames
from app.pipeline.panels import render_panels
from app.pipeline.pipeline import Pipeline
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.pipeline.sources import FrameSource
from app.private_files import make_private_dirs, open_private

__all__ = [
    "VIDEO_FORMATS",
    "ProcessReport",
    "count_video_frames",
    "csv_columns",
    "csv_row",
    "process",
]

_STAGES = ("read", "wait", "preprocess", "explain")


@dataclass(frozen=True)
class ProcessReport:
    """What :func:`process` did.

    Attributes:
        video: the panel video written.
        table: the per-frame CSV written.
        frames: frames analysed and written.
        failed: messages for frames that could not be read or analysed (not in the outputs),
            and for a file that ended before its declared end (truncated or damaged).
        seconds: wall time of the processing.
        codec: the FourCC of the video.
    """

    video: Path
    table: Path
    frames: int
    failed: list[str]
    seconds: float
    codec: str

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan


def csv_columns(result: FrameResult) -> list[str]:
    """The CSV columns for results like ``result``.

    ``frame_id, source_index, source_time_s, capture_s, result_s`` (capture and result times in
    seconds since processing started), ``class, class_index, p_<class>`` for every class,
    ``entropy_nats, mutual_information_nats, mean_cv_in_fov, latency_ms`` (capture to
    result), then ``<stage>_ms`` for read, wait, preprocess, explain, the engine's own stages
    (``explain_forward_ms``, ...) and ``total_ms``.
    """
    engine = [k for k in result.timings_ms if k.startswith("explain.")]
    stages = [*_STAGES, *engine, "total"]
    return [
        "frame_id",
        "source_index",
        "source_time_s",
        "capture_s",
        "result_s",
        "class",
        "class_index",
        *(f"p_{name}" for name in result.class_names),
        "entropy_nats",
        "mutual_information_nats",
        "mean_cv_in_fov",
        "latency_ms",
        *(f"{stage.replace('.', '_')}_ms" for stage in stages),
    ]


def csv_row(result: FrameResult, mean_cv: float | None, t0: float) -> dict[str, Any]:
    """One frame's row for the columns of :func:`csv_columns`; times in seconds since ``t0``."""
    row: dict[str, Any] = {
        "frame_id": result.frame_id,
        "source_index": result.source_index,
        "source_time_s": f"{result.source_time:.4f}",
        "capture_s": f"{result.capture_time - t0:.4f}",
        "result_s": f"{result.result_time - t0:.4f}",
        "class": result.class_name,
        "class_index": result.class_idx,
        "entropy_nats": f"{result.entropy:.6f}",
        "mutual_information_nats": f"{result.mutual_information:.6f}",
        "mean_cv_in_fov": "" if mean_cv is None else f"{mean_cv:.6f}",
        "latency_ms": f"{result.latency_ms:.2f}",
    }
    for name, p in result.probabilities.items():
        row[f"p_{name}"] = f"{p:.6f}"
    for stage, ms in result.timings_ms.items():
        row[f"{stage.replace('.', '_')}_ms"] = f"{ms:.2f}"
    return row


def process(
    source: FrameSource | str | Path | Sequence[str | Path],
    settings: PipelineSettings,
    out_dir: str | Path,
    *,
    max_frames: int | None = None,
    panel_height: int | None = None,
    progress: bool = True,
    on_result: Callable[[FrameResult], None] | None = None,
) -> ProcessReport:
    """Explain every frame of ``source`` and write the panel video and the CSV to ``out_dir``.

    Args:
        source: a video file, an image folder or list, or an open :class:`FrameSource`.
        settings: checkpoint, method, passes, class, device.
        out_dir: the output folder (created).
        max_frames: stop after this many frames (None: all).
        panel_height: panel height in the video (None: the model's input height).
        progress: show a tqdm progress bar on stderr.
        on_result: called with every result, in order (e.g. to collect figures).

    Returns:
        A :class:`ProcessReport`.

    Raises:
        SourceError: the source cannot be opened.
        SettingsError: the checkpoint (or another setting) does not work.
        RuntimeError: no frame could be analysed, or the video does not read back whole.
    """
    from tqdm import tqdm

    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    pipeline = Pipeline(source, settings, mode=Mode.ANALYSIS)
    out = Path(out_dir)
    try:
        make_private_dirs(out)
    except OSError:
        pipeline.stop()
        raise
    name = Path(str(pipeline.source.name)).stem or "frames"
    stem = out / name
    table_path = stem.with_name(stem.name + ".frames.csv")
    video = PanelVideoWriter(stem.with_name(stem.name + ".panels"), pipeline.fps)
    total = pipeline.frame_count
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    failed: list[str] = []
    frames = 0
    start = time.monotonic()
    with (
        pipeline,
        open_private(table_path, "w", newline="") as table,
        tqdm(total=total, unit="frame", disable=not progress, desc=name) as bar,
    ):
        writer: csv.DictWriter | None = None
        try:
            for result in pipeline.results():
                maps = result.maps()
                mean_cv = result.mean_cv_in_fov(maps[1])
                video.write(render_panels(result, panel_height, maps))
                if writer is None:
                    writer = csv.DictWriter(table, csv_columns(result), restval="")
                    writer.writeheader()
                writer.writerow(csv_row(result, mean_cv, start))
                if on_result is not None:
                    on_result(result)
                frames += 1
                bar.update(1)
                if max_frames is not None and frames >= max_frames:
                    break
        finally:
            video.close()
        problems = (EventKind.FRAME_FAILED, EventKind.SOURCE_DAMAGED)
        failed = [e.message for e in pipeline.events() if e.kind in problems]
    seconds = time.monotonic() - start
    if frames == 0 or video.path is None:
        detail = f": {failed[0]}" if failed else ""
        raise RuntimeError(f"no frame of {pipeline.source.name} could be analysed{detail}")
    written = count_video_frames(video.path)
    if written != frames:
        raise RuntimeError(
            f"{video.path} reads back with {written} frames, {frames} were written "
            f"({video.codec}); the video is incomplete"
        )
    return ProcessReport(video.path, table_path, frames, failed, seconds, video.codec)
