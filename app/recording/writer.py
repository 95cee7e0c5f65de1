"""Record a session while frames are analysed: source frames, results, a per-frame table.

The recorder never stops the pipeline: after a write fails (typically a full disk) it stops
recording, keeps what it wrote readable, says why in :attr:`SessionRecorder.error` and answers
every later :meth:`SessionRecorder.write` with False instead of raising.

Durability: a frame's image file is written (atomically) when the frame arrives and its row is
appended to ``frames.csv`` (flushed). Results collect in memory for the current chunk and are
written as ``results/chunk_NNNNN.partial.npz`` (atomically, fsync'd, replacing the previous
partial) at least every ``flush_interval_s`` by a background thread, and as
``results/chunk_NNNNN.npz`` when the chunk holds ``chunk_frames`` frames. A kill therefore
loses at most the frames of the last ``flush_interval_s`` (plus one write's time).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import logging
import math
import os
import shutil
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from app.explain.runtimes import APPROXIMATE
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.private_files import (
    PRIVATE_DIR_MODE,
    fsync_dir,
    fsync_file,
    make_private_dirs,
    open_private,
    write_atomic,
)
from app.recording.disk_full import is_disk_full
from app.recording.layout import (
    DISPLAY_LOG_NAME,
    FRAMES_DIR,
    RESULTS_DIR,
    TABLE_NAME,
    chunk_file,
    encode_frame,
    frame_file,
)
from app.recording.manifest import (
    FORMAT,
    FORMAT_VERSION,
    RecordingError,
    describe_source,
    software_version,
    write_manifest,
)
from app.recording.verdicts import verdict_arrays
from app.render.summary import FrameSummary
from app.render.table import csv_columns, csv_row
from app.timestamps import utc_now_iso
from models.checkpoint import CheckpointError, CheckpointMetadata, checkpoint_sha256

__all__ = ["SessionRecorder"]

log = logging.getLogger(__name__)

_F16_MAX = float(np.finfo(np.float16).max)


def _to_f16(a: np.ndarray) -> np.ndarray:
    """float16 copy; finite values beyond float16's range are clipped (never inf), NaN kept."""
    return np.clip(np.asarray(a, dtype=np.float32), -_F16_MAX, _F16_MAX).astype(np.float16)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class SessionRecorder:
    """Writes a session folder incrementally (layout in :mod:`app.recording.layout`).

    Thread-safe: :meth:`write` may be called from the pipeline's consumer thread while a
    background thread flushes on a timer.

    Args:
        folder: the session folder; created, must be empty if it exists.
        settings: the pipeline settings (checkpoint path, method, passes) at the start.
        metadata: the checkpoint's metadata (None: taken from the first frame's result).
        checkpoint_sha: the SHA-256 of the model in use, taken when it was loaded
            (:attr:`app.pipeline.Pipeline.checkpoint_sha256`); None reads the checkpoint file
            now, which names the wrong model if the file was replaced since it was loaded.
        source: the frame source, or its description (see :func:`describe_source`).
        include_paths: keep absolute file paths in the manifest (default: names only).
        chunk_frames: frames per result chunk and per image folder.
        flush_interval_s: longest wall time between flushes of the partial chunk.
        store_pass_probs: also keep the per-pass (T, K) probabilities of every frame.

    Raises:
        RecordingError: the folder is not empty, the checkpoint cannot be read, or the
            manifest cannot be written.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        settings: PipelineSettings,
        metadata: CheckpointMetadata | None = None,
        checkpoint_sha: str | None = None,
        source: object = "unknown source",
        include_paths: bool = False,
        chunk_frames: int = 240,
        flush_interval_s: float = 1.0,
        store_pass_probs: bool = True,
    ) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.folder = Path(folder)
        self.chunk_frames = int(chunk_frames)
        self.flush_interval_s = float(flush_interval_s)
        self.store_pass_probs = bool(store_pass_probs)
        self.error: str | None = None
        """Why recording stopped early, for the user; None while all is well."""

        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise RecordingError(f"{self.folder} exists and is not an empty folder")
        self._made_folder = not self.folder.exists()
        try:
            sha = checkpoint_sha or checkpoint_sha256(settings.checkpoint)
        except CheckpointError as exc:
            raise RecordingError(f"cannot identify the model: {exc}") from None
        self._t0 = time.monotonic()
        checkpoint_name = (
            str(Path(settings.checkpoint).resolve())
            if include_paths
            else Path(settings.checkpoint).name
        )
        self._manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "software": {"name": "pcle-viewer", "version": software_version()},
            "started_utc": utc_now_iso(),
            "monotonic_start": self._t0,
            "source": describe_source(source, include_paths=include_paths),
            "checkpoint": {
                "file": checkpoint_name,
                "sha256": sha,
                "metadata": metadata.to_dict() if metadata is not None else None,
            },
            "method": settings.method,
            "passes": settings.passes,
            "mc": settings.mc,
            "target_class": settings.target_class,
            "seed": settings.seed,
            "backend": settings.backend,
            "backend_approximate": settings.backend in APPROXIMATE,
            "storage": {
                "frames": "lossless: PNG (8/16-bit grey or colour, as captured), .npy otherwise",
                "results": "npz per chunk; mean and CV maps float16 at target-layer size",
                "chunk_frames": self.chunk_frames,
                "flush_interval_s": self.flush_interval_s,
                "pass_probs": self.store_pass_probs,
            },
            "ended_utc": None,
            "frames": None,
            "closed_cleanly": False,
            "error": None,
        }
        try:
            make_private_dirs(self.folder)
            os.chmod(self.folder, PRIVATE_DIR_MODE)  # an empty folder given to us is ours
            self._claim()
            make_private_dirs(self.folder / FRAMES_DIR)
            write_manifest(self.folder, self._manifest)
            fsync_dir(self.folder.parent)
        except OSError as exc:
            raise RecordingError(f"cannot start recording in {self.folder}: {exc}") from None

        self._lock = threading.Lock()
        self._table: IO[str] | None = None
        self._display_log: IO[str] | None = None
        self._table_writer: csv.DictWriter[str] | None = None
        self._chunk: list[dict[str, Any]] = []
        self._chunk_index = 0
        self._chunk_signature: tuple[Any, ...] | None = None
        self._unsynced: list[Path] = []  # frame files and folders not fsync'd yet
        self._dirty = False  # frames in memory that the partial chunk does not hold
        self._last_flush = time.monotonic()
        self._written = 0
        self._displays = 0
        self._saved = 0
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="recorder-flush", daemon=True
        )
        self._flusher.start()

    # ------------------------------------------------------------------ public API

    @property
    def recording(self) -> bool:
        """True until the recorder is closed or stopped by an error."""
        return not self._closed and self.error is None

    @property
    def frames_written(self) -> int:
        """Frames accepted by :meth:`write`."""
        return self._written

    @property
    def displays_written(self) -> int:
        """Rows in ``display.csv``: recorded frames known to have reached the screen."""
        return self._displays

    @property
    def frames_saved(self) -> int:
        """Frames whose results are on disk in a chunk file (what a kill now would keep)."""
        return self._saved

    def write(self, result: FrameResult) -> bool:
        """Record one frame; False (never an exception for I/O) when not recording.

        After an OSError (disk full, quota, I/O error) recording stops, :attr:`error` says why
        and every later call returns False; what was saved stays readable.
        """
        with self._lock:
            if not self.recording:
                return False
            try:
                self._append(result)
                if len(self._chunk) >= self.chunk_frames:
                    self._finish_chunk()
                elif time.monotonic() - self._last_flush >= self.flush_interval_s:
                    self._flush()
            except OSError as exc:
                self._fail(exc)
                return False
            return True

    def record_display(self, result: FrameResult, displayed_at: float) -> bool:
        """Log when ``result`` reached the screen (``time.monotonic()``) in ``display.csv``:
        frame id, seconds since the session started, capture-to-display milliseconds. False
        (never an exception for I/O) when not recording."""
        with self._lock:
            if not self.recording:
                return False
            try:
                if self._display_log is None:
                    self._display_log = open_private(
                        self.folder / DISPLAY_LOG_NAME, "a", newline="", encoding="utf-8"
                    )
                    self._display_log.write("frame_id,display_s,capture_to_display_ms\n")
                self._display_log.write(
                    f"{result.frame_id},{displayed_at - self._t0:.4f},"
                    f"{(displayed_at - result.capture_time) * 1e3:.2f}\n"
                )
                self._display_log.flush()
                self._displays += 1
            except OSError as exc:
                self._fail(exc)
                return False
            return True

    def flush(self) -> bool:
        """Save the frames in memory now (normally done by the timer); False if not recording."""
        with self._lock:
            if not self.recording:
                return False
            try:
                self._flush()
            except OSError as exc:
                self._fail(exc)
                return False
            return True

    def close(self) -> None:
        """Save everything, mark the session closed cleanly in the manifest; idempotent.

        Never raises for I/O: a failure is left in :attr:`error`.
        """
        self._stop.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if self._closed:
                return
            clean = self.error is None
            if clean:
                try:
                    if self._chunk:
                        self._finish_chunk()
                    self._sync_table()
                except OSError as exc:
                    self._fail(exc)
                    clean = False
            self._close_table()
            self._closed = True
            self._manifest.update(
                ended_utc=utc_now_iso(),
                frames=self._saved,
                closed_cleanly=clean,
                error=self.error,
            )
            try:
                write_manifest(self.folder, self._manifest)
            except OSError as exc:
                if self.error is None:
                    self.error = f"the session's manifest could not be updated: {exc}"
                log.warning("recording %s: %s", self.folder, self.error)

    def close_or_remove(self) -> bool:
        """:meth:`close`, then remove the session when it holds no frame (a run that failed
        before its first frame must not leave a folder that blocks the corrected command).
        An empty folder the user gave is left, empty. True when the session was removed."""
        self.close()
        if self._saved or self._written:
            return False
        for entry in self.folder.iterdir():  # all ours: the folder was empty or new
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if self._made_folder:
            with contextlib.suppress(OSError):
                self.folder.rmdir()
        return True

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _claim(self) -> None:
        """Make the results folder exclusively: of two recorders started on one empty folder
        at once, only the first records into it."""
        try:
            os.mkdir(self.folder / RESULTS_DIR, PRIVATE_DIR_MODE)
        except FileExistsError:
            raise RecordingError(
                f"{self.folder} is already being recorded into by another recording"
            ) from None
        os.chmod(self.folder / RESULTS_DIR, PRIVATE_DIR_MODE)

    def _flush_loop(self) -> None:
        tick = min(0.25, self.flush_interval_s / 2)
        while not self._stop.wait(tick):
            with self._lock:
                if not self.recording or not self._dirty:
                    continue
                if time.monotonic() - self._last_flush < self.flush_interval_s:
                    continue
                try:
                    self._flush()
                except OSError as exc:
                    self._fail(exc)

    def _append(self, result: FrameResult) -> None:
        ex = result.explanation
        mean, cv = _numpy(ex.mean), _numpy(ex.cv)
        probs = _numpy(ex.mean_probs).astype(np.float32)
        pass_probs = _numpy(ex.probs).astype(np.float32) if self.store_pass_probs else None
        signature = (
            mean.shape,
            result.display.shape[:2],
            tuple(result.class_names),
            None if pass_probs is None else pass_probs.shape,
        )
        if self._chunk and signature != self._chunk_signature:
            self._finish_chunk()  # the model changed mid-session: arrays no longer stack
        if self._metadata_missing():  # a review needs it (input size, classes) even after a kill
            self._manifest["checkpoint"]["metadata"] = result.metadata.to_dict()
            write_manifest(self.folder, self._manifest)
        self._chunk_signature = signature

        position = self._written
        raw = np.asarray(result.raw)
        suffix, payload = encode_frame(raw)
        relative = frame_file(self._chunk_index, position, suffix)
        path = self.folder / relative
        if not path.parent.exists():  # never the session folder again, if it was deleted
            make_private_dirs(path.parent, parents=False)
            self._unsynced.append(path.parent.parent)
        write_atomic(path, payload, sync=False)
        self._unsynced.append(path)

        summary = result.summary(result.mean_cv_in_fov(), t0=self._t0)
        mean_cv = summary.mean_cv
        record = {
            "position": position,
            "image_file": relative,
            "frame_id": result.frame_id,
            "source_index": result.source_index,
            "capture_time": result.capture_time,
            "source_time": result.source_time,
            "result_time": result.result_time,
            "latency_ms": result.latency_ms,
            "mean": _to_f16(mean),
            "cv": _to_f16(cv),
            "probs": probs,
            "pass_probs": pass_probs,
            "class_idx": result.class_idx,
            "entropy": result.entropy,
            "mutual_information": result.mutual_information,
            "mean_cv": math.nan if mean_cv is None else mean_cv,
            "fov": (result.fov.cx, result.fov.cy, result.fov.radius),
            "fov_found": result.fov.found,
            "fov_source": result.fov.source,
            "method": ex.method,
            "passes": int(ex.passes),
            "mc": bool(ex.mc),
            "class_names": tuple(result.class_names),
            "input_size": tuple(result.display.shape[:2]),
            "timings_ms": dict(result.timings_ms),
            "verdict": result.verdict,
        }
        self._write_row(summary)
        self._chunk.append(record)
        self._written += 1
        self._dirty = True

    def _metadata_missing(self) -> bool:
        return self._manifest["checkpoint"]["metadata"] is None

    def _write_row(self, summary: FrameSummary) -> None:
        """Append the frame's row to ``frames.csv``: the columns of
        :func:`app.render.table.csv_columns`, then ``method`` and ``passes``."""
        if self._table is None:
            columns = [*csv_columns(summary), "method", "passes"]
            self._table = open_private(self.folder / TABLE_NAME, "a", newline="", encoding="utf-8")
            self._table_writer = csv.DictWriter(
                self._table, columns, restval="", extrasaction="ignore"
            )
            self._table_writer.writeheader()
        assert self._table_writer is not None
        row = csv_row(summary)
        row.update(method=summary.method, passes=summary.passes)
        self._table_writer.writerow(row)
        self._table.flush()

    def _sync_table(self) -> None:
        for log_file in (self._table, self._display_log):
            if log_file is not None:
                log_file.flush()
                os.fsync(log_file.fileno())

    def _close_table(self) -> None:
        for log_file in (self._table, self._display_log):
            if log_file is not None:
                with contextlib.suppress(OSError):
                    log_file.close()
        self._table = self._display_log = None

    def _sync_frames(self) -> None:
        for path in self._unsynced:
            if path.is_dir():
                fsync_dir(path)
            else:
                fsync_file(path)
                fsync_dir(path.parent)
        self._unsynced.clear()

    def _chunk_arrays(self) -> dict[str, np.ndarray]:
        rows = self._chunk
        stages = sorted({k for r in rows for k in r["timings_ms"]})
        arrays = {
            "position": np.array([r["position"] for r in rows], dtype=np.int64),
            "image_file": np.array([r["image_file"] for r in rows]),
            "frame_id": np.array([r["frame_id"] for r in rows], dtype=np.int64),
            "source_index": np.array([r["source_index"] for r in rows], dtype=np.int64),
            "capture_time": np.array([r["capture_time"] for r in rows], dtype=np.float64),
            "source_time": np.array([r["source_time"] for r in rows], dtype=np.float64),
            "result_time": np.array([r["result_time"] for r in rows], dtype=np.float64),
            "latency_ms": np.array([r["latency_ms"] for r in rows], dtype=np.float32),
            "mean": np.stack([r["mean"] for r in rows]),
            "cv": np.stack([r["cv"] for r in rows]),
            "probs": np.stack([r["probs"] for r in rows]),
            "class_idx": np.array([r["class_idx"] for r in rows], dtype=np.int32),
            "entropy": np.array([r["entropy"] for r in rows], dtype=np.float32),
            "mutual_information": np.array(
                [r["mutual_information"] for r in rows], dtype=np.float32
            ),
            "mean_cv": np.array([r["mean_cv"] for r in rows], dtype=np.float32),
            "fov": np.array([r["fov"] for r in rows], dtype=np.float32),
            "fov_found": np.array([r["fov_found"] for r in rows], dtype=bool),
            "fov_source": np.array([r["fov_source"] for r in rows], dtype=str),
            "method": np.array([r["method"] for r in rows]),
            "passes": np.array([r["passes"] for r in rows], dtype=np.int32),
            "mc": np.array([r["mc"] for r in rows], dtype=bool),
            "class_names": np.array(rows[0]["class_names"]),
            "input_size": np.array(rows[0]["input_size"], dtype=np.int32),
            "timing_names": np.array(stages, dtype=str),
            "timings_ms": np.array(
                [[r["timings_ms"].get(s, math.nan) for s in stages] for r in rows],
                dtype=np.float32,
            ).reshape(len(rows), len(stages)),
        }
        if rows[0]["pass_probs"] is not None:
            arrays["pass_probs"] = np.stack([r["pass_probs"] for r in rows])
        arrays.update(verdict_arrays([r["verdict"] for r in rows]))
        return arrays

    def _save_chunk(self, *, partial: bool) -> None:
        self._sync_frames()  # frames before the results that refer to them
        arrays = self._chunk_arrays()
        target = self.folder / RESULTS_DIR / chunk_file(self._chunk_index, partial=partial)
        write_atomic(target, lambda fh: np.savez_compressed(fh, **arrays))
        self._sync_table()
        self._saved = int(arrays["position"][-1]) + 1
        self._dirty = False
        self._last_flush = time.monotonic()

    def _flush(self) -> None:
        if self._dirty and self._chunk:
            self._save_chunk(partial=True)
        else:
            self._sync_table()
            self._last_flush = time.monotonic()

    def _finish_chunk(self) -> None:
        self._save_chunk(partial=False)
        partial = self.folder / RESULTS_DIR / chunk_file(self._chunk_index, partial=True)
        if partial.exists():
            partial.unlink()
            fsync_dir(partial.parent)
        self._chunk = []
        self._chunk_signature = None
        self._chunk_index += 1

    def _fail(self, exc: OSError) -> None:
        kept = f"The {self._saved} frames saved so far in {self.folder} remain readable"
        if not self.folder.is_dir():
            why = "the session folder was deleted or moved"
            kept = f"What was saved in {self.folder} went with it"
        elif is_disk_full(exc):
            why = "the disk is full"
        elif exc.errno == errno.EROFS:
            why = "the disk became read-only"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            why = "the session folder can no longer be written (permission denied)"
        else:
            why = f"a write failed ({exc})"
        self.error = f"Recording stopped: {why}. {kept}; processing continues without recording."
        log.error("%s (%s)", self.error, exc)
        self._chunk = []
        self._dirty = False
        self._close_table()
