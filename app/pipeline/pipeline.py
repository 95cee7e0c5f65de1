"""The frame pipeline: source -> [frame slot] -> inference worker -> [result slot] -> consumer.

:class:`Pipeline` wires a :class:`~app.pipeline.capture.CaptureThread` and an
:class:`~app.pipeline.worker.InferenceWorker` together through two one-item
:class:`~app.pipeline.slots.Slot` objects, and is the one object a consumer (the Qt viewer,
headless processing, the benchmark) talks to. It is plain Python: no Qt, no callbacks into the
consumer. The consumer pulls:

- :meth:`Pipeline.take_result` (non-blocking, e.g. on a GUI timer) or :meth:`wait_result`
  for the newest analysed frame, :meth:`results` to iterate over all of them (analysis mode);
- :meth:`latest_frame` for the raw panel, which runs at the source's rate;
- :meth:`stats` for the latency readout, :meth:`watchdog` for the stall warning,
  :meth:`events` for errors and notices (a failed checkpoint swap, a lost device, ...).

Every control is thread-safe and returns at once; the threads carry it out between frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from app.pipeline.analyzer import FrameAnalyzer
from app.pipeline.capture import CaptureThread
from app.pipeline.events import EventLog, PipelineEvent
from app.pipeline.mode import Mode
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.pipeline.slots import Slot
from app.pipeline.sources import FrameSource, SourceFrame, open_source
from app.pipeline.stats import DEFAULT_WINDOW, PipelineStats, StatsSnapshot
from app.pipeline.watchdog import StallWatchdog, WatchdogStatus
from app.pipeline.worker import InferenceWorker
from models.checkpoint import CheckpointMetadata

__all__ = ["Pipeline"]


class Pipeline:
    """Reads a source, explains its frames with MC Dropout, and serves the newest results.

    Example::

        settings = PipelineSettings(checkpoint="model.pt", method="gradcam++", passes=10)
        with Pipeline("recording.mpg", settings, mode="live") as pipeline:
            while viewing:
                result = pipeline.take_result()          # newest result, or None
                frame = pipeline.latest_frame()          # for the raw panel
                if result is not None:
                    draw(result); pipeline.mark_displayed(result)
                readout = pipeline.stats().readout()

    The pipeline owns the source: :meth:`stop` closes it.

    Args:
        source: a :class:`FrameSource`, or what :func:`open_source` accepts (video file,
            device index, ``/dev/videoN``, image folder, list of images).
        settings: the initial inference settings (the checkpoint is loaded here, so a bad one
            raises now), or a :class:`FrameAnalyzer` already built for them.
        mode: ``"live"`` (drop stale frames, never wait) or ``"analysis"`` (every frame).
        speed: playback speed of a file in live mode (0.05 to 16).
        loop: restart a file at its first frame after its last.
        paused: start paused (``play()`` to start reading; ``step()``/``seek()`` show frames).
        stats_window: latencies kept for the sliding-window statistics.
        watchdog_min_s: the shortest silence of the source declared a stall.
        reopen_interval_s: how often a lost device is reopened.

    Raises:
        SourceError: the source cannot be opened.
        SettingsError: the initial settings do not work (bad checkpoint, unknown class,
            missing device, ...).
    """

    def __init__(
        self,
        source: FrameSource | str | int | Path | Sequence[str | Path],
        settings: PipelineSettings | FrameAnalyzer,
        *,
        mode: Mode | str = Mode.LIVE,
        speed: float = 1.0,
        loop: bool = False,
        paused: bool = False,
        stats_window: int = DEFAULT_WINDOW,
        watchdog_min_s: float = 1.0,
        reopen_interval_s: float = 1.0,
    ) -> None:
        mode = Mode(mode)
        self.source = source if isinstance(source, FrameSource) else open_source(source)
        try:
            analyzer = settings if isinstance(settings, FrameAnalyzer) else FrameAnalyzer(settings)
        except BaseException:
            self.source.close()
            raise
        self._stats = PipelineStats(window=stats_window)
        self._events = EventLog()
        self._watchdog = StallWatchdog(self.source.frame_interval_s, min_s=watchdog_min_s)
        self._frames: Slot[SourceFrame] = Slot("frames")
        self._results: Slot[FrameResult] = Slot("results")
        self._capture = CaptureThread(
            self.source,
            self._frames,
            self._stats,
            self._watchdog,
            self._events,
            mode=mode,
            speed=speed,
            loop=loop,
            paused=paused,
            reopen_interval_s=reopen_interval_s,
        )
        self._worker = InferenceWorker(
            analyzer, self._frames, self._results, self._stats, self._events, mode=mode
        )
        self._lifecycle = threading.Lock()
        self._started = False
        self._stopped = False
        self._joined = True
        self.started_at: float | None = None
        """``time.monotonic()`` when :meth:`start` was called."""

    # ---------------------------------------------------------------------- lifecycle

    def start(self) -> Pipeline:
        """Start the threads (once; a stopped pipeline cannot be restarted)."""
        with self._lifecycle:
            if self._stopped:
                raise RuntimeError("this pipeline was stopped; make a new one")
            if not self._started:
                self._started = True
                self.started_at = time.monotonic()
                self._worker.start()
                self._capture.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop both threads, wait for them (up to ``timeout`` s in all) and close the source.

        Safe to call at any time, from any thread but the pipeline's own, any number of times;
        a frame being analysed is finished first. Never raises.

        Returns:
            True when every thread has ended (False only if one is stuck, e.g. in a driver
            call; it is a daemon thread and will not keep the process alive).
        """
        with self._lifecycle:
            if self._stopped:
                return self._joined
            self._stopped = True
            self._capture.stop()
            self._worker.stop()
            self._frames.close()
            self._results.close()
            deadline = time.monotonic() + timeout
            capture_done = self._capture.join(max(0.0, deadline - time.monotonic()))
            worker_done = self._worker.join(max(0.0, deadline - time.monotonic()))
            if capture_done:  # never release a source under a running read
                self.source.close()
            self._joined = capture_done and worker_done
            return self._joined

    close = stop

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._started and not self._stopped

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------------- consuming

    def take_result(self) -> FrameResult | None:
        """The newest result not yet taken, or None (never waits; for a GUI timer)."""
        return self._results.get(timeout=0)

    def wait_result(self, timeout: float | None = None) -> FrameResult | None:
        """The next result, waiting up to ``timeout`` seconds (None: until one comes or the
        pipeline stops)."""
        return self._results.get(timeout=timeout)

    def results(self, idle_timeout: float | None = None) -> Iterator[FrameResult]:
        """Results as they come, until the source is exhausted (every frame read has been
        analysed or failed, and every result taken) or the pipeline stops.

        Args:
            idle_timeout: also end after this many seconds without a result (None: never;
                a stalled device would then block the iteration until ``stop()``).
        """
        last = time.monotonic()
        while not self._stopped:
            result = self._results.get(timeout=0.05)
            now = time.monotonic()
            if result is not None:
                last = now
                yield result
            elif self.exhausted or (idle_timeout is not None and now - last > idle_timeout):
                return

    @property
    def exhausted(self) -> bool:
        """The source has ended (no loop), and every frame read was analysed (or failed) and its
        result taken: nothing more will come until a seek."""
        return (
            self._capture.ended
            and not self._frames.full
            and self._worker.finished == self._frames.taken
            and not self._results.full
        )

    def latest_frame(self) -> SourceFrame | None:
        """The newest frame read from the source (for the raw panel; not consumed)."""
        return self._capture.latest_frame

    @property
    def last_result(self) -> FrameResult | None:
        """The newest result produced, whether or not it was taken."""
        return self._worker.last_result

    def set_result_tap(self, tap: Callable[[FrameResult], object] | None) -> None:
        """Hand every analysed frame to ``tap`` as well, including those the consumer never
        takes in live mode (None: stop). ``tap`` runs on the inference thread and must return
        at once, e.g. :meth:`app.recording.BackgroundRecorder.submit`."""
        self._worker.set_tap(tap)

    def stats(self) -> StatsSnapshot:
        """Latency (avg/p95/max over the window), fps, drops and stage timings now."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Start the statistics afresh (e.g. after changing settings)."""
        self._stats.reset()

    def mark_displayed(self, result: FrameResult, displayed_at: float | None = None) -> None:
        """Report that ``result`` reached the screen at ``displayed_at`` (``time.monotonic()``;
        now when None). From then on :meth:`stats` also reports capture-to-display latency
        (``display_latency_ms``) and the display rate. Call it after the frame was drawn."""
        self._stats.record_display(result.capture_time, displayed_at)

    def watchdog(self) -> WatchdogStatus:
        """Whether the source is stalled, ended or lost, and for how long it has been silent."""
        return self._watchdog.status()

    def events(self) -> list[PipelineEvent]:
        """Events since the last call (errors, settings applied, device lost/back, ...)."""
        return self._events.drain()

    @property
    def last_error(self) -> PipelineEvent | None:
        """The most recent error event, drained or not."""
        return self._events.last_error

    # ---------------------------------------------------------------------- settings

    @property
    def settings(self) -> PipelineSettings:
        """The settings in use (those of the next result)."""
        return self._worker.settings

    @property
    def settings_version(self) -> int:
        """0 for the initial settings, then the version of the last update applied."""
        return self._worker.version

    @property
    def device(self) -> str:
        """The device the explanations run on ("cpu", "cuda:0"; "auto" resolved)."""
        return str(self._worker.analyzer.explainer.device)

    @property
    def metadata(self) -> CheckpointMetadata:
        """The metadata of the checkpoint in use (class names, input size, intended use)."""
        return self._worker.analyzer.metadata

    @property
    def checkpoint_sha256(self) -> str:
        """The SHA-256 of the checkpoint in use, taken when it was loaded."""
        return self._worker.analyzer.checkpoint_sha256

    def update_settings(self, **changes: Any) -> int:
        """Change settings from the next frame on: ``method``, ``passes`` (1-64), ``mc``,
        ``target_class`` (name, index or None for the predicted class), ``device``,
        ``checkpoint``, ``seed``.

        ``checkpoint`` loads the file (again, if it is the path in use); other changes keep
        the model that is loaded, even if its file was replaced or deleted since.

        Changes apply on top of the newest requested settings. Values are checked now; what
        needs the model (the checkpoint file, the class, the device) is checked by the worker,
        which posts a SETTINGS_APPLIED or SETTINGS_FAILED event with the returned version; on
        failure the previous settings stay in use.

        Returns:
            The version of the requested settings (compare with :attr:`settings_version` or
            the events' ``version``).

        Raises:
            SettingsError: an unknown setting or an invalid value.
        """
        settings = self._worker.requested_settings.replace(**changes)
        return self._worker.request_settings(settings, reload="checkpoint" in changes)

    # ---------------------------------------------------------------------- playback

    @property
    def mode(self) -> Mode:
        return self._capture.mode

    def set_mode(self, mode: Mode | str) -> None:
        """Switch between live (drop stale frames) and analysis (every frame)."""
        mode = Mode(mode)
        self._worker.set_mode(mode)
        self._capture.set_mode(mode)

    @property
    def paused(self) -> bool:
        return self._capture.paused

    def play(self) -> None:
        self._capture.set_paused(False)

    def pause(self) -> None:
        self._capture.set_paused(True)

    def step(self, delta: int = 1) -> bool:
        """While paused, show the frame ``delta`` frames on (negative: back, files only).

        Returns:
            False when not paused (or stepping back on a live source): nothing happens.
        """
        return self._capture.step(delta)

    def seek(self, index: int) -> None:
        """Continue from frame ``index`` (files and folders; shown at once when paused). A
        failure is posted as a SEEK_FAILED event."""
        self._capture.seek(index)

    @property
    def speed(self) -> float:
        return self._capture.speed

    def set_speed(self, speed: float) -> float:
        """Playback speed of a file in live mode (clamped to 0.05-16); returns the speed set."""
        return self._capture.set_speed(speed)

    @property
    def loop(self) -> bool:
        return self._capture.loop

    def set_loop(self, loop: bool) -> None:
        self._capture.set_loop(loop)

    @property
    def position(self) -> int | None:
        """Source index of the newest frame read (None before the first)."""
        frame = self._capture.latest_frame
        return None if frame is None else frame.source_index

    @property
    def frame_count(self) -> int | None:
        return self.source.frame_count

    @property
    def fps(self) -> float:
        """The source's nominal frame rate."""
        return self.source.fps

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "not started")
        return f"Pipeline({self.source!r}, {self.mode.value}, {state}, {self.settings.describe()})"
