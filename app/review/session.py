"""A recorded session opened for review: each frame's three panels rebuilt from what was stored.

The recorder keeps the source frame (lossless), the field of view found for it and the mean
and CV maps at the target layer's resolution. The map panels are rebuilt here exactly as the
live viewer drew them: the frame is cropped to the stored field of view and resized to the
model's input size (the same preprocessing code, so the same pixels), and the maps are
upsampled with the engine's NaN-aware bilinear upsampling. No model file is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.explain.statistics import upsample_map
from app.preprocess.field_of_view import FieldOfView
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from app.recording import DamagedFrames, FrameRecord, RecordingError, SessionReader, Timeline
from app.render.captions import panel_headers, passes_label
from app.render.panels import render_panels
from app.render.summary import FrameSummary

__all__ = ["ReviewFrame", "ReviewSession"]


@dataclass(frozen=True, eq=False)
class ReviewFrame:
    """One recorded frame, ready to draw.

    Attributes:
        position: the frame's position in the session (0-based).
        raw: the frame as captured (dtype and layout as the source delivered it).
        display: float32 (H, W) in [0, 1], what the model saw (input size).
        fov_mask: bool (H, W), the field of view at input size.
        mean: float32 (H, W), the enhanced map upsampled to ``display``'s size.
        cv: float32 (H, W), the risk map upsampled, NaN where undefined.
        record: the stored numbers (probabilities, entropy, timings, ...).
        summary: the same numbers as the live result gave them (:meth:`FrameRecord.summary`),
            what the headers, captions, readouts and snapshot JSON show.
    """

    position: int
    raw: np.ndarray
    display: np.ndarray
    fov_mask: np.ndarray
    mean: np.ndarray
    cv: np.ndarray
    record: FrameRecord
    summary: FrameSummary = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", self.record.summary())

    def headers(self) -> tuple[str, str, str]:
        """The text above each panel, as in headless processing."""
        return panel_headers(self.summary)

    def panels(self, height: int | None = None, *, whole_frame: bool = False) -> np.ndarray:
        """raw | enhanced | risk as one BGR uint8 image, the raw panel cut to the field of
        view unless ``whole_frame`` (see :func:`app.render.panels.render_panels`)."""
        return render_panels(
            self.summary,
            self.raw,
            self.display,
            self.fov_mask,
            self.mean,
            self.cv,
            height,
            whole_frame=whole_frame,
        )

    def numbers(self) -> dict[str, Any]:
        """The frame's numbers, JSON-ready (NaN as None): what a review snapshot writes."""
        s = self.summary

        def finite(value: float | None) -> float | None:
            return None if value is None or not np.isfinite(value) else round(float(value), 6)

        return {
            "position": self.position,
            "frame_id": s.frame_id,
            "source_index": s.source_index,
            "source_time_s": finite(s.source_time_s),
            "capture_s": finite(s.capture_s),
            "latency_ms": finite(s.latency_ms),
            "class": s.class_name,
            "class_index": s.class_idx,
            "probabilities": {name: finite(p) for name, p in s.probability_by_class.items()},
            "entropy_nats": finite(s.entropy),
            "mutual_information_nats": finite(s.mutual_information),
            "mean_cv_in_fov": finite(s.mean_cv),
            "method": s.method,
            "passes": s.passes,
            "mc": s.mc,
            "fov": {"cx": s.fov[0], "cy": s.fov[1], "radius": s.fov[2], "found": s.fov_found},
            "timings_ms": {k: finite(v) for k, v in s.timings_ms.items()},
        }


class ReviewSession:
    """A session folder opened for review (read-only, except for its bookmarks).

    Args:
        folder: a session folder written by :class:`app.recording.SessionRecorder`, whether it
            closed cleanly or its process died.

    Raises:
        RecordingError: not a session, or a session that never got to its first frame's
            model description (nothing to review).
    """

    def __init__(self, folder: str | Path) -> None:
        self.reader = SessionReader(folder)
        self.folder = self.reader.folder
        manifest = self.reader.manifest
        metadata = (manifest.get("checkpoint") or {}).get("metadata")
        if not isinstance(metadata, dict) or metadata.get("input_size") is None:
            if len(self.reader) == 0:
                raise RecordingError(f"{self.folder}: the session holds no frame")
            raise RecordingError(f"{self.folder}: the manifest does not describe the model")
        self.input_size: tuple[int, int] = tuple(int(v) for v in metadata["input_size"])  # type: ignore[assignment]
        """The first model's input size (H, W); a frame's own is in its record."""
        self.class_names: tuple[str, ...] = tuple(metadata.get("class_names") or ())
        self._preprocessors: dict[tuple[int, int], FramePreprocessor] = {}
        self._timeline: Timeline | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.reader.manifest

    @property
    def warnings(self) -> list[str]:
        """Damage worked around while opening, for the user (see
        :attr:`SessionReader.warnings`)."""
        return self.reader.warnings

    @property
    def damaged(self) -> list[DamagedFrames]:
        """The runs of frames whose results cannot be read (their chunk is corrupt, cut short
        or deleted); :meth:`frame` refuses them, the others read as usual."""
        return self.reader.damaged

    @property
    def fps(self) -> float:
        """The rate at which frames were recorded (median spacing of their capture times);
        25 when unknown."""
        times = self.timeline().time_s
        steps = np.diff(times)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        return float(1.0 / np.median(steps)) if steps.size else 25.0

    def __len__(self) -> int:
        return len(self.reader)

    def timeline(self) -> Timeline:
        """Class, mean CV and time of every frame (computed once)."""
        if self._timeline is None:
            self._timeline = self.reader.timeline()
        return self._timeline

    def frame(self, position: int) -> ReviewFrame:
        """Frame ``position`` with its panels' images.

        Raises:
            IndexError: out of range.
            RecordingError: the frame's results or image file are missing or corrupt.
        """
        raw, record = self.reader.frame(position)
        cx, cy, radius = record.fov
        fov = FieldOfView(cx, cy, radius, found=record.fov_found, source="recorded")
        try:
            pre = self._preprocessor(record.input_size or self.input_size)(raw, fov=fov)
        except ValueError as exc:
            raise RecordingError(f"frame {position}: {exc}") from None
        size = tuple(pre.display.shape[:2])
        mean = upsample_map(torch.from_numpy(record.mean), size).numpy()  # type: ignore[arg-type]
        cv = upsample_map(torch.from_numpy(record.cv), size).numpy()  # type: ignore[arg-type]
        return ReviewFrame(
            position=position if position >= 0 else len(self) + position,
            raw=raw,
            display=pre.display,
            fov_mask=pre.fov_mask,
            mean=mean,
            cv=cv,
            record=record,
        )

    def _preprocessor(self, size: tuple[int, int]) -> FramePreprocessor:
        """The display preprocessing for a model input ``size`` (a session may change model).
        Normalisation does not matter here: only the display image is used."""
        if size not in self._preprocessors:
            config = PreprocessConfig(size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
            self._preprocessors[size] = FramePreprocessor(config)
        return self._preprocessors[size]

    def describe(self) -> str:
        """One line: when, what source, which method and model, how many frames (and how
        many of them cannot be read)."""
        m = self.manifest
        passes = passes_label(m.get("passes"), m.get("mc", True), compact=True)
        unreadable = len(self) - self.reader.readable_frames
        state = f", {unreadable} unreadable" if unreadable else ""
        state += "" if self.reader.closed_cleanly else " (not closed cleanly)"
        return (
            f"{m.get('started_utc', '?')} · {m.get('source', '?')} · {m.get('method', '?')} "
            f"{passes} · {(m.get('checkpoint') or {}).get('file', '?')} · {len(self)} frames{state}"
        )
