"""The words drawn with an analysed frame: method names, "T = 10" / "original", panel headers
and titles, the mean-CV figure, the video-level verdict.

Every window, video, export and log line that names how a frame was explained takes the words
from here, so they cannot drift apart. Two spellings of the passes are in use, and both are
kept as they are: ``T = 10`` on screen (panel titles, status line, readouts) and the compact
``T=10`` where space is short or the text is one line (headers burnt into panel videos and
exported PNGs, settings and session descriptions).
"""

from __future__ import annotations

from app.render.summary import FrameSummary

__all__ = [
    "METHOD_LABELS",
    "format_mean_cv",
    "map_titles",
    "method_label",
    "panel_headers",
    "passes_label",
    "prediction_caption",
    "verdict_text",
]

METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "smoothgradcam++": "SmoothGrad-CAM++",
    "scorecam": "Score-CAM",
    "reciprocam": "Recipro-CAM",
}
"""How the UI names the methods of :data:`app.explain.METHODS`."""


def method_label(method: str) -> str:
    """The display name of a method key ("gradcam++" -> "Grad-CAM++"); unknown keys as given."""
    return METHOD_LABELS.get(method, method)


def passes_label(passes: object, mc: object, *, compact: bool = False) -> str:
    """How a frame was explained: ``T = 10`` (MC Dropout, T passes) or ``original``.

    Args:
        passes: T; written as given (a session manifest may hold anything).
        mc: whether Dropout was on (truthiness counts); False gives ``original``.
        compact: ``T=10`` instead of ``T = 10``, for one-line descriptions and the headers
            burnt into panel videos.

    Returns:
        The label.
    """
    if not mc:
        return "original"
    return f"T={passes}" if compact else f"T = {passes}"


def format_mean_cv(mean_cv: float | None) -> str:
    """The mean risk (CV) in the field of view to two decimals, ``-`` when undefined."""
    return "-" if mean_cv is None else f"{mean_cv:.2f}"


def panel_headers(summary: FrameSummary) -> tuple[str, str, str]:
    """The text above each panel of a panel video or exported PNG: (raw, enhanced, risk).

    The method is written as its key (``gradcam++``) and the passes compactly (``T=10``).
    """
    passes = passes_label(summary.passes, summary.mc, compact=True)
    return (
        f"raw #{summary.source_index}  {summary.source_time_s:.2f} s",
        f"{summary.method} {passes}: {summary.class_name} {summary.probability:.2f}",
        f"risk (CV), mean {format_mean_cv(summary.mean_cv)}",
    )


def map_titles(summary: FrameSummary) -> tuple[tuple[str, str], tuple[str, str]]:
    """The viewer's titles of the two map panels, each (heading, detail): the method and the
    passes the maps were made with."""
    passes = passes_label(summary.passes, summary.mc)
    return (
        ("Enhanced attribution", f"{method_label(summary.method)} · {passes}"),
        ("Risk", f"CV over {passes}"),
    )


def prediction_caption(summary: FrameSummary, uncertain: bool = False) -> str:
    """``meningioma  p 0.80  ·  mean CV 0.21``: the class explained, its probability and the
    mean CV, with ``  ·  uncertain`` when the frame is among the session's uncertain ones;
    ``no tissue  ·  model output meningioma, not a reading`` for a black frame; with a
    calibration, ``UNCERTAIN  ·  could be A or B  ·  mean CV 0.21`` for an abstained frame and
    ``meningioma  calibrated p 0.99  ·  ...`` otherwise."""
    cv = f"mean CV {format_mean_cv(summary.mean_cv)}"
    if summary.no_tissue is not None:  # a black frame: name no class
        text = f"no tissue  ·  model output {summary.class_name}, not a reading"
    elif summary.uncertain:  # the calibration abstains: name no single class either
        could_be = " or ".join(summary.prediction_set) or summary.class_name
        text = f"UNCERTAIN  ·  could be {could_be}  ·  {cv}"
    elif summary.calibrated_p is not None:
        text = f"{summary.class_name}  calibrated p {summary.calibrated_p:.2f}  ·  {cv}"
    else:
        text = f"{summary.class_name}  p {summary.probability:.2f}  ·  {cv}"
    return text + ("  ·  uncertain" if uncertain else "")


def verdict_text(summary: FrameSummary) -> str:
    """The video-level verdict at a frame (:mod:`app.calibration.window`):
    ``glioblastoma 0.93 over the last 2.0 s (48 frames)``, ``UNCERTAIN over the last 2.0 s
    (48 frames)`` when the window names no class, ``... (not calibrated)`` when the
    probabilities pooled are raw ones, ``no tissue: the verdict restarts`` for a frame without
    tissue; empty when no verdict is known (a session recorded before verdicts)."""
    w = summary.verdict
    if w is None:
        return ""
    if w.class_idx is None:
        return "no tissue: the verdict restarts"
    span = (
        "over 1 frame" if w.frames == 1 else f"over the last {w.seconds:.1f} s ({w.frames} frames)"
    )
    if w.uncertain:
        return f"UNCERTAIN {span}"
    name = summary.class_names[w.class_idx]
    return f"{name} {w.probability:.2f} {span}" + ("" if w.calibrated else " (not calibrated)")
