"""Frame sources: video files, Cellvizio ``.mkt`` files, capture devices, image folders and
in-memory frames.

Every source hands out :class:`SourceFrame` objects through :meth:`FrameSource.read`: the image
as decoded (any layout :func:`app.preprocess.field_of_view.to_gray_float` accepts: grey or
colour, 8 or 16 bit), a frame id that only ever increases (also across seeks and loops), the
frame's index in the source, the capture time (``time.monotonic()`` when the frame became
available) and the source's own clock (index / fps for files and folders, time since opening
for devices).

``read()`` never raises for the ordinary ways a stream ends: it returns None and
:attr:`FrameSource.state` says why (:attr:`SourceState.END` for the end of a file or folder,
:attr:`SourceState.LOST` for a device that stopped delivering; :meth:`FrameSource.reopen`
tries to get it back). It raises :class:`SourceError` for one unusable frame (an image in a
folder that does not decode), after which the next ``read()`` goes on with the next frame.
Opening a source raises :class:`SourceError` with a message that says what is wrong.

A source is driven by one thread at a time (the pipeline's capture thread); only the test hooks
of :class:`IterableSource` (``hold``/``release``/``lose``/``restore``) and :meth:`close` may be
called from another thread.
"""

from __future__ import annotations

import enum
import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from app.pipeline.mkt import MKT_SUFFIX, MktError, MktReader

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CaptureDeviceSource",
    "FrameSource",
    "ImageFolderSource",
    "IterableSource",
    "MktFileSource",
    "SourceError",
    "SourceFrame",
    "SourceState",
    "VideoFileSource",
    "open_recording",
    "open_source",
]

DEFAULT_FPS = 25.0
"""Frame rate assumed when a container or device reports none (0 or NaN)."""
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mpg", ".mpeg", ".mkv", ".mov", ".m4v", ".wmv"})
IMAGE_SUFFIXES = frozenset(
    {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm", ".webp"}
)

# Seek targets this close ahead of the current position, or this close to the start, are reached
# by decoding forward (about 0.15 ms a frame on the Cellvizio MPEG-1 files) rather than by
# OpenCV's seek, which lands a few frames off inside the first GOPs of those files.
_DECODE_FORWARD_FRAMES = 64
# Time stamps jitter by a frame around GOP boundaries (OpenCV's own MPEG-1 files go 11, 13, 14,
# 15, 15, 16), so only a jump past at least this many frames counts as frames lost; a single
# lost frame goes unnoticed and the numbering after it is one behind the time stamps.
_GAP_MIN_FRAMES = 2


class SourceError(Exception):
    """A source cannot be opened, read or positioned; the message names it and says why."""


class SourceState(str, enum.Enum):
    """Why a source does (or does not) deliver frames."""

    OK = "ok"
    """Delivering (a None from ``read()`` in this state means: no frame yet, try again)."""
    END = "end"
    """The last frame of a file or folder was read; ``seek()`` or ``reopen()`` resumes."""
    LOST = "lost"
    """A device stopped delivering frames; ``reopen()`` tries to get it back."""
    CLOSED = "closed"
    """:meth:`FrameSource.close` was called."""


@dataclass(frozen=True, eq=False)
class SourceFrame:
    """One frame as read from a source.

    Attributes:
        frame_id: increases by one with every frame a source delivers, also across seeks and
            loops, so it identifies the frame through the whole pipeline.
        source_index: the frame's position in the source (frame number in a file, image number
            in a folder); devices count frames since opening.
        capture_time: ``time.monotonic()`` when ``read()`` had the frame.
        source_time: seconds on the source's own clock: index / fps for files and folders, time
            since opening for a device.
        image: the frame as decoded: (H, W) or (H, W, C) uint8 / uint16 / float.
        read_ms: wall time of the read (decoding included), milliseconds.
    """

    frame_id: int
    source_index: int
    capture_time: float
    source_time: float
    image: np.ndarray
    read_ms: float


class FrameSource(ABC):
    """A stream of frames (see the module documentation for the contract).

    Attributes:
        name: what to call the source in messages (file name, device, folder).
        fps: nominal frame rate (the container's, the device's, or :data:`DEFAULT_FPS`).
        frame_count: number of frames when known (files, folders, sequences), else None. For
            files this is the container's figure, which can be off by a frame or two.
        seekable: :meth:`seek` works (files, folders, sequences).
        self_paced: ``read()`` itself waits for the next frame (devices); a pipeline paces a
            source that is not self-paced at its ``fps`` in live mode.
        ended_early: once the source ended, why it ended before its declared end (a truncated
            or damaged file), for the user; None for a normal end. Damage in the middle of a
            file is reported by :meth:`take_notices` as it is read.
        field_of_view_um: (x, y) size of the imaged field in micrometres when the source knows
            it (a Cellvizio file's metadata), else None.
    """

    kind: str = "source"

    def __init__(
        self,
        name: str,
        fps: float,
        frame_count: int | None,
        *,
        seekable: bool,
        self_paced: bool,
    ) -> None:
        self.name = name
        self.fps = _valid_fps(fps)
        self.frame_count = frame_count
        self.seekable = seekable
        self.self_paced = self_paced
        self._state = SourceState.OK
        self._next_id = 0
        self.ended_early: str | None = None
        self.field_of_view_um: tuple[float, float] | None = None
        self._notices: list[str] = []

    def take_notices(self) -> list[str]:
        """What went wrong while reading since the last call (e.g. frames a damaged file lost),
        for the user; the frames themselves were still delivered. Empty for most sources."""
        notices, self._notices = self._notices, []
        return notices

    @property
    def state(self) -> SourceState:
        """The source's state after the last call (see :class:`SourceState`)."""
        return self._state

    @property
    @abstractmethod
    def position(self) -> int:
        """The source index of the frame the next ``read()`` returns."""

    @property
    def frame_interval_s(self) -> float:
        """Nominal seconds between frames, ``1 / fps``."""
        return 1.0 / self.fps

    def read(self) -> SourceFrame | None:
        """The next frame, or None (then :attr:`state` says whether the source ended, was lost,
        or simply has no frame yet).

        Raises:
            SourceError: this one frame is unusable (e.g. an image that does not decode); the
                next call continues with the next frame.
        """
        if self._state is SourceState.CLOSED:
            return None
        start = time.perf_counter()
        read = self._read()
        if read is None:
            return None
        image, index, source_time = read
        capture_time = time.monotonic()
        frame_id = self._next_id
        self._next_id += 1
        return SourceFrame(
            frame_id=frame_id,
            source_index=index,
            capture_time=capture_time,
            source_time=source_time,
            image=image,
            read_ms=(time.perf_counter() - start) * 1e3,
        )

    @abstractmethod
    def _read(self) -> tuple[np.ndarray, int, float] | None:
        """(image, source index, source time), or None with :attr:`_state` set."""

    def seek(self, index: int) -> None:
        """Make ``index`` the next frame ``read()`` returns.

        Raises:
            SourceError: the source is not seekable, or ``index`` is outside it.
        """
        if not self.seekable:
            raise SourceError(f"{self.name}: a live {self.kind} cannot seek")
        if self._state is SourceState.CLOSED:
            raise SourceError(f"{self.name}: the source is closed")
        index = int(index)
        last = self._last_seekable()
        if index < 0 or (last is not None and index > last):
            within = "" if last is None else f" (0 to {last})"
            raise SourceError(f"{self.name}: frame {index} is outside the source{within}")
        self._seek(index)
        self._state = SourceState.OK
        self.ended_early = None

    def _seek(self, index: int) -> None:
        raise NotImplementedError

    def _last_seekable(self) -> int | None:
        """The highest index :meth:`seek` accepts (None: no limit known)."""
        return None if self.frame_count is None else self.frame_count - 1

    def reopen(self) -> bool:
        """Try to get a lost or ended source back; True when it delivers again."""
        if self._state is SourceState.CLOSED:
            return False
        if self.seekable and self._state is SourceState.END:
            self.seek(0)
            return True
        return self._state is SourceState.OK

    def interrupt(self) -> None:
        """Ask a ``read()`` blocked in another thread to return soon (with None).

        Called by the pipeline when it stops. Files and OpenCV devices return from a read on
        their own (a device read times out), so only sources that can block indefinitely
        (:class:`IterableSource` while held) do anything here.
        """
        return

    def close(self) -> None:
        """Release the source; ``read()`` returns None from now on. Idempotent."""
        self._state = SourceState.CLOSED

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[SourceFrame]:
        """Frames until the source ends or is lost (unusable frames are skipped)."""
        while True:
            try:
                frame = self.read()
            except SourceError:
                continue
            if frame is not None:
                yield frame
            elif self._state is not SourceState.OK:
                return

    def __repr__(self) -> str:
        count = "?" if self.frame_count is None else self.frame_count
        return (
            f"{type(self).__name__}({self.name!r}, fps={self.fps:g}, frames={count}, "
            f"state={self._state.value})"
        )


def _valid_fps(fps: float | None, fallback: float = DEFAULT_FPS) -> float:
    """``fps`` when it is a plausible frame rate, else ``fallback`` (containers report 0/NaN)."""
    try:
        value = float(fps) if fps is not None else math.nan
    except (TypeError, ValueError):
        return fallback
    return value if math.isfinite(value) and 0.0 < value <= 1000.0 else fallback


# ---------------------------------------------------------------------------------- video file


class VideoFileSource(FrameSource):
    """A recording read with ``cv2.VideoCapture`` (mp4, avi, mpg, mkv, mov, ...).

    Opening decodes the first frame to prove the file is usable (it is returned by the first
    ``read()``). ``fps`` is the container's, or ``fps_fallback`` when it reports 0 or NaN.

    Frame numbers are the decoder's own: a frame's index is its presentation time stamp times
    ``fps`` (counted from the first frame), so frames a damaged file loses leave a gap in the
    numbering instead of shifting every later frame; each gap is reported through
    :meth:`take_notices`. A time stamp that does not move forward (OpenCV reports 0 for the
    last frame of some MPEG files), or that moves by one frame too many (jitter), counts as
    the next frame.

    :meth:`seek` is frame-exact: the next ``read()`` returns the frame that reading from the
    start would have numbered ``index``. OpenCV's own seek is used only to get near a far
    target; where it landed is read from the decoder's time stamp (on the Cellvizio MPEG-1
    files a seek to 0..12 lands on frame 12 or 13) and the rest is decoded forward.

    Args:
        path: the video file.
        fps_fallback: frame rate to assume when the container has none.

    Raises:
        SourceError: missing file, a folder, a file OpenCV cannot open, or one that opens but
            whose first frame does not decode.
    """

    kind = "video file"

    def __init__(self, path: str | Path, *, fps_fallback: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"no such file: {self.path}")
        if self.path.is_dir():
            raise SourceError(f"{self.path} is a folder, not a video file")
        capture = self._open()
        fps = _valid_fps(capture.get(cv2.CAP_PROP_FPS), _valid_fps(fps_fallback))
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        frame_count = int(count) if math.isfinite(count) and count >= 1 else None
        super().__init__(self.path.name, fps, frame_count, seekable=True, self_paced=False)
        self._capture = capture
        self._last = -1  # index of the frame the capture holds (grabbed last); -1 before any
        self._waiting = False  # that frame is grabbed but not yet returned by read()
        self._origin_ms = 0.0
        self.gaps: list[tuple[int, int]] = []
        """(first, last) index of every run of frames the decoder skipped, in reading order."""
        self._first_frame()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"cannot open {self.path} as a video: not a video OpenCV can read, or corrupt"
            )
        return capture

    def _first_frame(self) -> None:
        if not self._capture.grab():
            self._capture.release()
            raise SourceError(
                f"{self.path} opens as a video but no frame decodes (corrupt or empty file)"
            )
        stamp = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        self._origin_ms = stamp if math.isfinite(stamp) else 0.0
        self._last, self._waiting = 0, True

    @property
    def position(self) -> int:
        return self._last if self._waiting else self._last + 1

    def _read(self) -> tuple[np.ndarray, int, float] | None:
        if not self._waiting and not self._grab_next():
            self._state = SourceState.END
            self.ended_early = self._short_by()
            return None
        self._waiting = False
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            raise SourceError(f"{self.name}: frame {self._last} does not decode")
        return image, self._last, self._last / self.fps

    def _stamp_index(self) -> int | None:
        """The grabbed frame's index from its time stamp, or None when there is none."""
        stamp = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        if not math.isfinite(stamp):
            return None
        return round((stamp - self._origin_ms) * self.fps / 1000.0)

    def _grab_next(self) -> bool:
        """Grab the next frame and number it; False at the end of the file."""
        if not self._capture.grab():
            return False
        stamped = self._stamp_index()
        index = self._last + 1
        if stamped is not None and stamped >= index + _GAP_MIN_FRAMES:  # frames were skipped
            gap = (index, stamped - 1)
            if gap not in self.gaps:  # once, not again on every loop over the file
                self.gaps.append(gap)
                self._notices.append(
                    f"frames {index} to {stamped - 1} ({stamped - index} frames) did not "
                    "decode: the file is damaged there; reading goes on after them"
                )
            index = stamped
        self._last = index
        return True

    def _short_by(self) -> str | None:
        """Why the file ended now, when that is before the frame count its container declares.

        A truncated file reads like a short file. Containers' counts can be an estimate (MPEG)
        and off by one, so one missing frame is not called damage.
        """
        declared, read = self.frame_count, self._last + 1
        if declared is None or read >= declared - 1:
            return None
        return (
            f"the video ended after {read} of the {declared} frames it declares: the file is "
            f"truncated or damaged (frames 0 to {read - 1} were read)"
        )

    def _seek(self, index: int) -> None:
        position = self.position
        if index == position:
            return
        if not position < index <= position + _DECODE_FORWARD_FRAMES and not (
            index >= _DECODE_FORWARD_FRAMES and self._land_near(index)
        ):
            self._rewind()
        while not (self._waiting and self._last >= index):
            if not self._grab_next():
                self._waiting = False
                raise SourceError(
                    f"{self.name}: the video ends before frame {index} (its last frame is "
                    f"{self._last})"
                )
            self._waiting = True

    def _last_seekable(self) -> int | None:
        # MPEG containers declare one frame fewer than they hold; a seek past the real end
        # fails when decoding gets there.
        return None if self.frame_count is None else self.frame_count

    def _land_near(self, index: int) -> bool:
        """OpenCV's seek towards ``index``; True when the decoder's time stamp says it landed
        on ``index`` or at most :data:`_DECODE_FORWARD_FRAMES` before it."""
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, float(index))
        if not self._capture.grab():
            return False
        landed = self._stamp_index()
        if landed is None or not index - _DECODE_FORWARD_FRAMES <= landed <= index:
            return False
        self._last, self._waiting = landed, True
        return True

    def _rewind(self) -> None:
        """Open the file again, before its first frame."""
        self._capture.release()
        self._capture = self._open()
        self._last, self._waiting = -1, False

    def close(self) -> None:
        if self._state is not SourceState.CLOSED:
            self._capture.release()
        super().close()


# ------------------------------------------------------------------------ Cellvizio .mkt file


class MktFileSource(FrameSource):
    """A Cellvizio ``.mkt`` recording, read without a decoder (:mod:`app.pipeline.mkt`).

    Frames come as (H, W) uint16, the file's 12- to 15-bit content shifted to fill 16 bits.
    ``fps`` is the metadata's ``framerate``, else ``fps_fallback``; :attr:`field_of_view_um`
    and :attr:`metadata` give the rest of the metadata. Seeking is exact (the file is indexed
    on opening). What indexing repaired (damage skipped over, a frame size taken from the
    frames) comes through :meth:`take_notices`; a file that ends inside a frame ends early,
    with :attr:`ended_early` saying so.

    Args:
        path: the ``.mkt`` file.
        fps_fallback: frame rate to assume when the metadata gives none.

    Raises:
        SourceError: a missing, unreadable or empty file, not a ``.mkt`` file, or one without
            a complete frame.
    """

    kind = "Cellvizio file"

    def __init__(self, path: str | Path, *, fps_fallback: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        try:
            self._reader = MktReader(self.path)
        except MktError as exc:
            raise SourceError(str(exc)) from exc
        index = self._reader.index
        super().__init__(
            self.path.name,
            index.fps or fps_fallback,
            len(index.frames),
            seekable=True,
            self_paced=False,
        )
        self.metadata = index.metadata
        self.field_of_view_um = index.field_of_view_um
        self.bit_depth = self._reader.bit_depth
        self._notices.extend(index.notices)
        self._next = 0

    @property
    def position(self) -> int:
        return self._next

    def _read(self) -> tuple[np.ndarray, int, float] | None:
        index = self._next
        if index >= len(self._reader):
            self._state = SourceState.END
            if self._reader.index.truncated:
                self.ended_early = (
                    f"the file ends inside frame {index}: it is truncated (frames 0 to "
                    f"{index - 1} were read)"
                )
            return None
        self._next += 1
        try:
            image = self._reader.frame(index)
        except MktError as exc:
            raise SourceError(str(exc)) from exc
        return image, index, index / self.fps

    def _seek(self, index: int) -> None:
        self._next = index

    def close(self) -> None:
        self._reader.close()
        super().close()


# ---------------------------------------------------------------------------- capture device


class CaptureDeviceSource(FrameSource):
    """A live capture device (a frame grabber or camera) read with ``cv2.VideoCapture``.

    ``read()`` blocks until the device has a frame. A failed read returns None with the state
    still OK; after ``lost_after`` failures in a row the state becomes LOST, and
    :meth:`reopen` releases the device and opens it again.

    Args:
        device: a device index (0, 1, ...) or a device path such as ``/dev/video0``.
        fps_fallback: frame rate to assume when the device reports none.
        lost_after: consecutive failed reads that mean the device is gone.
        api: an OpenCV capture API preference (``cv2.CAP_ANY`` by default).

    Raises:
        SourceError: the device path does not exist, or no device can be opened there (no
            such device, busy, or not permitted).
    """

    kind = "capture device"

    def __init__(
        self,
        device: int | str,
        *,
        fps_fallback: float = DEFAULT_FPS,
        lost_after: int = 5,
        api: int = cv2.CAP_ANY,
    ) -> None:
        if isinstance(device, str) and not Path(device).exists():
            raise SourceError(f"no capture device at {device}: the path does not exist")
        self.device = device
        self.api = api
        self.lost_after = max(1, int(lost_after))
        label = f"device {device}" if isinstance(device, int) else str(device)
        capture = self._open(label)
        fps = _valid_fps(capture.get(cv2.CAP_PROP_FPS), _valid_fps(fps_fallback))
        super().__init__(label, fps, None, seekable=False, self_paced=True)
        self._capture: cv2.VideoCapture | None = capture
        self._failures = 0
        self._index = 0
        self._opened_at = time.monotonic()

    def _open(self, label: str) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.device, self.api)
        if not capture.isOpened():
            capture.release()
            what = "index" if isinstance(self.device, int) else "path"
            raise SourceError(
                f"cannot open capture {label}: no device at that {what}, or it is busy or not "
                "permitted"
            )
        return capture

    @property
    def position(self) -> int:
        return self._index

    def _read(self) -> tuple[np.ndarray, int, float] | None:
        if self._capture is None:
            self._state = SourceState.LOST
            return None
        ok, image = self._capture.read()
        if not ok or image is None:
            self._failures += 1
            if self._failures >= self.lost_after:
                self._state = SourceState.LOST
            return None
        self._failures = 0
        index = self._index
        self._index += 1
        return image, index, time.monotonic() - self._opened_at

    def reopen(self) -> bool:
        if self._state is SourceState.CLOSED:
            return False
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        try:
            self._capture = self._open(self.name)
        except SourceError:
            self._state = SourceState.LOST
            return False
        self._failures = 0
        self._state = SourceState.OK
        return True

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        super().close()


# ------------------------------------------------------------------------------ image folder


def _natural_key(path: Path) -> tuple[object, ...]:
    """Sort key that puts frame_2 before frame_10."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


class ImageFolderSource(FrameSource):
    """A folder (or a list) of still images played as a video, in natural name order.

    Images are read with ``cv2.IMREAD_UNCHANGED``: grey or colour, 8 or 16 bit, as stored. An
    image that does not decode raises :class:`SourceError` from ``read()`` for that frame only.

    Args:
        images: a folder (every file with a suffix in :data:`IMAGE_SUFFIXES`) or a list of
            image files (kept in the given order).
        fps: the rate to play them at (images carry no timing).

    Raises:
        SourceError: missing folder or file, or a folder holding no images.
    """

    kind = "image folder"

    def __init__(self, images: str | Path | Sequence[str | Path], *, fps: float = DEFAULT_FPS):
        if isinstance(images, (str, Path)):
            folder = Path(images)
            if not folder.exists():
                raise SourceError(f"no such folder: {folder}")
            if not folder.is_dir():
                raise SourceError(f"{folder} is not a folder")
            paths = sorted(
                (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if not paths:
                raise SourceError(
                    f"{folder} holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            name = folder.name or str(folder)
        else:
            paths = [Path(p) for p in images]
            if not paths:
                raise SourceError("the list of images is empty")
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise SourceError(f"no such image file: {missing[0]}")
            name = paths[0].name if len(paths) == 1 else f"{len(paths)} images"
        super().__init__(name, fps, len(paths), seekable=True, self_paced=False)
        self.paths: list[Path] = paths
        self._next_index = 0

    @property
    def position(self) -> int:
        return self._next_index

    def _read(self) -> tuple[np.ndarray, int, float] | None:
        if self._next_index >= len(self.paths):
            self._state = SourceState.END
            return None
        index = self._next_index
        self._next_index += 1
        path = self.paths[index]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(f"cannot decode image {path} (frame {index})")
        return image, index, index / self.fps

    def _seek(self, index: int) -> None:
        self._next_index = index


# --------------------------------------------------------------------------------- in memory


class IterableSource(FrameSource):
    """Frames from memory, with hooks that simulate a misbehaving probe (for tests and demos).

    A sequence of arrays is seekable and has a frame count; any other iterable is read once,
    in order. With ``self_paced=True``, ``read()`` waits for the frame's time like a device
    does (``1 / fps`` apart) and the source is not seekable.

    Test hooks (safe from any thread):

    - :meth:`hold` / :meth:`release`: ``read()`` blocks while held (a stalled source);
    - :meth:`lose` / :meth:`restore`: ``read()`` returns None with state LOST, and
      :meth:`reopen` fails until the source is restored (a device unplugged and plugged back);
      frames continue where they stopped.

    Args:
        frames: the images (each (H, W) or (H, W, C)).
        fps: nominal frame rate.
        self_paced: behave like a live device (see above).
        name: what to call the source in messages.
    """

    kind = "frame sequence"

    def __init__(
        self,
        frames: Sequence[np.ndarray] | Iterable[np.ndarray],
        fps: float = DEFAULT_FPS,
        *,
        self_paced: bool = False,
        name: str = "memory",
    ) -> None:
        sequence = frames if isinstance(frames, Sequence) else None
        count = len(sequence) if sequence is not None else None
        if count == 0:
            raise SourceError(f"{name}: no frames")
        super().__init__(
            name,
            fps,
            count,
            seekable=sequence is not None and not self_paced,
            self_paced=self_paced,
        )
        self._sequence = sequence
        self._iterator = None if sequence is not None else iter(frames)
        self._next_index = 0
        self._cond = threading.Condition()
        self._held = False
        self._lost = False
        self._interrupted = False
        self._due: float | None = None
        self.reads = 0
        """Frames delivered so far (for tests)."""

    @property
    def position(self) -> int:
        return self._next_index

    # -- hooks

    def hold(self) -> None:
        """Make ``read()`` block (a stalled source) until :meth:`release`."""
        with self._cond:
            self._held = True

    def release(self) -> None:
        """Let a held source deliver again."""
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def lose(self) -> None:
        """Simulate a device that disappears: reads fail and the state becomes LOST."""
        with self._cond:
            self._lost = True
            self._cond.notify_all()

    def restore(self) -> None:
        """Let :meth:`reopen` succeed again (the device is back)."""
        with self._cond:
            self._lost = False
            self._cond.notify_all()

    # -- source

    def _read(self) -> tuple[np.ndarray, int, float] | None:
        with self._cond:
            while self._held and not self._lost and not self._interrupted:
                if self._state is SourceState.CLOSED:
                    return None
                self._cond.wait(0.05)
            if self._interrupted or self._state is SourceState.CLOSED:
                self._interrupted = False
                return None
            if self._lost:
                self._state = SourceState.LOST
                return None
        if self.self_paced:
            now = time.monotonic()
            self._due = now if self._due is None else max(self._due + self.frame_interval_s, now)
            if self._due > now:
                time.sleep(self._due - now)
        index = self._next_index
        if self._sequence is not None:
            if index >= len(self._sequence):
                self._state = SourceState.END
                return None
            image = self._sequence[index]
        else:
            assert self._iterator is not None
            try:
                image = next(self._iterator)
            except StopIteration:
                self._state = SourceState.END
                return None
        self._next_index += 1
        self.reads += 1
        return np.asarray(image), index, index / self.fps

    def _seek(self, index: int) -> None:
        self._next_index = index

    def reopen(self) -> bool:
        with self._cond:
            if self._state is SourceState.CLOSED or self._lost:
                return False
            if self._state is SourceState.LOST:
                self._state = SourceState.OK
                return True
        return super().reopen()

    def interrupt(self) -> None:
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._state = SourceState.CLOSED
            self._cond.notify_all()


# ---------------------------------------------------------------------------------- factory


def _device_index(spec: str | int) -> int | None:
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    text = spec.strip()
    return int(text) if text.isdigit() else None


def open_source(
    spec: str | int | Path | Sequence[str | Path], *, fps: float | None = None
) -> FrameSource:
    """Open what the user typed: ``VIDEO | DEVICE_INDEX | /dev/videoN | FOLDER`` (or a list of
    image files, or a single image).

    Args:
        spec: a video file, a device index (an int or a string of digits), a device path under
            ``/dev/``, a folder of images, one image file, or a list of image files.
        fps: the rate for image folders and lists (default :data:`DEFAULT_FPS`); the fallback
            rate for files and devices whose container or driver reports none.

    Raises:
        SourceError: what cannot be opened, and why.
    """
    rate = DEFAULT_FPS if fps is None else fps
    if isinstance(spec, (list, tuple)):
        return ImageFolderSource(spec, fps=rate)
    if isinstance(spec, int) and not isinstance(spec, bool):
        return CaptureDeviceSource(spec, fps_fallback=rate)
    if not isinstance(spec, (str, Path)):
        raise SourceError(f"cannot open a source from {type(spec).__name__} {spec!r}")
    if isinstance(spec, str):
        if not spec.strip():
            raise SourceError("no source given")
        index = _device_index(spec)
        if index is not None and not Path(spec).exists():
            return CaptureDeviceSource(index, fps_fallback=rate)
    path = Path(spec)
    if str(path).startswith("/dev/"):
        return CaptureDeviceSource(str(path), fps_fallback=rate)
    if path.is_dir():
        return ImageFolderSource(path, fps=rate)
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource([path], fps=rate)
    return open_recording(path, fps_fallback=rate)


def open_recording(path: str | Path, *, fps_fallback: float = DEFAULT_FPS) -> FrameSource:
    """A recording file: :class:`MktFileSource` for a Cellvizio ``.mkt`` file, else
    :class:`VideoFileSource`.

    Raises:
        SourceError: what cannot be opened, and why.
    """
    if Path(path).suffix.lower() == MKT_SUFFIX:
        return MktFileSource(path, fps_fallback=fps_fallback)
    return VideoFileSource(path, fps_fallback=fps_fallback)
