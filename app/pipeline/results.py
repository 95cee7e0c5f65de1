"""What the pipeline delivers for one analysed frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.calibration.rules import CalibratedFrame, summary_fields
from app.calibration.window import WindowVerdict
from app.explain import Explanation
from app.pipeline.settings import PipelineSettings
from app.preprocess.field_of_view import FieldOfView
from app.render.summary import FrameSummary
from models.checkpoint import CheckpointMetadata

__all__ = ["FrameResult", "mean_cv_in_fov"]


def mean_cv_in_fov(cv: np.ndarray, fov_mask: np.ndarray) -> float | None:
    """Mean risk (CV) over the defined pixels inside the field of view.

    Args:
        cv: (H, W) risk map at the frame's size, NaN where undefined.
        fov_mask: (H, W) bool, the field-of-view disc.

    Returns:
        The mean; None when no pixel in the field of view is defined.
    """
    inside = fov_mask & ~np.isnan(cv)
    return float(cv[inside].mean()) if inside.any() else None


@dataclass(frozen=True, eq=False)
class FrameResult:
    """One frame, what the model saw, its explanation and how long each step took.

    All arrays and tensors are in host memory and are not shared with the pipeline: a consumer
    may keep a result as long as it likes.

    Attributes:
        frame_id: the frame's id (see :class:`app.pipeline.sources.SourceFrame`).
        source_index: the frame's index in the source (frame number in a file).
        capture_time: ``time.monotonic()`` when the source had the frame.
        source_time: seconds on the source's clock (index / fps for files).
        result_time: ``time.monotonic()`` when this result was ready.
        raw: the frame as read from the source (for the raw panel of an analysed frame; the
            live raw panel uses ``Pipeline.latest_frame()``, which runs at the source rate).
        display: float32 (H, W) in [0, 1], what the model saw: the field of view cropped,
            masked and resized to the model's input size.
        fov_mask: bool (H, W), the field-of-view disc at input size.
        fov: the field of view in source-frame pixels.
        explanation: the engine's result on the CPU: ``mean`` (enhanced map) and ``cv`` (risk
            map, NaN where undefined) at the target layer's resolution (upsample with
            :meth:`maps` or ``explanation.upsampled(display.shape)``), ``maps`` (T, h, w),
            ``probs`` (T, K), ``mean_probs``, ``class_idx``, ``entropy``,
            ``mutual_information``, ``timings_ms``.
        class_names: the model's classes, in output order.
        timings_ms: milliseconds per stage: "read" (decoding), "wait" (capture to the worker
            picking the frame up), "preprocess", "explain" (engine total) and the engine's own
            stages as "explain.<stage>", "total" (capture to result).
        settings: the settings this frame was analysed with.
        metadata: the checkpoint's metadata (architecture, intended use, ...).
        calibrated: the frame after the checkpoint's calibration (calibrated probabilities,
            accepted or UNCERTAIN, prediction set); None for a checkpoint without one.
        verdict: the video-level verdict at this frame, over the last seconds at this site
            (:mod:`app.calibration.window`); None where nothing computed one.
    """

    frame_id: int
    source_index: int
    capture_time: float
    source_time: float
    result_time: float
    raw: np.ndarray
    display: np.ndarray
    fov_mask: np.ndarray
    fov: FieldOfView
    explanation: Explanation
    class_names: tuple[str, ...]
    timings_ms: Mapping[str, float]
    settings: PipelineSettings
    metadata: CheckpointMetadata
    calibrated: CalibratedFrame | None = None
    verdict: WindowVerdict | None = None

    @property
    def latency_ms(self) -> float:
        """Capture to result, milliseconds."""
        return (self.result_time - self.capture_time) * 1e3

    @property
    def class_idx(self) -> int:
        """The class explained (the predicted one unless the settings chose one)."""
        return int(self.explanation.class_idx)

    @property
    def predicted_idx(self) -> int:
        """The argmax of the MC-averaged softmax."""
        return int(self.explanation.mean_probs.argmax())

    @property
    def class_name(self) -> str:
        """Name of the class explained."""
        return self.class_names[self.class_idx]

    @property
    def probabilities(self) -> dict[str, float]:
        """MC-averaged softmax by class name."""
        probs = self.explanation.mean_probs.tolist()
        return dict(zip(self.class_names, map(float, probs), strict=True))

    @property
    def probability(self) -> float:
        """MC-averaged probability of the class explained."""
        return float(self.explanation.mean_probs[self.class_idx])

    @property
    def entropy(self) -> float:
        """Predictive entropy of the MC-averaged softmax, nats."""
        return float(self.explanation.entropy)

    @property
    def mutual_information(self) -> float:
        """Mutual information between prediction and dropout masks (epistemic part), nats."""
        return float(self.explanation.mutual_information)

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """The enhanced map and the risk map upsampled (bilinear) to ``display``'s size.

        Returns:
            (mean, cv), float32 (H, W); the CV is NaN where it is undefined.
        """
        mean, cv = self.explanation.upsampled(tuple(self.display.shape[:2]))
        return mean.numpy(), cv.numpy()

    def mean_cv_in_fov(self, cv: np.ndarray | None = None) -> float | None:
        """Mean risk (CV) over the defined pixels inside the field of view; None when there
        are none. Pass ``cv`` from :meth:`maps` to avoid upsampling again."""
        return mean_cv_in_fov(self.maps()[1] if cv is None else cv, self.fov_mask)

    def summary(self, mean_cv: float | None, *, t0: float = 0.0) -> FrameSummary:
        """The frame's numbers, as a recording of it gives them back
        (:meth:`app.recording.FrameRecord.summary`).

        Args:
            mean_cv: :meth:`mean_cv_in_fov` of the maps the caller draws (passed in because
                computing it upsamples the risk map, which a caller that draws has done).
            t0: the clock origin of ``capture_s`` and ``result_s`` (a ``time.monotonic()``
                value, e.g. when processing or the recording started).

        Returns:
            A :class:`~app.render.summary.FrameSummary`.
        """
        ex = self.explanation
        pass_probs = ex.probs.numpy().astype(np.float64)  # (T, K)
        return FrameSummary(
            frame_id=self.frame_id,
            source_index=self.source_index,
            source_time_s=self.source_time,
            capture_s=self.capture_time - t0,
            result_s=self.result_time - t0,
            latency_ms=self.latency_ms,
            class_names=tuple(self.class_names),
            class_idx=self.class_idx,
            probabilities=tuple(map(float, ex.mean_probs.tolist())),
            probability_std=tuple(map(float, pass_probs.std(axis=0))),  # population std
            entropy=self.entropy,
            mutual_information=self.mutual_information,
            mean_cv=mean_cv,
            method=ex.method,
            passes=int(ex.passes),
            mc=bool(ex.mc),
            fov=(float(self.fov.cx), float(self.fov.cy), float(self.fov.radius)),
            fov_found=bool(self.fov.found),
            timings_ms=dict(self.timings_ms),
            fov_source=self.fov.source,
            verdict=self.verdict,
            **summary_fields(self.calibrated, int(ex.mean_probs.argmax()), self.class_names),
        )
