"""The per-frame table (``frames.csv``): one row of numbers per analysed frame.

Headless processing (:mod:`app.pipeline.headless`) and session recording
(:mod:`app.recording.writer`, which adds ``method`` and ``passes``) write the same columns,
made here from a :class:`~app.render.summary.FrameSummary`.
"""

from __future__ import annotations

from typing import Any

from app.render.summary import FrameSummary

__all__ = ["PIPELINE_STAGES", "WINDOW_COLUMNS", "csv_columns", "csv_row"]

PIPELINE_STAGES = ("read", "wait", "preprocess", "explain")
"""The pipeline's own stages, always given a column (empty when a frame lacks one)."""


def _stage_column(stage: str) -> str:
    return f"{stage.replace('.', '_')}_ms"


WINDOW_COLUMNS = ("window_class", "window_p", "window_frames", "window_s", "window_restart")


def _window_cells(summary: FrameSummary) -> dict[str, Any]:
    w = summary.verdict
    if w is None:
        return dict.fromkeys(WINDOW_COLUMNS, "")
    if w.class_idx is None:
        name = ""
    else:
        name = "UNCERTAIN" if w.uncertain else summary.class_names[w.class_idx]
    return {
        "window_class": name,
        "window_p": "" if w.class_idx is None else f"{w.probability:.6f}",
        "window_frames": w.frames,
        "window_s": f"{w.seconds:.3f}",
        "window_restart": w.restarted or "",
    }


def csv_columns(summary: FrameSummary) -> list[str]:
    """The CSV columns for frames like ``summary``.

    ``frame_id, source_index, source_time_s, capture_s, result_s`` (capture and result times in
    seconds since the summary's clock origin), ``class, class_index, p_<class>`` for every
    class, ``entropy_nats, mutual_information_nats, mean_cv_in_fov``, ``field_of_view`` (how it
    was found: ``detected``, ``no_signal`` for a black frame, ...; see
    :attr:`~app.render.summary.FrameSummary.fov_source`), ``calibrated_p``, ``uncertain`` (0/1)
    and ``prediction_set`` (class names joined by ``|``; the three are empty for a checkpoint
    without calibration), the video-level verdict at the frame (:mod:`app.calibration.window`):
    ``window_class`` (its class name, ``UNCERTAIN`` when it names none, empty for a frame
    without tissue), ``window_p`` (the mean probability of its best class), ``window_frames``
    and ``window_s`` (the frames pooled and the seconds they span) and ``window_restart`` (why
    the window restarted at this frame, empty when it went on), ``latency_ms`` (capture to
    result),
    then ``<stage>_ms`` for read, wait, preprocess, explain, the engine's own stages
    (``explain_forward_ms``, ...) and ``total_ms``.
    """
    engine = [k for k in summary.timings_ms if k.startswith("explain.")]
    stages = [*PIPELINE_STAGES, *engine, "total"]
    return [
        "frame_id",
        "source_index",
        "source_time_s",
        "capture_s",
        "result_s",
        "class",
        "class_index",
        *(f"p_{name}" for name in summary.class_names),
        "entropy_nats",
        "mutual_information_nats",
        "mean_cv_in_fov",
        "field_of_view",
        "calibrated_p",
        "uncertain",
        "prediction_set",
        *WINDOW_COLUMNS,
        "latency_ms",
        *(_stage_column(stage) for stage in stages),
    ]


def csv_row(summary: FrameSummary) -> dict[str, Any]:
    """One frame's row for the columns of :func:`csv_columns`."""
    row: dict[str, Any] = {
        "frame_id": summary.frame_id,
        "source_index": summary.source_index,
        "source_time_s": f"{summary.source_time_s:.4f}",
        "capture_s": f"{summary.capture_s:.4f}",
        "result_s": f"{summary.result_s:.4f}",
        "class": summary.class_name,
        "class_index": summary.class_idx,
        "entropy_nats": f"{summary.entropy:.6f}",
        "mutual_information_nats": f"{summary.mutual_information:.6f}",
        "mean_cv_in_fov": "" if summary.mean_cv is None else f"{summary.mean_cv:.6f}",
        "field_of_view": summary.fov_source,
        "calibrated_p": "" if summary.calibrated_p is None else f"{summary.calibrated_p:.6f}",
        "uncertain": "" if summary.uncertain is None else int(summary.uncertain),
        "prediction_set": "|".join(summary.prediction_set),
        **_window_cells(summary),
        "latency_ms": f"{summary.latency_ms:.2f}",
    }
    for name, p in summary.probability_by_class.items():
        row[f"p_{name}"] = f"{p:.6f}"
    for stage, ms in summary.timings_ms.items():
        row[_stage_column(stage)] = f"{ms:.2f}"
    return row
