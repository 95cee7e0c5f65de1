"""Headless processing: explain every frame of a recording into a panel video and a table.

``python -m app process VIDEO --checkpoint CKPT --out DIR`` runs the pipeline in analysis mode
(every frame, in order) and writes

- ``<name>.panels.mp4`` (or ``.avi``): raw | enhanced overlay | risk overlay per frame, at the
  source's frame rate; the file is read back to check that every frame is in it;
- ``<name>.frames.csv``: one row per frame (columns in :func:`app.render.table.csv_columns`).

``<name>`` is the video's or the single image's file name without its suffix. Both files are
written under temporary names and moved into place only when the run succeeded: a run that
fails or is interrupted leaves the previous run's outputs as they were.

The pictures and the table come from :mod:`app.render`, as in the viewer and in review.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.pipeline.events import EventKind
from app.pipeline.mode import Mode
from app.pipeline.pipeline import Pipeline
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.pipeline.sources import FrameSource
from app.private_files import fsync_dir, make_private_dirs, open_private
from app.render.panel_video import PanelVideoWriter, count_video_frames
from app.render.panels import render_panels
from app.render.table import csv_columns, csv_row

__all__ = ["ProcessReport", "process"]


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
        stopped: ``should_stop`` ended the run before the source's end.
        no_tissue: source indices of the frames that show no tissue (black, or no field of
            view: :attr:`~app.render.summary.FrameSummary.no_tissue`); their rows are written
            with the model's output all the same.
    """

    video: Path
    table: Path
    frames: int
    failed: list[str]
    seconds: float
    codec: str
    stopped: bool = False
    no_tissue: tuple[int, ...] = ()

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan


def process(
    source: FrameSource | str | Path | Sequence[str | Path],
    settings: PipelineSettings,
    out_dir: str | Path,
    *,
    max_frames: int | None = None,
    panel_height: int | None = None,
    progress: bool = True,
    on_result: Callable[[FrameResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
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
        should_stop: polled after every frame; when it returns True the run ends there as at
            the end of the source (outputs closed and moved into place, ``stopped`` set in
            the report), e.g. on SIGTERM.

    Returns:
        A :class:`ProcessReport`.

    Raises:
        SourceError: the source cannot be opened.
        SettingsError: the checkpoint (or another setting) does not work.
        RuntimeError: no frame could be analysed, or the video does not read back whole.
    """
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
    partial = out / f".{name}.{os.getpid()}.partial"  # moved into place on success only
    table_path = out / f"{name}.frames.csv"
    partial_table = partial.with_name(partial.name + ".frames.csv")
    video = PanelVideoWriter(partial.with_name(partial.name + ".panels"), pipeline.fps)
    try:
        report = _write_outputs(
            pipeline,
            name,
            video,
            partial_table,
            _Limits(max_frames, panel_height, should_stop or (lambda: False)),
            progress,
            on_result,
        )
        video_path = out / f"{name}.panels{report.video.suffix}"
        os.replace(partial_table, table_path)
        os.replace(report.video, video_path)
        fsync_dir(out)
    except BaseException:
        for leftover in (partial_table, video.path):
            if leftover is not None:
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
        raise
    return dataclasses.replace(report, video=video_path, table=table_path)


@dataclass(frozen=True)
class _Limits:
    """When a run ends before its source does, and how tall its panels are."""

    max_frames: int | None
    panel_height: int | None
    should_stop: Callable[[], bool]


def _write_outputs(
    pipeline: Pipeline,
    name: str,
    video: PanelVideoWriter,
    table_path: Path,
    limits: _Limits,
    progress: bool,
    on_result: Callable[[FrameResult], None] | None,
) -> ProcessReport:
    """Run the pipeline to its end into ``video`` and the CSV at ``table_path``; checks that
    something was analysed and that the video reads back whole."""
    from tqdm import tqdm

    total, max_frames = pipeline.frame_count, limits.max_frames
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    failed: list[str] = []
    frames = 0
    stopped = False
    no_tissue: list[int] = []
    start = time.monotonic()
    with (
        pipeline,
        open_private(table_path, "w", newline="") as table,
        tqdm(total=total, unit="frame", disable=not progress, desc=name) as bar,
    ):
        writer: csv.DictWriter | None = None
        try:
            for result in pipeline.results():
                mean, cv = result.maps()
                summary = result.summary(result.mean_cv_in_fov(cv), t0=start)
                video.write(
                    render_panels(
                        summary,
                        result.raw,
                        result.display,
                        result.fov_mask,
                        mean,
                        cv,
                        limits.panel_height,
                    )
                )
                if writer is None:
                    writer = csv.DictWriter(table, csv_columns(summary), restval="")
                    writer.writeheader()
                writer.writerow(csv_row(summary))
                if summary.no_tissue is not None:
                    no_tissue.append(summary.source_index)
                if on_result is not None:
                    on_result(result)
                frames += 1
                bar.update(1)
                if max_frames is not None and frames >= max_frames:
                    break
                if limits.should_stop():
                    stopped = True
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
            f"the panel video of {name} reads back with {written} frames, {frames} were "
            f"written ({video.codec}); the video is incomplete"
        )
    return ProcessReport(
        video.path, table_path, frames, failed, seconds, video.codec, stopped, tuple(no_tissue)
    )
