"""Recording off the caller's thread: results are handed over at once and written by a thread.

The pipeline's inference worker hands every analysed frame to :meth:`BackgroundRecorder.submit`
(a queue put, microseconds), so disk writes never delay an explanation or the GUI. When the
disk cannot keep up, at most ``max_pending`` results wait; further ones are dropped and
counted (:attr:`BackgroundRecorder.dropped`) rather than growing memory without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from app.pipeline.results import FrameResult
from app.recording.writer import SessionRecorder

__all__ = ["BackgroundRecorder"]

log = logging.getLogger(__name__)

_STOP = object()


class BackgroundRecorder:
    """Feeds a :class:`SessionRecorder` from a queue on its own thread.

    Args:
        recorder: the session recorder (owned from now on: :meth:`stop` closes it).
        max_pending: results that may wait for the disk before new ones are dropped.
    """

    def __init__(self, recorder: SessionRecorder, *, max_pending: int = 64) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.recorder = recorder
        self.started_at = time.monotonic()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._dropped = 0
        self._submitted: set[int] = set()  # frame ids queued for recording
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    @property
    def folder(self) -> Path:
        return self.recorder.folder

    @property
    def recording(self) -> bool:
        """True until stopped or stopped by a write error (see :attr:`error`)."""
        return not self._stopped and self.recorder.recording

    @property
    def error(self) -> str | None:
        """Why recording stopped early (a full disk, ...), for the user."""
        return self.recorder.error

    @property
    def frames_written(self) -> int:
        """Frames recorded so far."""
        return self.recorder.frames_written

    @property
    def displays_written(self) -> int:
        """Recorded frames logged as shown on screen so far."""
        return self.recorder.displays_written

    @property
    def dropped(self) -> int:
        """Results not recorded because the disk fell behind."""
        return self._dropped

    @property
    def elapsed_s(self) -> float:
        """Seconds since recording started."""
        return time.monotonic() - self.started_at

    def submit(self, result: FrameResult) -> bool:
        """Queue ``result`` for recording; never blocks, never raises.

        Returns:
            False when not recording or when the queue is full (the result is dropped).
        """
        if not self.recording:
            return False
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            with self._lock:
                self._dropped += 1
            return False
        self._submitted.add(result.frame_id)
        return True

    def record_display(self, result: FrameResult, displayed_at: float) -> bool:
        """Queue the moment ``result`` reached the screen (see
        :meth:`SessionRecorder.record_display`); never blocks, never raises. Only frames
        submitted for recording are logged (not one analysed before recording started)."""
        if not self.recording or result.frame_id not in self._submitted:
            return False
        try:
            self._queue.put_nowait((result, displayed_at))
        except queue.Full:
            return False
        return True

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Write what is queued, close the session (idempotent).

        Returns:
            True when the writer thread finished within ``timeout`` seconds.
        """
        with self._lock:
            first = not self._stopped
            self._stopped = True
        while first and self._thread.is_alive():  # a full queue drains, unless the thread died
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, tuple):
                    self.recorder.record_display(*item)
                else:
                    assert isinstance(item, FrameResult)
                    self.recorder.write(item)  # False after an error: later items are discarded
        except Exception:  # a bug must not leave a session unclosed
            log.exception("recording %s failed", self.recorder.folder)
        finally:
            self.recorder.close()
