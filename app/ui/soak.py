"""An endurance run of the real viewer: hours of surgery compressed into one measured command.

:func:`soak` opens the viewer window (offscreen works) on a looping video in live mode and
measures, once per sample period, what a hospital's biomedical engineers would watch on a
device that runs for a whole operation: resident memory, native threads, open file
descriptors, and the capture-to-display latency of the frames shown in that period (median,
p95). It then switches the source back and forth ``switches`` times and changes the
explanation settings (T, method) ``changes`` times, waiting for each to take effect, and
measures again. ``python -m app soak`` prints the report; ``docs/reliability.md`` holds the
figures. The test suite runs a short one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer

from app.ui.main_window import MainWindow
from app.ui.options import ViewerOptions
from app.ui.recent import PreferencesStore
from app.ui.viewer import application

__all__ = ["ProcessFigures", "SoakReport", "SoakSample", "process_figures", "soak"]

_SPIN_MS = 20
_METHODS = ("gradcam++", "gradcam", "reciprocam")


@dataclass(frozen=True)
class ProcessFigures:
    """What the process holds now."""

    rss_mb: float
    threads: int
    python_threads: int
    open_fds: int


def process_figures() -> ProcessFigures:
    """Resident memory (MB), native and Python threads, open file descriptors (Linux /proc;
    elsewhere what is available, -1 for what is not)."""
    rss = -1.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        threads = len(os.listdir("/proc/self/task"))
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        threads = fds = -1
    return ProcessFigures(rss, threads, threading.active_count(), fds)


@dataclass(frozen=True)
class SoakSample:
    """One sample period (or one phase's end).

    Attributes:
        phase: "playback", "switches" or "settings".
        elapsed_s: seconds since the soak started.
        figures: the process figures at the end of the period.
        frames_shown: results shown in the period.
        latency_median_ms, latency_p95_ms: capture to display of those results.
    """

    phase: str
    elapsed_s: float
    figures: ProcessFigures
    frames_shown: int
    latency_median_ms: float
    latency_p95_ms: float

    HEADER = "phase      elapsed  RSS MB  threads  fds  shown  latency median/p95 ms"

    def row(self) -> str:
        """One line under :attr:`HEADER`."""
        return (
            f"{self.phase:<10} {self.elapsed_s:6.0f}s {self.figures.rss_mb:7.1f} "
            f"{self.figures.threads:7d} {self.figures.open_fds:4d} {self.frames_shown:6d}  "
            f"{self.latency_median_ms:6.1f} / {self.latency_p95_ms:6.1f}"
        )


@dataclass
class SoakReport:
    """Every sample, and the changes that matter between the first and the last (each phase
    is sampled once the pipelines it replaced have stopped)."""

    samples: list[SoakSample] = field(default_factory=list)
    switches: int = 0
    changes: int = 0
    notices: list[str] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return self.samples[-1].figures.rss_mb - self.samples[0].figures.rss_mb

    @property
    def thread_change(self) -> int:
        return self.samples[-1].figures.threads - self.samples[0].figures.threads

    @property
    def fd_change(self) -> int:
        return self.samples[-1].figures.open_fds - self.samples[0].figures.open_fds

    def to_dict(self) -> dict[str, object]:
        return {
            "samples": [asdict(s) for s in self.samples],
            "switches": self.switches,
            "changes": self.changes,
            "rss_growth_mb": self.rss_growth_mb,
            "thread_change": self.thread_change,
            "fd_change": self.fd_change,
            "notices": self.notices,
        }

    def format(self) -> str:
        lines = [
            SoakSample.HEADER,
            *(s.row() for s in self.samples),
            f"RSS growth {self.rss_growth_mb:+.1f} MB, threads {self.thread_change:+d}, "
            f"open files {self.fd_change:+d}; {self.switches} source switches, "
            f"{self.changes} settings changes",
        ]
        return "\n".join(lines)


class _Watcher:
    """Collects the capture-to-display latency of each result the window paints: the figure
    its own latency plot shows (:class:`~app.ui.latency_plot.LatencyHistory`)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.latencies_ms: list[float] = []
        self._last: tuple[float, float] | None = None
        window.panels.maps_painted.connect(self.look)

    def look(self) -> None:
        point = self.window.history.last()
        if point is not None and point != self._last:
            self._last = point
            self.latencies_ms.append(point[1])

    def take(self) -> list[float]:
        taken, self.latencies_ms = self.latencies_ms, []
        return taken


class _EventLoop:
    """Runs the event loop in short slices (one QTimer and one QEventLoop, reused)."""

    def __init__(self) -> None:
        self._loop = QEventLoop()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._loop.quit)

    def slice(self) -> None:
        self._timer.start(_SPIN_MS)
        self._loop.exec()

    def run(self, seconds: float) -> None:
        """Run the event loop for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.slice()

    def run_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Run the event loop until ``condition`` holds; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"soak: {what} did not happen within {timeout_s:.0f} s")
            self.slice()


def _sample(report: SoakReport, phase: str, start: float, latencies: list[float]) -> SoakSample:
    values = np.asarray(latencies, dtype=float)
    median = float(np.median(values)) if values.size else float("nan")
    p95 = float(np.percentile(values, 95)) if values.size else float("nan")
    sample = SoakSample(
        phase, time.monotonic() - start, process_figures(), int(values.size), median, p95
    )
    report.samples.append(sample)
    return sample


def soak(
    options: ViewerOptions,
    *,
    minutes: float = 30.0,
    sample_s: float = 60.0,
    switches: int = 200,
    changes: int = 500,
    settings_file: Path | None = None,
    progress: Callable[[SoakSample], None] | None = None,
    timeout_s: float = 120.0,
) -> SoakReport:
    """Run the viewer on ``options`` (its source looping, live mode) and measure it.

    Args:
        options: the viewer's options; ``source`` is what is played and switched back to.
        minutes: playback to measure before the switches.
        sample_s: length of a sample period during playback.
        switches: times to open the source again (each waits until it shows a frame).
        changes: settings changes (T and method in turn; each waits until a result has them).
        settings_file: the viewer's INI file (None: nothing is remembered).
        progress: called with each sample as it is taken.
        timeout_s: longest wait for one open or one settings change.

    Returns:
        A :class:`SoakReport`; its first sample is taken after a warm-up (the first frames,
        one switch and one change), so growth is measured from a steady state.

    Raises:
        TimeoutError: an open or a settings change did not take effect in ``timeout_s``.
    """
    app = application()
    store = PreferencesStore(settings_file) if settings_file is not None else None
    window = MainWindow(options, store)
    window.show()
    watcher = _Watcher(window)
    events = _EventLoop()
    report = SoakReport()

    def shows_a_frame() -> bool:
        return not window.session.opening and window.results_shown > shown

    def switch() -> None:
        nonlocal shown
        shown = window.results_shown
        window.open_source(options.source)
        events.run_until(shows_a_frame, timeout_s, "an open")

    def change(i: int) -> None:
        passes = 1 + i % 4
        method = _METHODS[(i // 4) % len(_METHODS)]
        window.controls.passes.setValue(passes)
        window.controls.method.setCurrentIndex(window.controls.method.findData(method))

        def applied() -> bool:
            result = window.shown_result
            return result is not None and (result.settings.passes, result.settings.method) == (
                passes,
                method,
            )

        events.run_until(applied, timeout_s, f"the change to {method} T={passes}")

    def settled() -> None:  # the replaced pipelines have stopped: count what stays
        events.run_until(lambda: window.session.retiring == 0, timeout_s, "retiring")
        events.run(min(sample_s, 5.0))

    try:
        shown = 0
        events.run_until(shows_a_frame, timeout_s, "the first frame")
        switch()
        change(0)
        events.run(min(sample_s, 5.0))
        start = time.monotonic()
        watcher.take()
        first = _sample(report, "start", start, [])
        if progress:
            progress(first)
        periods = max(0, round(minutes * 60 / sample_s))
        for _ in range(periods):
            events.run(sample_s)
            taken = _sample(report, "playback", start, watcher.take())
            if progress:
                progress(taken)
        for _ in range(switches):
            switch()
            report.switches += 1
        settled()
        taken = _sample(report, "switches", start, watcher.take())
        if progress:
            progress(taken)
        for i in range(1, changes + 1):
            change(i)
            report.changes += 1
        settled()
        taken = _sample(report, "settings", start, watcher.take())
        if progress:
            progress(taken)
    finally:
        report.notices = [n.text for n in window.notices if n.banner]
        window.close()
        window.deleteLater()
        app.processEvents()
    return report
