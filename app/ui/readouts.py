"""The viewer's numbers as text: prediction, uncertainty, latency, rates, sources, staleness.

Plain functions of pipeline objects and frame summaries, no Qt, so the wording is tested
without a screen. The prediction readout is made from a
:class:`~app.render.summary.FrameSummary`, so a live result and a recorded frame read alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.pipeline import FrameResult, FrameSource, StatsSnapshot, WindowSummary
from app.render.captions import format_mean_cv, verdict_text
from app.render.summary import FrameSummary

__all__ = [
    "ClassProbability",
    "Prediction",
    "StatsText",
    "describe_frame_format",
    "describe_source",
    "format_age",
    "format_probability",
    "format_window",
    "map_caption",
    "stats_text",
]


def format_probability(mean: float, std: float) -> str:
    """``0.97 ± 0.02``: an MC-mean probability and its spread over the passes."""
    return f"{mean:.2f} ± {std:.2f}"


@dataclass(frozen=True)
class ClassProbability:
    """One class's MC-mean softmax probability and its std over the T passes."""

    name: str
    mean: float
    std: float


@dataclass(frozen=True)
class Prediction:
    """What the model says about one frame, in numbers (see :meth:`of`).

    Attributes:
        predicted: the argmax of the MC-mean softmax.
        explained: the class the maps explain (the predicted one unless the user chose one).
        classes: every class's MC-mean probability and spread, in the model's order.
        entropy: predictive entropy of the MC-mean softmax, nats.
        max_entropy: ln(K), the entropy of a uniform guess.
        mutual_information: the epistemic part of the entropy, nats.
        passes: T (1 for the original, deterministic method).
        mean_cv: mean risk (CV) over the defined pixels of the field of view, or None.
        no_tissue: why the frame shows no tissue to classify (a black frame), or None; the
            viewer then names no class (:attr:`~app.render.summary.FrameSummary.no_tissue`).
        calibrated_p: the calibrated probability of the predicted class; None when the
            checkpoint is not calibrated.
        uncertain: the calibration abstains on this frame (the viewer shows UNCERTAIN).
        prediction_set: the conformal set's class names (empty when not calibrated).
        verdict: the video-level verdict in words (:func:`app.render.captions.verdict_text`;
            empty when none is known).
        verdict_uncertain: the verdict names no class (UNCERTAIN).
    """

    predicted: ClassProbability
    explained: ClassProbability
    classes: tuple[ClassProbability, ...]
    entropy: float
    max_entropy: float
    mutual_information: float
    passes: int
    mean_cv: float | None
    no_tissue: str | None = None
    calibrated_p: float | None = None
    uncertain: bool = False
    prediction_set: tuple[str, ...] = ()
    verdict: str = ""
    verdict_uncertain: bool = False

    @classmethod
    def of(cls, summary: FrameSummary) -> Prediction:
        """The prediction of an analysed frame, live or recorded."""
        classes = tuple(
            ClassProbability(name, m, s)
            for name, m, s in zip(
                summary.class_names, summary.probabilities, summary.probability_std, strict=True
            )
        )
        return cls(
            predicted=classes[summary.predicted_idx],
            explained=classes[summary.class_idx],
            classes=classes,
            entropy=summary.entropy,
            max_entropy=math.log(len(classes)) if len(classes) > 1 else 0.0,
            mutual_information=summary.mutual_information,
            passes=summary.passes if summary.mc else 1,
            mean_cv=summary.mean_cv,
            no_tissue=summary.no_tissue,
            calibrated_p=summary.calibrated_p,
            uncertain=bool(summary.uncertain),
            prediction_set=summary.prediction_set,
            verdict=verdict_text(summary),
            verdict_uncertain=bool(summary.verdict is not None and summary.verdict.uncertain),
        )

    @property
    def explains_other_class(self) -> bool:
        return self.explained.name != self.predicted.name

    def probability_text(self) -> str:
        """``calibrated p 0.99  (raw 0.97 ± 0.02 over T = 10)`` for the predicted class, or
        ``p 0.97 ± 0.02  (over T = 10, not calibrated)``."""
        spread = f"over T = {self.passes}" if self.passes > 1 else "single pass"
        p = self.predicted
        if self.calibrated_p is None:
            return f"p {format_probability(p.mean, p.std)}  ({spread}, not calibrated)"
        raw = format_probability(p.mean, p.std)
        return f"calibrated p {self.calibrated_p:.2f}  (raw {raw} {spread})"

    def set_text(self) -> str:
        """``glioblastoma or meningioma``: the prediction set, when it holds more than one."""
        return " or ".join(self.prediction_set) if len(self.prediction_set) > 1 else ""

    def entropy_text(self) -> str:
        """``0.052 / 1.10 nats``: the entropy and its maximum, ln K."""
        return f"{self.entropy:.3f} / {self.max_entropy:.2f} nats"

    def mutual_information_text(self) -> str:
        return f"{self.mutual_information:.3f} nats"

    def mean_cv_text(self) -> str:
        return format_mean_cv(self.mean_cv)


def format_window(summary: WindowSummary, unit: str = "ms") -> str:
    """``45 / 62 / 80 ms`` (avg / p95 / max), or ``-`` while the window is empty."""
    if summary.count == 0 or math.isnan(summary.avg):
        return "-"
    return f"{summary.avg:.0f} / {summary.p95:.0f} / {summary.max:.0f} {unit}"


@dataclass(frozen=True)
class StatsText:
    """The latency readout, one string per line of the panel."""

    display_latency: str
    result_latency: str
    input_fps: str
    output_fps: str
    display_fps: str
    dropped: str


def stats_text(stats: StatsSnapshot) -> StatsText:
    """The latency readout of a :class:`~app.pipeline.StatsSnapshot`.

    ``display_latency`` is capture to display (what the surgeon experiences), ``result_latency``
    capture to result; both avg / p95 / max over the pipeline's sliding window.
    """
    dropped = f"{stats.dropped_frames}"
    if stats.frames_read:
        dropped += (
            f" of {stats.frames_read} ({100.0 * stats.dropped_frames / stats.frames_read:.0f} %)"
        )
    return StatsText(
        display_latency=format_window(stats.display_latency_ms),
        result_latency=format_window(stats.latency_ms),
        input_fps=f"{stats.input_fps:.1f} fps",
        output_fps=f"{stats.output_fps:.1f} fps",
        display_fps=f"{stats.display_fps:.1f} fps",
        dropped=dropped,
    )


def format_age(seconds: float) -> str:
    """``85 ms`` below a second, ``2.9 s`` below ten, ``12 s`` above."""
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 10.0 else f"{seconds:.0f} s"


def map_caption(result: FrameResult, now: float) -> str:
    """What the map panels say about the frame they were computed from: its id and age."""
    return (
        f"frame {result.frame_id} (#{result.source_index}) · "
        f"age {format_age(max(0.0, now - result.capture_time))}"
    )


def describe_frame_format(image: np.ndarray) -> str:
    """``464×336 8-bit colour``, ``64×48 16-bit grey``: what a source delivers."""
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint8:
        depth = "8-bit"
    elif image.dtype == np.uint16:
        depth = "16-bit"
    elif image.dtype.kind == "f":
        depth = "float"
    else:
        depth = str(image.dtype)
    kind = {1: "grey", 3: "colour", 4: "colour+alpha"}.get(channels, f"{channels}-channel")
    return f"{w}×{h} {depth} {kind}"


def describe_source(source: FrameSource) -> str:
    """``demo_video.mp4 · video file · 24 fps · 210 frames`` (and the field of view in
    micrometres when the source knows it: ``· field 240×210 µm``)."""
    parts = [source.name, source.kind, f"{source.fps:g} fps"]
    if source.frame_count is not None:
        parts.append(f"{source.frame_count} frames")
    if source.field_of_view_um is not None:
        x, y = source.field_of_view_um
        parts.append(f"field {x:g}×{y:g} µm")
    return " · ".join(parts)
