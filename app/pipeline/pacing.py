"""When a file played in live mode reads its next frame: at its frame rate times the speed.

A probe delivers frames at its own rate; a file would be read as fast as the disk allows. The
capture thread asks a :class:`FramePacer` before each read of a file in live mode. Reads are
scheduled one frame interval (divided by the speed) apart on the pacer's clock. A reader that
falls a whole interval behind (a slow read, a pause) is not allowed to burst to catch up: the
schedule starts again from now. A seek, a step or a reconnect restarts the schedule, so the
frame shown next is read at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["FramePacer"]


class FramePacer:
    """The playback clock of one paced source (see the module documentation).

    Not thread-safe: it belongs to the thread that reads the source.

    Args:
        clock: seconds on a monotonic clock (tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: float | None = None  # when the next read is due; None: at once

    @property
    def due(self) -> float | None:
        """When the next read is due on the pacer's clock (None: at once)."""
        return self._due

    def restart(self) -> None:
        """Forget the schedule: the next read is due at once."""
        self._due = None

    def wait_s(self, frame_interval_s: float, speed: float) -> float:
        """Seconds to wait before the next read; 0.0 when it is due now.

        A read that is due is counted as made: the one after it is scheduled
        ``frame_interval_s / speed`` later, or that long from now when the reader is a whole
        interval late. Before then it keeps answering how long is left.
        """
        now = self._clock()
        if self._due is None:
            self._due = now
        if now < self._due:
            return self._due - now
        interval = frame_interval_s / speed
        self._due = self._due + interval if now - self._due < interval else now + interval
        return 0.0
