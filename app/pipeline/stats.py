"""Pipeline statistics: latency over a sliding window, frame rates, drops, stage timings.

Latency is measured from a frame's capture time (when the source had it) to the moment its
result was ready in the pipeline: capture to result. The display is the consumer's business:
a GUI calls :meth:`PipelineStats.record_display` (through ``Pipeline.mark_displayed``) with
the time a result actually reached the screen, and the statistics then also track capture to
display, which is the latency the surgeon experiences.

Everything is bounded: windows keep the last ``window`` values, rate meters the events of the
last few seconds, so a pipeline can run for hours without growing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PipelineStats",
    "RateMeter",
    "SlidingWindow",
    "StatsSnapshot",
    "WindowSummary",
]

DEFAULT_WINDOW = 240
"""Latencies kept per window: 10 s of results at 24 fps."""


@dataclass(frozen=True)
class WindowSummary:
    """Average, 95th percentile (linear interpolation, numpy's default) and maximum of a window
    of values, and how many values there were; all NaN when the window is empty."""

    count: int
    avg: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> WindowSummary:
        data = np.fromiter(values, dtype=np.float64)
        if data.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"))
        return cls(
            int(data.size),
            float(data.mean()),
            float(np.percentile(data, 95)),
            float(data.max()),
        )

    def __str__(self) -> str:
        if self.count == 0:
            return "-"
        return f"{self.avg:.0f}/{self.p95:.0f}/{self.max:.0f}"


class SlidingWindow:
    """The last ``size`` values of a quantity (not thread-safe: :class:`PipelineStats` locks).

    Args:
        size: how many values to keep.
    """

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("a window holds at least one value")
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(float(value))

    def summary(self) -> WindowSummary:
        return WindowSummary.of(self._values)

    def values(self) -> np.ndarray:
        return np.array(self._values, dtype=np.float64)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


class RateMeter:
    """Events per second over the last ``window_s`` seconds (not thread-safe).

    While the meter is younger than the window, the rate is taken over the time since its first
    event, so it is right from the second event on; when events stop, it decays to 0 over the
    window.

    Args:
        window_s: the averaging window in seconds.
        max_events: cap on the events kept (a bound on memory at absurd rates).
    """

    def __init__(self, window_s: float = 2.0, max_events: int = 4096) -> None:
        self.window_s = float(window_s)
        self._times: deque[float] = deque(maxlen=max_events)
        self._first: float | None = None

    def tick(self, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        if self._first is None:
            self._first = t
        self._times.append(t)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        if self._first is None or not self._times:
            return 0.0
        span = min(self.window_s, now - self._first)
        if span <= 0.0 or len(self._times) < 2:
            return 0.0
        if span < self.window_s:  # young meter: rate over the events seen so far
            first, last = self._times[0], self._times[-1]
            return (len(self._times) - 1) / (last - first) if last > first else 0.0
        return len(self._times) / span

    def clear(self) -> None:
        self._times.clear()
        self._first = None


@dataclass(frozen=True)
class StatsSnapshot:
    """The pipeline's figures at one moment (what the latency readout shows).

    Attributes:
        latency_ms: capture to result, over the last results.
        display_latency_ms: capture to display, over the last results the consumer reported
            with ``mark_displayed`` (count 0 when it never did).
        input_fps: frames read from the source per second.
        output_fps: results produced per second.
        display_fps: results displayed per second (as reported by the consumer).
        frames_read: frames read since start.
        frames_processed: results produced since start.
        dropped_frames: frames never analysed because a newer one replaced them (live mode).
        results_not_taken: results replaced before the consumer took them (a slow consumer).
        frame_errors: frames whose processing failed (reported as events).
        stages_ms: per-stage timing summaries: "read", "wait" (capture to the worker picking
            the frame up), "preprocess", "explain" and the engine's own stages as
            "explain.<stage>", "total" (capture to result).
    """

    latency_ms: WindowSummary
    display_latency_ms: WindowSummary
    input_fps: float
    output_fps: float
    display_fps: float
    frames_read: int
    frames_processed: int
    dropped_frames: int
    results_not_taken: int
    frame_errors: int
    stages_ms: Mapping[str, WindowSummary] = field(default_factory=dict)

    def readout(self) -> str:
        """One line for a status bar, e.g.
        ``latency 45/62/80 ms (avg/p95/max) | in 24.0 fps | out 23.9 fps | dropped 3``."""
        shown = self.display_latency_ms if self.display_latency_ms.count else self.latency_ms
        what = "display latency" if self.display_latency_ms.count else "latency"
        return (
            f"{what} {shown} ms (avg/p95/max) | in {self.input_fps:.1f} fps | "
            f"out {self.output_fps:.1f} fps | dropped {self.dropped_frames}"
        )


class PipelineStats:
    """Thread-safe counters, windows and rate meters fed by the pipeline's threads.

    Args:
        window: values kept per sliding window.
        rate_window_s: averaging window of the fps meters, seconds.
    """

    def __init__(self, window: int = DEFAULT_WINDOW, rate_window_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._rate_window_s = rate_window_s
        self.reset()

    def reset(self) -> None:
        """Forget everything (e.g. after a seek or a settings change, to measure afresh)."""
        with self._lock:
            self._latency = SlidingWindow(self._window)
            self._display_latency = SlidingWindow(self._window)
            self._stages: dict[str, SlidingWindow] = {}
            self._input = RateMeter(self._rate_window_s)
            self._output = RateMeter(self._rate_window_s)
            self._display = RateMeter(self._rate_window_s)
            self._frames_read = 0
            self._frames_processed = 0
            self._dropped = 0
            self._results_not_taken = 0
            self._frame_errors = 0

    # -- recording

    def record_frame(self, capture_time: float, read_ms: float) -> None:
        """A frame was read from the source."""
        with self._lock:
            self._frames_read += 1
            self._input.tick(capture_time)
            self._stage("read").add(read_ms)

    def record_drop(self, count: int = 1) -> None:
        """``count`` frames were replaced before the worker took them."""
        with self._lock:
            self._dropped += count

    def record_result(
        self, capture_time: float, result_time: float, timings_ms: Mapping[str, float]
    ) -> None:
        """A result was produced; ``timings_ms`` are its per-stage times."""
        with self._lock:
            self._frames_processed += 1
            self._output.tick(result_time)
            self._latency.add((result_time - capture_time) * 1e3)
            for stage, ms in timings_ms.items():
                if stage != "read":  # recorded when the frame was read
                    self._stage(stage).add(ms)

    def record_result_not_taken(self) -> None:
        """A result was replaced before the consumer took it."""
        with self._lock:
            self._results_not_taken += 1

    def record_frame_error(self) -> None:
        with self._lock:
            self._frame_errors += 1

    def record_display(self, capture_time: float, displayed_at: float | None = None) -> None:
        """A result whose frame was captured at ``capture_time`` reached the screen at
        ``displayed_at`` (``time.monotonic()``; now when None)."""
        displayed_at = time.monotonic() if displayed_at is None else displayed_at
        with self._lock:
            self._display.tick(displayed_at)
            self._display_latency.add((displayed_at - capture_time) * 1e3)

    def _stage(self, name: str) -> SlidingWindow:
        window = self._stages.get(name)
        if window is None:
            window = self._stages[name] = SlidingWindow(self._window)
        return window

    # -- reading

    def latencies_ms(self) -> np.ndarray:
        """The capture-to-result latencies in the window, oldest first."""
        with self._lock:
            return self._latency.values()

    def snapshot(self, now: float | None = None) -> StatsSnapshot:
        """The current figures."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return StatsSnapshot(
                latency_ms=self._latency.summary(),
                display_latency_ms=self._display_latency.summary(),
                input_fps=self._input.rate(now),
                output_fps=self._output.rate(now),
                display_fps=self._display.rate(now),
                frames_read=self._frames_read,
                frames_processed=self._frames_processed,
                dropped_frames=self._dropped,
                results_not_taken=self._results_not_taken,
                frame_errors=self._frame_errors,
                stages_ms={name: w.summary() for name, w in self._stages.items()},
            )
