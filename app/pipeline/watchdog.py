"""The stall watchdog: has the source gone quiet for longer than its rhythm allows?

The capture thread tells the watchdog when it starts waiting for the source
(:meth:`StallWatchdog.waiting`), when a frame arrives (:meth:`StallWatchdog.frame_arrived`),
and when the source ended or was lost. The watchdog clock only runs while the capture thread
waits for the source: time spent waiting for a slow worker (analysis mode), paused, or
pacing a file is not the source's fault and never counts as a stall.

A stall is declared when no frame came for ``max(min_s, intervals * frame interval)`` seconds
(1 s, or 5 frame intervals for a slow source), with the reason "stalled"; the end of a file
and a lost device are declared at once, with their own reasons. Any arriving frame clears it.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass

__all__ = ["StallReason", "StallWatchdog", "WatchdogStatus"]


class StallReason(str, enum.Enum):
    """Why no frames come."""

    END_OF_SOURCE = "end of file"
    DEVICE_LOST = "device lost"
    STALLED = "stalled"


@dataclass(frozen=True)
class WatchdogStatus:
    """What the watchdog says at one moment.

    Attributes:
        stalled: True when frames should be arriving and are not (or the source ended / was
            lost); the GUI should then mark the maps as stale.
        reason: why, when stalled; None otherwise.
        since_last_frame_s: seconds since the last frame arrived (None before the first).
        threshold_s: how long the source may be silent before "stalled" is declared.
        paused: playback is paused (never a stall).
        message: a sentence for the user ("" when all is well).
    """

    stalled: bool
    reason: StallReason | None
    since_last_frame_s: float | None
    threshold_s: float
    paused: bool
    message: str


class StallWatchdog:
    """Thread-safe stall detection fed by the capture thread (see the module documentation).

    Args:
        frame_interval_s: the source's nominal seconds per frame (1 / fps, divided by the
            playback speed for a paced file); update it with :meth:`set_frame_interval`.
        min_s: the shortest silence declared a stall.
        intervals: the silence, in frame intervals, declared a stall for a slow source.
    """

    def __init__(self, frame_interval_s: float, min_s: float = 1.0, intervals: float = 5.0):
        self._lock = threading.Lock()
        self.min_s = float(min_s)
        self.intervals = float(intervals)
        self._interval = float(frame_interval_s)
        self._last_frame: float | None = None
        self._waiting_since: float | None = None
        self._paused = False
        self._reason: StallReason | None = None

    @property
    def threshold_s(self) -> float:
        return max(self.min_s, self.intervals * self._interval)

    def set_frame_interval(self, seconds: float) -> None:
        with self._lock:
            self._interval = float(seconds)

    # -- fed by the capture thread

    def waiting(self, t: float | None = None) -> None:
        """The capture thread starts waiting for the source now (the clock starts)."""
        with self._lock:
            self._waiting_since = time.monotonic() if t is None else t

    def idle(self) -> None:
        """The capture thread stopped waiting for the source (waiting for the consumer, pacing,
        handling a command): the clock stops."""
        with self._lock:
            self._waiting_since = None

    def frame_arrived(self, t: float | None = None) -> None:
        """A frame came: any stall is over."""
        t = time.monotonic() if t is None else t
        with self._lock:
            self._last_frame = t
            self._waiting_since = None
            self._reason = None

    def ended(self) -> None:
        """The source reached its end (and does not loop)."""
        with self._lock:
            self._reason = StallReason.END_OF_SOURCE
            self._waiting_since = None

    def lost(self) -> None:
        """The source (a device) stopped delivering."""
        with self._lock:
            self._reason = StallReason.DEVICE_LOST

    def resumed(self) -> None:
        """The source delivers again after a seek, a reopen or a loop: forget end and loss."""
        with self._lock:
            self._reason = None

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = bool(paused)
            if paused:
                self._waiting_since = None

    # -- read by anyone

    def status(self, now: float | None = None) -> WatchdogStatus:
        now = time.monotonic() if now is None else now
        with self._lock:
            threshold = max(self.min_s, self.intervals * self._interval)
            since = None if self._last_frame is None else now - self._last_frame
            reason = self._reason
            silent = 0.0 if self._waiting_since is None else now - self._waiting_since
            if reason is None and not self._paused and silent > threshold:
                reason = StallReason.STALLED
            if reason is None:
                return WatchdogStatus(False, None, since, threshold, self._paused, "")
            if reason is StallReason.STALLED:
                message = f"no frame from the source for {silent:.1f} s"
            elif reason is StallReason.END_OF_SOURCE:
                message = "end of the recording"
            else:
                message = "the capture device stopped delivering frames; trying to reconnect"
            return WatchdogStatus(True, reason, since, threshold, self._paused, message)
