"""Recording benchmark: what recording costs, and how much disk a session takes.

``python -m app bench-recording --source VIDEO --checkpoint CKPT [--frames 200]``
(:mod:`app.commands.bench_recording`) measures, on real results of the pipeline for ``VIDEO``:

- the recorder's write time per frame (median, p95, max; the max includes the periodic
  partial-chunk save) and its throughput in frames per second;
- the disk taken per frame and per minute of recording at the source's frame rate;
- the most recording time a kill or a power cut could have lost at any moment (frames
  written but not yet durable, in seconds of recording);
- the pipeline's analysis rate without and with recording (a :class:`BackgroundRecorder` on
  the result tap), i.e. whether recording slows the explanations.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.pipeline.mode import Mode
from app.pipeline.pipeline import Pipeline
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.pipeline.sources import open_source
from app.recording.background import BackgroundRecorder
from app.recording.writer import SessionRecorder

__all__ = ["benchmark_recording"]


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _analyse(
    source: str, settings: PipelineSettings, frames: int, recorder: BackgroundRecorder | None
) -> tuple[list[FrameResult], float]:
    """``frames`` results of the looped source in analysis mode, and their rate (after one
    warm-up frame)."""
    pipeline = Pipeline(open_source(source), settings, mode=Mode.ANALYSIS, loop=True)
    if recorder is not None:
        pipeline.set_result_tap(recorder.submit)
    results: list[FrameResult] = []
    with pipeline:
        start = 0.0
        for result in pipeline.results(idle_timeout=60):
            results.append(result)
            if len(results) == 1:
                start = time.perf_counter()
            if len(results) > frames:
                break
    seconds = time.perf_counter() - start
    return results, frames / seconds if seconds > 0 else float("nan")


def benchmark_recording(
    source: str, checkpoint: str, *, frames: int = 200, method: str = "gradcam++", passes: int = 10
) -> dict[str, Any]:
    """Run the measurements described in the module documentation; a JSON-ready report."""
    settings = PipelineSettings(checkpoint=Path(checkpoint), method=method, passes=passes)
    results, plain_fps = _analyse(source, settings, frames, None)
    fps = open_source(source).fps
    work = Path(tempfile.mkdtemp(prefix="pcle-rec-bench-"))
    try:
        recorder = SessionRecorder(work / "direct", settings=settings, source=source)
        write_ms: list[float] = []
        written_at: list[float] = []
        at_risk_s = 0.0  # the most recording time a kill could have lost
        start = time.perf_counter()
        for result in results[1:]:
            t0 = time.perf_counter()
            recorder.write(result)
            write_ms.append((time.perf_counter() - t0) * 1e3)
            written_at.append(time.perf_counter())
            time.sleep(max(0.0, 1.0 / fps - write_ms[-1] / 1e3))  # at the source's rate
            saved = recorder.frames_saved
            if saved < len(written_at):
                at_risk_s = max(at_risk_s, time.perf_counter() - written_at[saved])
        recorder.close()
        wall = time.perf_counter() - start
        size = _folder_bytes(work / "direct")

        background = BackgroundRecorder(
            SessionRecorder(work / "tapped", settings=settings, source=source)
        )
        _, recorded_fps = _analyse(source, settings, frames, background)
        background.stop()
        ms = np.array(write_ms)
        per_frame = size / len(write_ms)
        return {
            "source": Path(source).name,
            "frames": len(write_ms),
            "frame_shape": list(results[0].raw.shape),
            "frame_dtype": str(results[0].raw.dtype),
            "method": method,
            "passes": passes,
            "write_ms": {
                "median": round(float(np.median(ms)), 2),
                "p95": round(float(np.percentile(ms, 95)), 2),
                "max": round(float(ms.max()), 2),
            },
            "recorder_frames_per_s": round(len(ms) / (ms.sum() / 1e3), 1),
            "kib_per_frame": round(per_frame / 1024, 1),
            "mib_per_minute_at_source_fps": round(per_frame * fps * 60 / 2**20, 1),
            "source_fps": fps,
            "most_seconds_a_kill_could_lose": round(at_risk_s, 2),
            "recorded_seconds": round(wall, 1),
            "analysis_fps_without_recording": round(plain_fps, 2),
            "analysis_fps_with_recording": round(recorded_fps, 2),
            "frames_dropped_by_recorder": background.dropped,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
