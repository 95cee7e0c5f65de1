"""Pipeline benchmark: throughput, live latency over time, dropped frames, resident memory.

- **analysis** mode: every frame of the source (looped) goes through the pipeline as fast as
  it can; the figure is processed frames per second.
- **live** mode: the source is played at its frame rate (a file behaves like a probe) while
  the consumer takes every result it can; the figures are the capture-to-result latency
  (avg / p95 / max overall and per time window, and the p95 of the first third against the
  last third, to show whether latency drifts upwards), the input and output rates and the
  frames dropped.

Both report resident memory (``VmRSS``) after the warm-up, every ``rss_every`` frames and at
the end, so a long run (e.g. 10,000 frames of a looped video) shows whether memory grows.
Without a checkpoint, a random-weight model of ``arch`` is used (speed does not depend on the
weights).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.pipeline.mode import Mode
from app.pipeline.pipeline import Pipeline
from app.pipeline.settings import PipelineSettings, SettingsError
from app.pipeline.sources import open_source

__all__ = [
    "benchmark_pipeline",
    "format_report",
    "random_checkpoint",
    "resident_mb",
]

_POLL_S = 0.1
_GIVE_UP_S = 60.0  # no result for this long: the measurement ends
_RANDOM_USE = "benchmark only"


def resident_mb() -> float:
    """This process's resident memory in MiB (``VmRSS`` from /proc/self/status; where that is
    missing, the peak from ``resource``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_checkpoint(path: Path, arch: str, input_size: int = 224) -> Path:
    """Write a checkpoint of ``arch`` with random weights (two classes, ImageNet normalisation)
    to ``path``."""
    from app.preprocess.model_input import IMAGENET_MEAN, IMAGENET_STD
    from models.architectures import build_model, default_target_layer
    from models.checkpoint import CheckpointMetadata, save_checkpoint

    torch.manual_seed(0)
    meta = CheckpointMetadata(
        arch=arch,
        class_names=["glioblastoma", "meningioma"],
        input_size=(input_size, input_size),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        target_layer=default_target_layer(arch),
        dropout=0.2,
        provenance="random initialisation (benchmark)",
        intended_use=_RANDOM_USE,
    )
    save_checkpoint(path, build_model(arch, 2), meta)
    return path


def _summary(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"count": 0, "avg": math.nan, "p95": math.nan, "max": math.nan}
    return {
        "count": int(values.size),
        "avg": round(float(values.mean()), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
        "max": round(float(values.max()), 2),
    }


def benchmark_pipeline(
    source: str | Path,
    *,
    checkpoint: str | Path | None = None,
    arch: str = "resnet18",
    input_size: int = 224,
    mode: Mode | str = Mode.ANALYSIS,
    method: str = "gradcam++",
    passes: int = 10,
    frames: int = 300,
    warmup: int = 10,
    device: str = "cpu",
    backend: str = "torch",
    speed: float = 1.0,
    windows: int = 10,
    rss_every: int = 500,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the pipeline on ``source`` (looped) and measure it.

    Args:
        source: a video file (or anything :func:`open_source` opens).
        checkpoint: the model; None builds a random-weight ``arch`` at ``input_size``.
        arch, input_size: the random model when no checkpoint is given.
        mode: "analysis" (throughput) or "live" (latency at the source's rate).
        method, passes, device, backend: the explanation settings.
        frames: frames to measure after the warm-up: results in analysis mode, frames read from
            the source in live mode.
        warmup: results to let pass before measuring (first calls are slow).
        speed: playback speed in live mode.
        windows: the live latencies are also summarised in this many consecutive windows.
        rss_every: sample resident memory every this many measured frames.
        progress: called with a line now and then.

    Returns:
        A JSON-ready dict (see :func:`format_report`).

    Raises:
        SettingsError: an unknown ``arch`` (without a checkpoint), or settings the pipeline
            refuses.
        SourceError: the source cannot be opened.
    """
    mode = Mode(mode)
    if checkpoint is None:
        from models.architectures import resolve_arch

        try:
            arch = resolve_arch(arch)
        except ValueError as exc:
            raise SettingsError(f"--arch: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="pcle-bench-") as tmp:
        if checkpoint is None:
            checkpoint = random_checkpoint(Path(tmp) / f"{arch}.pt", arch, input_size)
        settings = PipelineSettings(
            Path(checkpoint), method=method, passes=passes, device=device, backend=backend
        )
        source_obj = open_source(source)
        info = {
            "source": source_obj.name,
            "source_fps": source_obj.fps,
            "source_frames": source_obj.frame_count,
        }
        start = time.monotonic()
        pipeline = Pipeline(source_obj, settings, mode=mode, loop=True, speed=speed)
        info["start_s"] = round(time.monotonic() - start, 3)
        meta = pipeline.metadata
        load_start = os.getloadavg()
        with pipeline:
            measured, latencies = _measure(pipeline, mode, frames, warmup, rss_every, progress)
        load_end = os.getloadavg()
    report: dict[str, Any] = {
        "mode": mode.value,
        "arch": meta.arch,
        "input_size": list(meta.input_size),
        "checkpoint": "random weights" if meta.intended_use == _RANDOM_USE else "file",
        "method": settings.method,
        "passes": settings.passes,
        "device": pipeline.device,
        "backend": settings.backend,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(v, 2) for v in load_start],
        "loadavg_end": [round(v, 2) for v in load_end],
        **info,
        **measured,
    }
    if mode is Mode.LIVE:
        report["speed"] = speed
        report.update(_latency_report(latencies, windows))
    return report


def _measure(
    pipeline: Pipeline,
    mode: Mode,
    frames: int,
    warmup: int,
    rss_every: int,
    progress: Callable[[str], None] | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Take results until ``frames`` are measured; the figures and the latencies (ms)."""
    latencies = array("d")
    stage_sums: dict[str, float] = {}
    taken = measured = counted = 0
    baseline = pipeline.stats()
    t_start = last_result = time.monotonic()
    first: dict[str, Any] = {}
    rss: list[tuple[int, float]] = [] if warmup else [(0, round(resident_mb(), 1))]
    while counted < frames:
        result = pipeline.wait_result(_POLL_S)
        now = time.monotonic()
        if result is None:
            if pipeline.exhausted or now - last_result > _GIVE_UP_S:
                break
            continue
        last_result = now
        if not first:
            first = {
                "ran_on": result.explanation.backend,
                "first_explain_ms": round(result.timings_ms.get("explain", math.nan), 2),
            }
        taken += 1
        if taken <= warmup:
            if taken == warmup:  # the measurement starts now
                baseline, t_start = pipeline.stats(), now
                rss.append((0, round(resident_mb(), 1)))
            continue
        measured += 1
        latencies.append(result.latency_ms)
        for stage, ms in result.timings_ms.items():
            stage_sums[stage] = stage_sums.get(stage, 0.0) + ms
        read = pipeline.stats().frames_read - baseline.frames_read
        counted = read if mode is Mode.LIVE else measured
        if rss_every and counted >= rss_every * len(rss):
            rss.append((counted, round(resident_mb(), 1)))
            if progress:
                progress(f"{counted} frames, RSS {rss[-1][1]:.1f} MiB")
    elapsed = time.monotonic() - t_start
    snap = pipeline.stats()
    rss.append((counted, round(resident_mb(), 1)))
    frames_read = snap.frames_read - baseline.frames_read
    figures: dict[str, Any] = {
        **first,
        "frames_measured": counted,
        "results": measured,
        "seconds": round(elapsed, 2),
        "processed_fps": round(measured / elapsed, 2) if elapsed > 0 else math.nan,
        "input_fps": round(frames_read / elapsed, 2) if elapsed > 0 else math.nan,
        "dropped_frames": snap.dropped_frames - baseline.dropped_frames,
        "frame_errors": snap.frame_errors - baseline.frame_errors,
        "latency_ms": _summary(np.asarray(latencies)),
        "stage_mean_ms": {k: round(v / max(measured, 1), 2) for k, v in stage_sums.items()},
        "rss_mb": rss,
        "rss_growth_mb": round(rss[-1][1] - rss[0][1], 1),
    }
    return figures, np.asarray(latencies)


def _latency_report(latencies: np.ndarray, windows: int) -> dict[str, Any]:
    thirds = np.array_split(latencies, 3) if latencies.size >= 3 else [latencies] * 3
    parts = np.array_split(latencies, max(1, min(windows, latencies.size)))
    first, last = _summary(thirds[0]), _summary(thirds[-1])
    return {
        "latency_first_third_ms": first,
        "latency_last_third_ms": last,
        "latency_p95_drift_ms": round(last["p95"] - first["p95"], 2),
        "latency_windows_ms": [_summary(p) for p in parts],
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    lat = report["latency_ms"]
    lines = [
        f"{report['arch']} {report['input_size'][0]}x{report['input_size'][1]} "
        f"({report['checkpoint']}), {report['method']} T={report['passes']} on "
        f"{report['device']} ({report.get('ran_on', report['backend'])} prefix, asked "
        f"{report['backend']}), {report['mode']} mode, {report['source']} "
        f"({report['source_fps']:g} fps)",
        f"start {report['start_s']:.2f} s (model, explainer, warm-up); first result's "
        f"explanation {report.get('first_explain_ms', math.nan):.1f} ms",
        f"torch {report['torch']}, {report['torch_threads']} threads, {report['cpus']} CPUs; "
        f"load average {report['loadavg_start'][0]:.2f} -> {report['loadavg_end'][0]:.2f}",
        f"{report['results']} results in {report['seconds']:.1f} s: "
        f"{report['processed_fps']:.2f} processed frames/s; input {report['input_fps']:.2f} "
        f"frames/s; dropped {report['dropped_frames']}",
        f"latency (capture to result) avg {lat['avg']:.1f} / p95 {lat['p95']:.1f} / "
        f"max {lat['max']:.1f} ms",
        "stage means (ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["stage_mean_ms"].items()),
    ]
    if "latency_first_third_ms" in report:
        lines.append(
            f"p95 first third {report['latency_first_third_ms']['p95']:.1f} ms, last third "
            f"{report['latency_last_third_ms']['p95']:.1f} ms (drift "
            f"{report['latency_p95_drift_ms']:+.1f} ms)"
        )
        lines.append(
            "p95 per window (ms): "
            + " ".join(f"{w['p95']:.0f}" for w in report["latency_windows_ms"])
        )
    rss = report["rss_mb"]
    lines.append(
        f"RSS {rss[0][1]:.1f} MiB after warm-up -> {rss[-1][1]:.1f} MiB after "
        f"{rss[-1][0]} frames ({report['rss_growth_mb']:+.1f} MiB)"
    )
    return "\n".join(lines)
