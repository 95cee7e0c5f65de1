"""One analysed frame in numbers, the same whether it was just analysed or read back from a
recording.

A live result (:meth:`app.pipeline.FrameResult.summary`) and a recorded frame
(:meth:`app.recording.FrameRecord.summary`) both give a :class:`FrameSummary`, and everything
that turns a frame into words reads that: the readouts, the panel captions and headers, the
snapshot JSON and the per-frame CSV (:mod:`app.render.table`). So the live viewer and the
review window cannot describe one frame in two ways.

It holds numbers only, no arrays (the maps travel beside it), and compares with ``==``; it
lives with the rendering because it is the rendering's input, and it imports nothing from the
pipeline or the recorder (only the calibration's plain verdict record), so both can produce it
without depending on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.calibration.window import WindowVerdict

__all__ = ["NO_TISSUE", "FrameSummary"]


NO_TISSUE = {
    "no_signal": "no signal: the frame is black (no tissue in contact, or no laser light); "
    "the class is not a reading of tissue",
    "no_disc": "no field of view found in this dark frame: the class may not be a reading of "
    "tissue",
}
"""What :attr:`FrameSummary.no_tissue` says for each field-of-view fallback that means it."""


@dataclass(frozen=True)
class FrameSummary:
    """The numbers of one analysed frame.

    Attributes:
        frame_id: the frame's id in the pipeline that analysed it.
        source_index: the frame's index in its source (frame number in a file).
        source_time_s: seconds on the source's clock.
        capture_s: when the source had the frame, seconds since a clock origin: the session's
            start for a recorded frame, the ``t0`` given to ``FrameResult.summary`` for a live
            one (0: the monotonic clock itself).
        result_s: when the result was ready, same origin.
        latency_ms: capture to result, milliseconds.
        class_names: the model's classes, in output order.
        class_idx: the class explained (the predicted one unless the user chose one).
        probabilities: the MC-mean softmax probability of each class, as the engine computed
            it (the number the recording keeps).
        probability_std: each class's population standard deviation over the T passes (0
            where the per-pass probabilities were not recorded).
        entropy: predictive entropy of the MC-mean softmax, nats.
        mutual_information: its epistemic part (disagreement between passes), nats.
        mean_cv: mean risk (CV) over the defined pixels of the field of view; None when no
            pixel there is defined.
        method: the attribution method's key (``gradcam++``).
        passes: T, the MC Dropout passes (1 for the original).
        mc: Dropout on (False: the original, deterministic explanation).
        fov: the field of view (cx, cy, radius) in source-frame pixels.
        fov_found: whether the field of view was detected (False: assumed).
        timings_ms: milliseconds per stage ("read", "wait", "preprocess", "explain",
            "explain.<stage>", "total"), in the order the pipeline reported them.
        fov_source: how the field of view was found (:attr:`FieldOfView.source
            <app.preprocess.field_of_view.FieldOfView.source>`: ``"detected"``, ``"no_signal"``
            for a black frame, ...); ``"unknown"`` for a frame recorded before sessions kept
            it.
        calibrated_p: the calibrated probability of the predicted class; None when the
            checkpoint has no calibration (``python -m app calibrate``) or it is not known.
        uncertain: the calibration abstains on this frame (UNCERTAIN: no class to rely on);
            None without a calibration.
        prediction_set: the conformal prediction set's class names, in the model's order;
            empty without a calibration.
        verdict: the video-level verdict at this frame (:mod:`app.calibration.window`); None
            for a frame recorded before sessions kept it.
    """

    frame_id: int
    source_index: int
    source_time_s: float
    capture_s: float
    result_s: float
    latency_ms: float
    class_names: tuple[str, ...]
    class_idx: int
    probabilities: tuple[float, ...]
    probability_std: tuple[float, ...]
    entropy: float
    mutual_information: float
    mean_cv: float | None
    method: str
    passes: int
    mc: bool
    fov: tuple[float, float, float]
    fov_found: bool
    timings_ms: Mapping[str, float]
    fov_source: str = "unknown"
    calibrated_p: float | None = None
    uncertain: bool | None = None
    prediction_set: tuple[str, ...] = ()
    verdict: WindowVerdict | None = None

    @property
    def no_tissue(self) -> str | None:
        """Why the frame shows no tissue to classify (a black frame, or no field of view in a
        dark one), for the user; None when it does or when that is not known."""
        return NO_TISSUE.get(self.fov_source)

    @property
    def class_name(self) -> str:
        """Name of the class explained."""
        return self.class_names[self.class_idx]

    @property
    def probability(self) -> float:
        """MC-mean probability of the class explained."""
        return self.probabilities[self.class_idx]

    @property
    def predicted_idx(self) -> int:
        """The argmax of the MC-mean softmax (the first of equals)."""
        return int(np.argmax(self.probabilities))

    @property
    def probability_by_class(self) -> dict[str, float]:
        """MC-mean probability by class name, in the model's order."""
        return dict(zip(self.class_names, self.probabilities, strict=True))
