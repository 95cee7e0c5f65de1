"""Open a recorded session for review, without a model.

Reads sessions that closed cleanly and sessions whose process died: the newest complete or
partial result chunk is used, a truncated last line of ``frames.csv`` is dropped, and a chunk
file that does not load is skipped (reported in :attr:`SessionReader.warnings`).
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.recording.layout import (
    DISPLAY_LOG_NAME,
    RESULTS_DIR,
    TABLE_NAME,
    decode_frame,
    parse_chunk_file,
)
from app.recording.manifest import RecordingError, read_manifest
from app.render.summary import FrameSummary

__all__ = ["FrameRecord", "SessionReader", "Timeline"]

_CACHED_CHUNKS = 4


@dataclass(frozen=True)
class FrameRecord:
    """One recorded frame's results.

    Times ``capture_s`` / ``result_s`` are seconds since the session started; ``mean`` and
    ``cv`` are float32 (from float16 on disk) at the target layer's resolution, CV NaN where
    undefined; ``mean_cv_in_fov`` is None when no CV pixel in the field of view was defined;
    ``mc`` is False for the original explanation (Dropout off, one pass); ``input_size`` is the
    model input (H, W) the frame was analysed at (None in sessions recorded before it was kept).
    """

    position: int
    frame_id: int
    source_index: int
    source_time_s: float
    capture_s: float
    result_s: float
    latency_ms: float
    class_idx: int
    class_names: tuple[str, ...]
    probs: np.ndarray
    pass_probs: np.ndarray | None
    entropy: float
    mutual_information: float
    mean: np.ndarray
    cv: np.ndarray
    mean_cv_in_fov: float | None
    method: str
    passes: int
    mc: bool
    input_size: tuple[int, int] | None
    fov: tuple[float, float, float]
    fov_found: bool
    timings_ms: dict[str, float]

    @property
    def class_name(self) -> str:
        return self.class_names[self.class_idx]

    def summary(self) -> FrameSummary:
        """The frame's numbers, as the live result gave them
        (:meth:`app.pipeline.FrameResult.summary` with the session's start as ``t0``), to the
        precision they were stored at; the spread over the passes is 0 when the per-pass
        probabilities were not kept."""
        if self.pass_probs is not None and len(self.pass_probs):
            std = np.asarray(self.pass_probs, dtype=np.float64).std(axis=0)
        else:
            std = np.zeros(len(self.probs))
        return FrameSummary(
            frame_id=self.frame_id,
            source_index=self.source_index,
            source_time_s=self.source_time_s,
            capture_s=self.capture_s,
            result_s=self.result_s,
            latency_ms=self.latency_ms,
            class_names=self.class_names,
            class_idx=self.class_idx,
            probabilities=tuple(map(float, self.probs.tolist())),
            probability_std=tuple(map(float, std)),
            entropy=self.entropy,
            mutual_information=self.mutual_information,
            mean_cv=self.mean_cv_in_fov,
            method=self.method,
            passes=self.passes,
            mc=self.mc,
            fov=self.fov,
            fov_found=self.fov_found,
            timings_ms=dict(self.timings_ms),
        )


@dataclass(frozen=True)
class Timeline:
    """Per-frame series for a strip plot: class explained, mean CV in the FOV (NaN where
    undefined), capture time in seconds since the session started."""

    class_idx: np.ndarray
    mean_cv: np.ndarray
    time_s: np.ndarray


def _complete_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file being appended to; an incomplete last line is dropped."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


class SessionReader:
    """A recorded session folder (see :mod:`app.recording.layout`).

    Raises:
        RecordingError: the folder is not a session (no readable manifest).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest: dict[str, Any] = read_manifest(self.folder)
        self.warnings: list[str] = []
        self._t0 = float(self.manifest.get("monotonic_start") or 0.0)  # checked: finite
        self._chunks: list[Path] = []
        self._index: list[tuple[int, int]] = []  # position -> (chunk slot, row)
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self._scan()

    @property
    def closed_cleanly(self) -> bool:
        """True when the recorder closed the session normally (False after a kill or an error)."""
        return bool(self.manifest.get("closed_cleanly"))

    @property
    def error(self) -> str | None:
        """Why the recording stopped early, as the recorder reported it."""
        return self.manifest.get("error")

    def __len__(self) -> int:
        return len(self._index)

    def frame(self, i: int) -> tuple[np.ndarray, FrameRecord]:
        """The source frame (as captured) and the results of frame ``i``.

        Raises:
            IndexError: ``i`` is out of range.
            RecordingError: the frame's image file is missing or corrupt.
        """
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} is outside the session ({len(self)} frames)")
        slot, row = self._index[i]
        a = self._chunk(slot)
        path = self.folder / str(a["image_file"][row])
        try:
            image = decode_frame(path)
        except (OSError, ValueError) as exc:
            raise RecordingError(f"frame {i}: {exc}") from None
        return image, self._record(a, row)

    def timeline(self) -> Timeline:
        """Class index, mean CV and time of every frame, in order."""
        parts: dict[str, list[np.ndarray]] = {"class_idx": [], "mean_cv": [], "capture_time": []}
        for slot in range(len(self._chunks)):
            a = self._chunk(slot)
            for key in parts:
                parts[key].append(a[key])

        def cat(key: str, dtype: type) -> np.ndarray:
            return np.concatenate(parts[key]).astype(dtype) if parts[key] else np.zeros(0, dtype)

        return Timeline(
            class_idx=cat("class_idx", np.int32),
            mean_cv=cat("mean_cv", np.float32),
            time_s=cat("capture_time", np.float64) - self._t0,
        )

    def table(self) -> list[dict[str, str]]:
        """The rows of ``frames.csv``; an incomplete last line (a kill mid-write) is dropped."""
        path = self.folder / TABLE_NAME
        return _complete_rows(path) if path.exists() else []

    def display_times(self) -> dict[int, tuple[float, float]]:
        """{frame id: (seconds since the session started, capture-to-display ms)} for the
        frames the live viewer drew (empty for headless recordings); a row cut short by a kill
        is dropped."""
        path = self.folder / DISPLAY_LOG_NAME
        if not path.exists():
            return {}
        shown: dict[int, tuple[float, float]] = {}
        for row in _complete_rows(path):
            try:
                shown[int(row["frame_id"])] = (
                    float(row["display_s"]),
                    float(row["capture_to_display_ms"]),
                )
            except (KeyError, TypeError, ValueError):
                continue
        return shown

    # ------------------------------------------------------------------ internals

    def _scan(self) -> None:
        found: dict[int, dict[bool, Path]] = {}
        results = self.folder / RESULTS_DIR
        for path in results.iterdir() if results.is_dir() else ():
            parsed = parse_chunk_file(path.name)
            if parsed is not None:
                found.setdefault(parsed[0], {})[parsed[1]] = path
        for index in sorted(found):
            candidates = [found[index][p] for p in (False, True) if p in found[index]]
            for path in candidates:  # complete first; a partial when the complete is unusable
                try:
                    with np.load(path, allow_pickle=False) as npz:
                        positions = npz["position"]
                except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                    self.warnings.append(f"{path.name} does not load and is skipped: {exc}")
                    continue
                slot = len(self._chunks)
                self._chunks.append(path)
                self._index.extend((slot, row) for row in range(len(positions)))
                break

    def _chunk(self, slot: int) -> dict[str, np.ndarray]:
        if slot not in self._cache:
            if len(self._cache) >= _CACHED_CHUNKS:
                self._cache.pop(next(iter(self._cache)))
            with np.load(self._chunks[slot], allow_pickle=False) as npz:
                self._cache[slot] = {k: npz[k] for k in npz.files}
        return self._cache[slot]

    def _record(self, a: dict[str, np.ndarray], row: int) -> FrameRecord:
        mean_cv = float(a["mean_cv"][row])
        stages = [str(s) for s in a["timing_names"]]
        timings = {
            s: float(v)
            for s, v in zip(stages, a["timings_ms"][row], strict=True)
            if not math.isnan(v)
        }
        return FrameRecord(
            position=int(a["position"][row]),
            frame_id=int(a["frame_id"][row]),
            source_index=int(a["source_index"][row]),
            source_time_s=float(a["source_time"][row]),
            capture_s=float(a["capture_time"][row]) - self._t0,
            result_s=float(a["result_time"][row]) - self._t0,
            latency_ms=float(a["latency_ms"][row]),
            class_idx=int(a["class_idx"][row]),
            class_names=tuple(str(n) for n in a["class_names"]),
            probs=a["probs"][row].copy(),
            pass_probs=a["pass_probs"][row].copy() if "pass_probs" in a else None,
            entropy=float(a["entropy"][row]),
            mutual_information=float(a["mutual_information"][row]),
            mean=a["mean"][row].astype(np.float32),
            cv=a["cv"][row].astype(np.float32),
            mean_cv_in_fov=None if math.isnan(mean_cv) else mean_cv,
            method=str(a["method"][row]),
            passes=int(a["passes"][row]),
            mc=bool(a["mc"][row]) if "mc" in a else bool(self.manifest.get("mc", True)),
            input_size=(
                (int(a["input_size"][0]), int(a["input_size"][1])) if "input_size" in a else None
            ),
            fov=tuple(float(v) for v in a["fov"][row]),  # type: ignore[arg-type]
            fov_found=bool(a["fov_found"][row]),
            timings_ms=timings,
        )
