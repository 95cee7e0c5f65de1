"""Decoding recordings into compact frame arrays: frame sampling and an on-disk cache.

Each recording (see :mod:`models.data.index`) is decoded once into a uint8 ``(N, S, S)``
array of the frames the model sees: every frame goes through
:class:`app.preprocess.model_input.FramePreprocessor` with ``use_fov=True`` (grey, cropped to
the circular field of view, surround zeroed, resized to ``S x S``), exactly as in the viewer,
so training never sees the logo or scale bar burned into the surround. At 224 px a frame takes
49 KB instead of the 460 KB of a decoded 464x336 colour frame, and no epoch decodes video.

Sampling keeps every ``every_k``-th frame and drops a frame that is a near-duplicate of the
last kept one: the mean absolute difference of their 32x32 thumbnails (grey levels in
``[0, 1]``) below ``dedup_threshold``. Real Cellvizio videos store each 12 Hz acquisition
frame twice at 24 fps (thumbnail difference ~0.0005 within a pair, ~0.05 between pairs), and
the default threshold of 0.005 keeps one of each pair and anything that moved.

With a cache folder, the arrays are also stored there as ``.npz`` files keyed by the files'
resolved paths, sizes and modification times and by the preprocessing and sampling settings,
so a changed video or setting is decoded afresh. Cache files are written atomically; one that
cannot be written or read is only a lost optimisation (a warning), never a failed run.

A file that cannot be decoded makes its recording unusable: it is skipped and reported (see
:meth:`FrameCache.load_all`), never silently trained on. A video that yields no frame, or
fewer than 90 % of the frames its header announces (truncated or damaged: the decoder's error
concealment can then produce smeared frames), is unreadable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from app.preprocess.field_of_view import FieldOfViewTracker
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from app.private_files import atomic_write, make_private_dirs
from models.data.index import Recording, is_video

__all__ = [
    "CACHE_VERSION",
    "DecodedRecording",
    "FrameCache",
    "FrameSampling",
    "SkippedRecording",
    "UnreadableRecording",
    "decode_recording",
]

CACHE_VERSION = 1
"""Bumped whenever decoding changes what a cache file holds; part of the cache key."""
THUMBNAIL_SIDE = 32
"""Side of the thumbnails compared by the near-duplicate test."""
MIN_DECODED_FRACTION = 0.9
"""A video decoding fewer than this fraction of its announced frames counts as truncated."""


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a recording are kept.

    Attributes:
        every_k: Keep frames ``0, k, 2k, ...`` of the recording (counted over all its files).
        dedup_threshold: Drop a frame whose 32x32 thumbnail differs from the last kept frame's
            (same file) by a mean absolute grey difference below this, in ``[0, 1]`` units;
            0 keeps every sampled frame.
    """

    every_k: int = 1
    dedup_threshold: float = 0.005

    def __post_init__(self) -> None:
        if isinstance(self.every_k, bool) or not isinstance(self.every_k, int) or self.every_k < 1:
            raise ValueError(f"every_k must be an int >= 1, got {self.every_k!r}")
        if not 0.0 <= self.dedup_threshold < 1.0:
            raise ValueError(f"dedup_threshold must be in [0, 1), got {self.dedup_threshold}")


@dataclass(frozen=True, eq=False)
class DecodedRecording:
    """The kept frames of one recording.

    Attributes:
        recording: Where the frames come from.
        frames: uint8 ``(N, S, S)``, ``N >= 1``: preprocessed grey frames, 0 outside the FOV.
        source_index: int64 ``(N,)``: index of each kept frame among all frames of the
            recording (counted over its files in order).
        total_frames: Number of frames the recording's files hold (kept or not).
    """

    recording: Recording
    frames: np.ndarray
    source_index: np.ndarray
    total_frames: int


@dataclass(frozen=True)
class SkippedRecording:
    """A recording left out because a file of it could not be read, and why."""

    name: str
    reason: str


class UnreadableRecording(Exception):
    """A file of a recording cannot be decoded; ``str(exc)`` names the file and says why."""


def decode_recording(
    recording: Recording, input_size: int, sampling: FrameSampling | None = None
) -> DecodedRecording:
    """Decode, preprocess and sample the frames of one recording (no caching).

    Videos are read sequentially with OpenCV (skipped frames are only grabbed, not converted)
    and preprocessed with a :class:`~app.preprocess.field_of_view.FieldOfViewTracker` per
    file, as the viewer does for a stream; images are preprocessed one by one (FOV detected on
    each).

    Args:
        recording: The recording to decode.
        input_size: Side ``S`` of the square frames produced.
        sampling: Frame sampling; default :class:`FrameSampling()`.

    Returns:
        The kept frames, at least one.

    Raises:
        UnreadableRecording: If a file cannot be opened or decoded, a video is truncated, a
            frame cannot be preprocessed (e.g. smaller than 16 px), or no frame is kept.
    """
    sampling = sampling or FrameSampling()
    config = PreprocessConfig((input_size, input_size), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    kept: list[np.ndarray] = []
    kept_index: list[int] = []
    total = 0
    for path in recording.paths:
        pre = FramePreprocessor(config, FieldOfViewTracker() if is_video(path) else None)
        source = (_VideoFrames if is_video(path) else _ImageFrame)(path, total, sampling.every_k)
        last_thumb: np.ndarray | None = None
        for offset, frame in source:
            try:
                display = pre(frame).display
            except (ValueError, cv2.error) as exc:
                raise UnreadableRecording(f"{path.name}: frame {offset}: {exc}") from None
            if sampling.dedup_threshold > 0:
                thumb = cv2.resize(
                    display, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA
                )
                if (
                    last_thumb is not None
                    and float(np.abs(thumb - last_thumb).mean()) < sampling.dedup_threshold
                ):
                    continue
                last_thumb = thumb
            kept.append(np.rint(display * 255.0).astype(np.uint8))
            kept_index.append(total + offset)
        total += source.count
    if not kept:
        raise UnreadableRecording(f"{recording.name}: no frame was kept")
    return DecodedRecording(
        recording, np.stack(kept), np.asarray(kept_index, dtype=np.int64), total
    )


class _VideoFrames:
    """Iterates ``(index_in_file, BGR frame)`` over the sampled frames of a video file.

    Frame ``n`` of the file is sampled when ``(first_index + n) % every_k == 0``. ``count`` is
    the number of frames in the file once iteration has finished. Iteration raises
    :class:`UnreadableRecording` at the end for an unreadable or truncated file.
    """

    def __init__(self, path: Path, first_index: int, every_k: int) -> None:
        self.path, self.first_index, self.every_k = path, first_index, every_k
        self.count = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise UnreadableRecording(
                    f"{self.path.name}: cannot be opened as a video (damaged, not a video, or "
                    "a codec OpenCV lacks)"
                )
            announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            n = 0
            while True:
                wanted = (self.first_index + n) % self.every_k == 0
                if wanted:
                    ok, frame = cap.read()
                    ok = ok and frame is not None
                else:
                    ok, frame = cap.grab(), None
                if not ok:
                    break
                n += 1
                self.count = n
                if frame is not None:
                    yield n - 1, frame
        finally:
            cap.release()
        if n == 0:
            raise UnreadableRecording(f"{self.path.name}: no frame could be decoded")
        if announced > 0 and n < MIN_DECODED_FRACTION * announced:
            raise UnreadableRecording(
                f"{self.path.name}: truncated or damaged: only {n} of the {announced} frames "
                "its header announces could be decoded"
            )


class _ImageFrame:
    """The one frame of an image file, as ``(0, image)``, if its index is sampled."""

    count = 1

    def __init__(self, path: Path, first_index: int, every_k: int) -> None:
        self.path, self.wanted = path, first_index % every_k == 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if not self.wanted:
            return
        # IMREAD_UNCHANGED keeps 16-bit data 16-bit; to_gray_float then scales it correctly.
        image = cv2.imread(str(self.path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise UnreadableRecording(
                f"{self.path.name}: cannot be read as an image (damaged or unknown format)"
            )
        yield 0, image


class FrameCache:
    """Decodes recordings once, optionally keeping the results in a folder between runs.

    Args:
        input_size: Side ``S`` of the square frames produced.
        sampling: Frame sampling; default :class:`FrameSampling()`.
        cache_dir: Folder for cache files (created when needed); None decodes every time.
    """

    def __init__(
        self,
        input_size: int,
        sampling: FrameSampling | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 8:
            raise ValueError(f"input_size must be an int >= 8, got {input_size!r}")
        self.input_size = input_size
        self.sampling = sampling or FrameSampling()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def cache_path(self, recording: Recording) -> Path | None:
        """The cache file of ``recording`` under the current settings (None without a folder).

        Raises:
            UnreadableRecording: If a file of the recording cannot be examined (e.g. deleted).
        """
        if self.cache_dir is None:
            return None
        files = []
        for path in recording.paths:
            try:
                stat = path.stat()
            except OSError as exc:
                raise UnreadableRecording(f"{path.name}: {exc.strerror or exc}") from None
            files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        key = {
            "version": CACHE_VERSION,
            "files": files,
            "input_size": self.input_size,
            "use_fov": True,
            "every_k": self.sampling.every_k,
            "dedup_threshold": self.sampling.dedup_threshold,
            "thumbnail": THUMBNAIL_SIDE,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.cache_dir / f"{digest[:40]}.npz"

    def load(self, recording: Recording) -> DecodedRecording:
        """The decoded frames of ``recording``: from the cache when valid, else decoded.

        Raises:
            UnreadableRecording: As :func:`decode_recording`.
        """
        path = self.cache_path(recording)
        if path is not None and path.exists():
            cached = self._read(path, recording)
            if cached is not None:
                return cached
        decoded = decode_recording(recording, self.input_size, self.sampling)
        if path is not None:
            self._write(path, decoded)
        return decoded

    def load_all(
        self, recordings: Sequence[Recording], workers: int = 0, progress: bool = False
    ) -> tuple[list[DecodedRecording], list[SkippedRecording]]:
        """Load many recordings, skipping (and reporting) the unreadable ones.

        Args:
            recordings: The recordings to load.
            workers: Threads decoding in parallel (OpenCV releases the GIL while decoding);
                0 or 1 decodes in the calling thread.
            progress: Show a tqdm progress bar.

        Returns:
            ``(decoded, skipped)``: the readable recordings in input order, and the skipped
            ones with the reason.
        """

        def attempt(rec: Recording) -> DecodedRecording | SkippedRecording:
            try:
                return self.load(rec)
            except UnreadableRecording as exc:
                return SkippedRecording(rec.name, str(exc))

        bar = tqdm(
            total=len(recordings), desc="decoding", unit="rec", disable=not progress, leave=False
        )
        results: list[DecodedRecording | SkippedRecording] = []
        with bar, contextlib.ExitStack() as stack:
            if workers > 1:
                pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
                pending = [pool.submit(attempt, rec) for rec in recordings]
                outcomes = (future.result() for future in pending)
            else:
                outcomes = (attempt(rec) for rec in recordings)
            for outcome in outcomes:
                results.append(outcome)
                bar.update()
        decoded = [r for r in results if isinstance(r, DecodedRecording)]
        skipped = [r for r in results if isinstance(r, SkippedRecording)]
        return decoded, skipped

    def _read(self, path: Path, recording: Recording) -> DecodedRecording | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                frames, index = data["frames"], data["source_index"]
                total = int(data["total_frames"])
        except Exception as exc:  # any damage to a cache file only costs a re-decode
            warnings.warn(f"ignoring damaged frame cache {path}: {exc}", stacklevel=3)
            return None
        s = self.input_size
        if (
            frames.dtype != np.uint8
            or frames.ndim != 3
            or frames.shape[1:] != (s, s)
            or len(frames) == 0
            or index.shape != (len(frames),)
        ):
            warnings.warn(f"ignoring frame cache {path}: unexpected contents", stacklevel=3)
            return None
        return DecodedRecording(recording, frames, index.astype(np.int64), total)

    def _write(self, path: Path, decoded: DecodedRecording) -> None:
        try:
            make_private_dirs(path.parent)  # decoded patient frames: owner-only
            with atomic_write(path) as fh:
                np.savez(
                    fh,
                    frames=decoded.frames,
                    source_index=decoded.source_index,
                    total_frames=np.int64(decoded.total_frames),
                )
        except OSError as exc:
            warnings.warn(f"could not write frame cache {path}: {exc}", stacklevel=3)
