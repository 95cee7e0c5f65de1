"""Writing panel images (raw | enhanced | risk) to a video file OpenCV can read back."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from app.private_files import make_private

__all__ = ["MAX_RATE", "VIDEO_FORMATS", "PanelVideoWriter", "count_video_frames", "playable_rate"]

VIDEO_FORMATS: tuple[tuple[str, str], ...] = (("mp4v", ".mp4"), ("MJPG", ".avi"))
"""(FourCC, suffix) tried in order; the first OpenCV can write is used."""


def count_video_frames(path: str | Path) -> int:
    """Frames that decode from a video file (0 when it does not open)."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


MAX_RATE = 600.0
"""The highest frame rate a panel video is written at."""


def playable_rate(fps: float) -> float:
    """``fps`` as a rate every writer takes: rounded to 0.01 and at most :data:`MAX_RATE`
    (25 when not a positive number). MPEG-4 refuses a time base whose denominator exceeds
    65535, which OpenCV's fraction for an arbitrary rate such as a session's measured 667.876
    frames/s does; 0.01 steps below 600 always fit."""
    fps = float(fps)
    if not (math.isfinite(fps) and fps > 0):
        return 25.0
    return max(0.01, round(min(fps, MAX_RATE), 2))


class PanelVideoWriter:
    """Writes BGR uint8 images to ``base`` + the suffix of the first format that opens.

    The size is fixed by the first image; a later image of another size (the model changed
    mid-run) is resized to it.

    Args:
        base: the file path without its suffix (``out/clip`` gives ``out/clip.mp4``).
        fps: the video's frame rate; stored as :func:`playable_rate` makes it.
        formats: (FourCC, suffix) pairs to try, in order.
    """

    def __init__(
        self, base: Path, fps: float, formats: Sequence[tuple[str, str]] = VIDEO_FORMATS
    ) -> None:
        self.base = Path(base)
        self.fps = playable_rate(fps)
        self.formats = tuple(formats)
        self.path: Path | None = None
        self.codec = ""
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._writer is None:
            self._open(w, h)
        elif (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        assert self._writer is not None
        self._writer.write(image)
        self.frames += 1

    def _open(self, w: int, h: int) -> None:
        tried = []
        for fourcc, suffix in self.formats:
            path = self.base.with_name(self.base.name + suffix)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if writer.isOpened():
                self._writer, self.path, self.codec, self._size = writer, path, fourcc, (w, h)
                if path.exists():
                    make_private(path)
                return
            writer.release()
            path.unlink(missing_ok=True)
            tried.append(fourcc)
        raise RuntimeError(f"OpenCV cannot write any video format here (tried {tried})")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if self.path is not None and self.path.exists():
                make_private(self.path)

    def __enter__(self) -> PanelVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
