"""Open a recorded session for review, without a model.

Reads sessions that closed cleanly and sessions whose process died: the newest complete or
partial result chunk is used and a truncated last line of ``frames.csv`` is dropped.

A damaged session stays reviewable: every result chunk is read whole when the session opens
(a flipped byte only shows when its array is decompressed), and the frames of a chunk that is
corrupt, truncated or deleted keep their positions and are listed in
:attr:`SessionReader.damaged`; :meth:`SessionReader.frame` refuses them with a message that
says which chunk and why, and the frames of intact chunks read as before.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.calibration.rules import (
    CalibratedFrame,
    Calibration,
    CalibrationError,
    summary_fields,
)
from app.calibration.window import WindowVerdict
from app.recording.layout import (
    DISPLAY_LOG_NAME,
    FRAMES_DIR,
    RESULTS_DIR,
    TABLE_NAME,
    chunk_file,
    decode_frame,
    frame_folder,
    parse_chunk_file,
    parse_frame_file,
    parse_frame_folder,
)
from app.recording.manifest import RecordingError, read_manifest
from app.recording.verdicts import verdict_at
from app.render.summary import FrameSummary

__all__ = ["DamagedFrames", "FrameRecord", "SessionReader", "Timeline", "format_positions"]

_CACHED_CHUNKS = 4
_LOAD_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What ``np.load`` of a damaged ``.npz`` raises (a bad CRC, a broken stream, a cut file)."""
_PER_FRAME = (
    "position",
    "image_file",
    "frame_id",
    "source_index",
    "capture_time",
    "source_time",
    "result_time",
    "latency_ms",
    "mean",
    "cv",
    "probs",
    "class_idx",
    "entropy",
    "mutual_information",
    "mean_cv",
    "fov",
    "fov_found",
    "method",
    "passes",
    "timings_ms",
)
"""The arrays of a result chunk with one row per frame (``pass_probs``, ``mc``, ``fov_source``
and the verdict's (:mod:`app.recording.verdicts`) optional: sessions recorded before them read
as before)."""


@dataclass(frozen=True)
class FrameRecord:
    """One recorded frame's results.

    Times ``capture_s`` / ``result_s`` are seconds since the session started; ``mean`` and
    ``cv`` are float32 (from float16 on disk) at the target layer's resolution, CV NaN where
    undefined; ``mean_cv_in_fov`` is None when no CV pixel in the field of view was defined;
    ``mc`` is False for the original explanation (Dropout off, one pass); ``input_size`` is the
    model input (H, W) the frame was analysed at (None in sessions recorded before it was kept);
    ``verdict`` is the video-level verdict the live view showed (None before sessions kept it).
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
    fov_source: str = "unknown"
    calibrated: CalibratedFrame | None = None
    verdict: WindowVerdict | None = None

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
            fov_source=self.fov_source,
            verdict=self.verdict,
            **summary_fields(self.calibrated, int(np.argmax(self.probs)), self.class_names),
        )


@dataclass(frozen=True)
class DamagedFrames:
    """Frames ``first`` to ``last`` (inclusive) whose results cannot be read: the result
    chunks that held them (empty when not known) and why."""

    first: int
    last: int
    chunks: tuple[int, ...]
    reason: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, position: object) -> bool:
        return isinstance(position, int) and self.first <= position <= self.last

    def describe(self) -> str:
        """E.g. ``frames 10-19 (chunk 1) are unreadable: results/chunk_00001.npz is corrupt
        (...)``."""
        one = self.count == 1
        frames = f"frame {self.first}" if one else f"frames {self.first}-{self.last}"
        where = f" ({_chunks_label(self.chunks)})" if self.chunks else ""
        return f"{frames}{where} {'is' if one else 'are'} unreadable: {self.reason}"


def _chunks_label(chunks: tuple[int, ...]) -> str:
    """``chunk 1``, ``chunks 1-3`` or ``chunks 1, 4``."""
    return f"chunk {chunks[0]}" if len(chunks) == 1 else f"chunks {format_positions(chunks)}"


def format_positions(positions: Sequence[int]) -> str:
    """Frame positions as runs: ``[3, 10, 11, 12]`` gives ``3, 10-12``."""
    runs: list[list[int]] = []
    for position in sorted(positions):
        if runs and position == runs[-1][1] + 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, last, value) of each run of equal values of a 1-D integer array."""
    if not values.size:
        return []
    breaks = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [values.size])) - 1
    return [(int(a), int(b), int(values[a])) for a, b in zip(starts, ends, strict=True)]


def _load_chunk(path: Path) -> dict[str, np.ndarray]:
    """Every array of a result chunk, checked to be whole and consistent.

    Raises:
        RecordingError: the file is missing, cut short, corrupt or not a result chunk.
    """
    name = f"{RESULTS_DIR}/{path.name}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reads (and CRC-checks) every member
    except FileNotFoundError:
        raise RecordingError(f"{name} is missing") from None
    except _LOAD_ERRORS as exc:
        raise RecordingError(f"{name} is corrupt ({exc or type(exc).__name__})") from None
    missing = [k for k in (*_PER_FRAME, "class_names", "timing_names") if k not in arrays]
    if missing:
        raise RecordingError(f"{name} is corrupt (no {', '.join(missing)} array)")
    positions = arrays["position"]
    rows = len(positions)
    uneven = [k for k in _PER_FRAME if len(arrays[k]) != rows]
    if uneven or positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
        raise RecordingError(f"{name} is corrupt (its arrays disagree on the frame count)")
    if not rows:
        raise RecordingError(f"{name} is corrupt (it holds no frame)")
    if positions[0] < 0 or np.any(np.diff(positions) <= 0):
        raise RecordingError(f"{name} is corrupt (its frame positions are out of order)")
    return arrays


@dataclass(frozen=True)
class Timeline:
    """Per-frame series for a strip plot: class explained (-1 where the frame's results cannot
    be read), mean CV in the FOV (NaN where undefined or unreadable), capture time in seconds
    since the session started (NaN where unreadable)."""

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

    ``len()`` counts every frame recorded, damaged ones included (see :attr:`damaged`), so a
    frame keeps its position whatever happened to the chunks before it.

    Raises:
        RecordingError: the folder is not a session (no readable manifest).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest: dict[str, Any] = read_manifest(self.folder)
        self.warnings: list[str] = []
        self.calibration = self._recorded_calibration()
        """Damage worked around while opening (a partial chunk read instead of a corrupt
        complete one), for the user."""
        self.damaged: list[DamagedFrames] = []
        """The runs of frames whose results cannot be read, in order."""
        self._t0 = float(self.manifest.get("monotonic_start") or 0.0)  # checked: finite
        self._chunks: list[Path] = []
        self._index: list[tuple[int, int] | None] = []  # position -> (chunk slot, row)
        self._series: list[dict[str, np.ndarray]] = []  # per chunk slot: the timeline's arrays
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

    @property
    def readable_frames(self) -> int:
        """Frames whose results can be read (``len()`` less the :attr:`damaged` ones)."""
        return len(self) - sum(span.count for span in self.damaged)

    def damage(self, position: int) -> DamagedFrames | None:
        """The run of damaged frames that holds ``position`` (None for a readable frame)."""
        return next((span for span in self.damaged if position in span), None)

    def frame(self, i: int) -> tuple[np.ndarray, FrameRecord]:
        """The source frame (as captured) and the results of frame ``i``.

        Raises:
            IndexError: ``i`` is out of range.
            RecordingError: the frame's results (its chunk) or its image file are missing or
                corrupt.
        """
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} is outside the session ({len(self)} frames)")
        i %= len(self)
        entry = self._index[i]
        if entry is None:
            span = self.damage(i)
            raise RecordingError(f"frame {i}: {span.describe() if span else 'unreadable'}")
        slot, row = entry
        try:
            a = self._chunk(slot)
        except RecordingError as exc:  # changed on disk since the session was opened
            raise RecordingError(f"frame {i}: {exc}") from None
        path = self.folder / str(a["image_file"][row])
        try:
            image = decode_frame(path)
        except (OSError, ValueError) as exc:
            raise RecordingError(f"frame {i}: {exc}") from None
        return image, self._record(a, row)

    def timeline(self) -> Timeline:
        """Class index, mean CV and time of every frame, in order (-1 / NaN for the frames
        whose results cannot be read)."""
        n = len(self)
        class_idx = np.full(n, -1, np.int32)
        mean_cv = np.full(n, np.nan, np.float32)
        time_s = np.full(n, np.nan, np.float64)
        for series in self._series:
            at = series["position"]
            class_idx[at] = series["class_idx"]
            mean_cv[at] = series["mean_cv"]
            time_s[at] = series["capture_time"] - self._t0
        return Timeline(class_idx=class_idx, mean_cv=mean_cv, time_s=time_s)

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
        problems: dict[int, str] = {}  # chunk index -> why (some of) its results are gone
        read: list[tuple[int, int, int]] = []  # (chunk index, first, last position) per slot
        for index in sorted(found):
            failed: list[str] = []
            for path in (found[index][p] for p in (False, True) if p in found[index]):
                # complete first; a partial when the complete is unusable
                try:
                    arrays = _load_chunk(path)
                except RecordingError as exc:
                    failed.append(str(exc))
                    continue
                positions = arrays["position"]
                if read and positions[0] <= read[-1][2]:
                    failed.append(
                        f"{RESULTS_DIR}/{path.name} is corrupt (its frame positions overlap "
                        f"chunk {read[-1][0]}'s)"
                    )
                    continue
                if failed:
                    self.warnings.append(f"{failed[0]}; {path.name} is read instead")
                    problems[index] = failed[0]
                self._chunks.append(path)
                self._series.append(
                    {k: arrays[k] for k in ("position", "class_idx", "mean_cv", "capture_time")}
                )
                read.append((index, int(positions[0]), int(positions[-1])))
                break
            else:
                problems[index] = "; ".join(failed)
        # a deleted chunk below the last one found; a chunk holds a frame at least, so no real
        # index reaches the frame count (a stray file named chunk_99999999.npz is not a gap)
        top, known = max(found, default=0), read[-1][2] + 1 if read else 0
        for index in range(top if top <= known else min(top, len(self.table()))):
            if index not in found:
                problems[index] = f"{RESULTS_DIR}/{chunk_file(index)} is missing"
        count = self._claimed_count(read, problems)
        stored = {index: self._stored_positions(index) for index in problems}
        count = max([count, *(max(p, default=-1) + 1 for p in stored.values())])
        self._index = [None] * count
        for slot, series in enumerate(self._series):
            for row, position in enumerate(series["position"].tolist()):
                self._index[position] = (slot, row)
        self.damaged = self._find_damage(read, problems, stored)
        told = {index for span in self.damaged for index in span.chunks}
        self.warnings.extend(  # an unreadable file that no missing frame is known to come from
            f"{problems[index]}; no frame is known to be missing with it"
            for index in sorted(set(problems) - told - {i for i, _, _ in read})
            if index in found
        )

    def _claimed_count(self, read: list[tuple[int, int, int]], problems: dict[int, str]) -> int:
        """Frames recorded as far as the readable chunks and the manifest tell: for a session
        that closed, the manifest's count as far as ``frames.csv`` bears it out (a trailing
        chunk may have been deleted; a hand-edited count must not invent frames). The chunks
        missing at the end (those with an image folder, else the next one) are added to
        ``problems``."""
        count = read[-1][2] + 1 if read else 0
        claimed = self.manifest.get("frames")
        if isinstance(claimed, int) and claimed > count:
            claimed = min(claimed, len(self.table()))
            last = read[-1][0] if read else -1
            if claimed > count and not any(index > last for index in problems):
                folders = self.folder / FRAMES_DIR
                names = [entry.name for entry in folders.iterdir()] if folders.is_dir() else []
                indices = {i for i in map(parse_frame_folder, names) if i is not None and i > last}
                for index in sorted(indices) or [last + 1]:
                    problems[index] = f"{RESULTS_DIR}/{chunk_file(index)} is missing"
            count = max(count, claimed)
        return count

    def _stored_positions(self, index: int) -> list[int]:
        """Positions whose source frames are in chunk ``index``'s image folder: which frames
        a damaged chunk held."""
        folder = self.folder / frame_folder(index)
        try:
            names = [entry.name for entry in folder.iterdir()]
        except OSError:
            return []
        return [p for p in map(parse_frame_file, names) if p is not None]

    def _find_damage(
        self,
        read: list[tuple[int, int, int]],
        problems: dict[int, str],
        stored: dict[int, list[int]],
    ) -> list[DamagedFrames]:
        """The runs of positions no readable chunk holds, each with the damaged chunk(s) that
        held it: the one whose image folder has its frames, else those between the readable
        chunks around it."""
        count = len(self._index)
        owner = np.full(count, -2, np.int64)  # -2 readable, -1 unknown, else the chunk index
        owner[[p for p, entry in enumerate(self._index) if entry is None]] = -1
        for index, positions in stored.items():
            held = np.array(positions, np.int64)
            held = held[(held >= 0) & (held < count)]
            owner[held[owner[held] == -1]] = index
        damaged = []
        for first, last, chunk in _runs(owner):
            if chunk == -2:
                continue
            if chunk >= 0:
                chunks = (chunk,)
            else:
                below = max((i for i, _, end in read if end < first), default=-1)
                above = min((i for i, start, _ in read if start > last), default=math.inf)
                chunks = tuple(i for i in sorted(problems) if below <= i <= above)
            reasons = list(dict.fromkeys(problems[i] for i in chunks))
            reason = "; ".join(reasons) if reasons else "no result chunk holds them"
            damaged.append(DamagedFrames(first, last, chunks, reason))
        return damaged

    def _chunk(self, slot: int) -> dict[str, np.ndarray]:
        if slot not in self._cache:
            if len(self._cache) >= _CACHED_CHUNKS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[slot] = _load_chunk(self._chunks[slot])
        return self._cache[slot]

    def _recorded_calibration(self) -> Calibration | None:
        """The calibration of the checkpoint the session was recorded with (its manifest
        keeps the checkpoint's metadata); None when it had none or it does not read."""
        checkpoint = self.manifest.get("checkpoint")
        metadata = checkpoint.get("metadata") if isinstance(checkpoint, dict) else None
        if not isinstance(metadata, dict):
            return None
        try:
            return Calibration.from_metadata(metadata.get("calibration") or {})
        except CalibrationError as exc:
            self.warnings.append(f"the recorded calibration is not used: {exc}")
            return None

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
            fov_source=str(a["fov_source"][row]) if "fov_source" in a else "unknown",
            calibrated=self._calibrated(a, row),
            verdict=verdict_at(a, row),
        )

    def _calibrated(self, a: dict[str, np.ndarray], row: int) -> CalibratedFrame | None:
        """The frame under the recorded checkpoint's calibration, as the live view had it
        (from the stored per-pass probabilities; None without either)."""
        if self.calibration is None or "pass_probs" not in a:
            return None
        mc = bool(a["mc"][row]) if "mc" in a else bool(self.manifest.get("mc", True))
        return self.calibration.for_mode(mc).apply(a["pass_probs"][row][None])[0]
