"""The inference worker: takes frames from the frame slot, analyses them, offers the results.

Settings changes are requested from any thread and applied by the worker between two frames,
by building a new :class:`FrameAnalyzer` (reusing the loaded model when the checkpoint did
not change). When that fails (a bad checkpoint, a checkpoint of another architecture, a
missing GPU), the failure is posted as an event and the worker goes on with the analyzer it
had. A frame that cannot be analysed is posted as an event too; the worker never dies of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from app.pipeline.analyzer import FrameAnalyzer
from app.pipeline.daemon import DaemonLoop
from app.pipeline.events import EventKind, EventLog
from app.pipeline.mode import Mode
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings, SettingsError
from app.pipeline.slots import Slot
from app.pipeline.sources import SourceFrame
from app.pipeline.stats import PipelineStats

__all__ = ["InferenceWorker"]

log = logging.getLogger(__name__)

_TAKE_TIMEOUT_S = 0.05  # the worker checks for stop and new settings at least this often


class InferenceWorker(DaemonLoop):
    """Analyses frames from ``frames`` into ``results`` on its own thread.

    Args:
        analyzer: the analyzer for the initial settings (version 0).
        frames: where frames come from.
        results: where results go: ``put`` in live mode, ``handoff`` in analysis mode.
        stats: where results, latencies and failures are recorded.
        events: where settings changes and failures are posted.
        mode: live or analysis.
    """

    def __init__(
        self,
        analyzer: FrameAnalyzer,
        frames: Slot[SourceFrame],
        results: Slot[FrameResult],
        stats: PipelineStats,
        events: EventLog,
        *,
        mode: Mode = Mode.LIVE,
    ) -> None:
        super().__init__("pcle-inference")
        self._analyzer = analyzer
        self._frames = frames
        self._results = results
        self._stats = stats
        self._events = events
        self._mode = Mode(mode)
        self._lock = threading.Lock()
        self._stopping = False
        self._version = 0
        self._requested = analyzer.settings
        self._requested_version = 0
        self._pending: tuple[PipelineSettings, int, bool] | None = None
        self._finished = 0
        self._last_result: FrameResult | None = None
        self._tap: Callable[[FrameResult], object] | None = None

    # -- lifecycle

    def stop(self) -> None:
        """Ask the thread to finish after the frame in hand (returns at once; see :meth:`join`)."""
        self._stopping = True
        self._frames.wake()
        self._results.wake()

    # -- state

    @property
    def analyzer(self) -> FrameAnalyzer:
        """The analyzer in use."""
        return self._analyzer

    @property
    def settings(self) -> PipelineSettings:
        """The settings in use (those of the next result)."""
        return self._analyzer.settings

    @property
    def version(self) -> int:
        """Version of the settings in use: 0 at start, then the number returned by
        :meth:`request_settings` once applied."""
        return self._version

    @property
    def requested_settings(self) -> PipelineSettings:
        """The newest settings asked for (in use, or about to be tried)."""
        with self._lock:
            return self._requested

    @property
    def finished(self) -> int:
        """Frames taken and dealt with (result delivered, or the failure posted)."""
        with self._lock:
            return self._finished

    @property
    def last_result(self) -> FrameResult | None:
        """The newest result produced (whether or not the consumer took it)."""
        with self._lock:
            return self._last_result

    def set_tap(self, tap: Callable[[FrameResult], object] | None) -> None:
        """Hand every result to ``tap`` too (None: stop). It runs on the worker thread, before
        the result is offered to the consumer, so it must return at once (e.g. a queue put);
        an exception from it is logged and ignored."""
        self._tap = tap

    def set_mode(self, mode: Mode) -> None:
        self._mode = Mode(mode)
        self._results.wake()

    def request_settings(self, settings: PipelineSettings, *, reload: bool = False) -> int:
        """Use ``settings`` from the next frame on; returns the version that identifies them in
        events. Only the newest request not yet applied is kept (it reloads the checkpoint
        file if it or the one it replaces asked to: ``reload``)."""
        with self._lock:
            self._requested_version += 1
            self._requested = settings
            reload = reload or (self._pending is not None and self._pending[2])
            self._pending = (settings, self._requested_version, reload)
            version = self._requested_version
        self._frames.wake()
        return version

    # -- the thread

    def _result_cancelled(self) -> bool:
        return self._stopping or self._mode is not Mode.ANALYSIS

    def _run(self) -> None:
        while not self._stopping:
            self._apply_pending()
            frame = self._frames.get(timeout=_TAKE_TIMEOUT_S)
            if frame is None:
                continue
            picked = time.monotonic()
            try:
                result = self._analyzer(frame, picked_time=picked)
            except Exception as exc:  # one bad frame must not end the stream
                if not isinstance(exc, ValueError):
                    log.warning("frame %d failed", frame.frame_id, exc_info=True)
                self._stats.record_frame_error()
                self._events.post(
                    EventKind.FRAME_FAILED,
                    f"frame {frame.source_index} could not be analysed: {exc}",
                    frame_id=frame.frame_id,
                )
                with self._lock:
                    self._finished += 1
                continue
            self._stats.record_result(result.capture_time, result.result_time, result.timings_ms)
            with self._lock:
                self._last_result = result
            tap = self._tap
            if tap is not None:
                try:
                    tap(result)
                except Exception:
                    log.exception("the result tap failed on frame %d", result.frame_id)
            if self._mode is Mode.LIVE:
                if self._results.put(result) is not None:
                    self._stats.record_result_not_taken()
            else:
                self._results.handoff(result, cancelled=self._result_cancelled)
            with self._lock:
                self._finished += 1

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        settings, version, reload = pending
        try:
            analyzer = self._analyzer.rebuilt(settings, reload=reload)
        except Exception as exc:  # SettingsError, or anything a bad model throws
            message = str(exc) if isinstance(exc, SettingsError) else f"{type(exc).__name__}: {exc}"
            self._events.post(
                EventKind.SETTINGS_FAILED,
                f"could not apply the new settings, still using {self.settings.describe()}: "
                f"{message}",
                version=version,
            )
            with self._lock:
                if self._pending is None:  # nothing newer asked for: fall back to what runs
                    self._requested = self._analyzer.settings
            return
        self._analyzer = analyzer
        self._version = version
        self._events.post(
            EventKind.SETTINGS_APPLIED, f"now using {settings.describe()}", version=version
        )
