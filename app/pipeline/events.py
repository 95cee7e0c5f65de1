"""What the pipeline tells its consumer besides results: errors, lost devices, settings applied.

The pipeline's threads never raise into the consumer; they post :class:`PipelineEvent` objects
to an :class:`EventLog`, which the consumer drains (a GUI on its timer, headless at the end).
The log is bounded: when nobody drains it, the oldest events go and are counted.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["EventKind", "EventLog", "PipelineEvent"]


class EventKind(str, enum.Enum):
    """What happened."""

    SETTINGS_APPLIED = "settings_applied"
    """New settings are in use from the next result on (``version`` says which)."""
    SETTINGS_FAILED = "settings_failed"
    """New settings could not be applied (e.g. a bad checkpoint); the previous ones stay."""
    FRAME_FAILED = "frame_failed"
    """One frame could not be read or analysed; the pipeline goes on with the next."""
    SOURCE_ENDED = "source_ended"
    """The file or folder has no more frames (and playback does not loop)."""
    SOURCE_DAMAGED = "source_damaged"
    """A file ended before its declared end (truncated or damaged); the frames before it were
    delivered. Posted once per source, before ``SOURCE_ENDED`` or the loop's restart."""
    DEVICE_LOST = "device_lost"
    """The capture device stopped delivering; the pipeline keeps trying to reopen it."""
    DEVICE_BACK = "device_back"
    """A lost device delivers again."""
    SEEK_FAILED = "seek_failed"
    """A seek or step could not be done (e.g. a live device, or past the end)."""


@dataclass(frozen=True)
class PipelineEvent:
    """One event.

    Attributes:
        kind: what happened.
        message: a sentence for the user.
        time: ``time.monotonic()`` when it happened.
        version: the settings version concerned (settings events), else None.
        frame_id: the frame concerned (frame events), else None.
    """

    kind: EventKind
    message: str
    time: float
    version: int | None = None
    frame_id: int | None = None

    @property
    def is_error(self) -> bool:
        return self.kind in (
            EventKind.SETTINGS_FAILED,
            EventKind.FRAME_FAILED,
            EventKind.DEVICE_LOST,
            EventKind.SEEK_FAILED,
        )


class EventLog:
    """A thread-safe, bounded log of events.

    Args:
        capacity: the most events kept before the oldest are discarded (and counted in
            :attr:`discarded`).
    """

    def __init__(self, capacity: int = 256) -> None:
        self._lock = threading.Lock()
        self._events: deque[PipelineEvent] = deque(maxlen=capacity)
        self._last_error: PipelineEvent | None = None
        self.discarded = 0

    def post(
        self,
        kind: EventKind,
        message: str,
        *,
        version: int | None = None,
        frame_id: int | None = None,
    ) -> PipelineEvent:
        event = PipelineEvent(kind, message, time.monotonic(), version, frame_id)
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.discarded += 1
            self._events.append(event)
            if event.is_error:
                self._last_error = event
        return event

    def drain(self) -> list[PipelineEvent]:
        """Every event since the last drain, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    @property
    def last_error(self) -> PipelineEvent | None:
        """The most recent error event (kept after draining)."""
        with self._lock:
            return self._last_error
