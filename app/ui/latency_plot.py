"""The rolling latency plot: capture-to-display latency of each displayed result, last N s.

:class:`LatencyHistory` keeps the points (plain Python, bounded); :class:`LatencyPlot` draws
them with the window's 95th percentile as a dashed line.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app.ui.theme import COLOURS

__all__ = ["LatencyHistory", "LatencyPlot"]


class LatencyHistory:
    """(time, latency) points of the last ``span_s`` seconds.

    Args:
        span_s: how far back to keep points.
        max_points: a bound on memory at absurd rates.
    """

    def __init__(self, span_s: float = 30.0, max_points: int = 4096) -> None:
        self.span_s = float(span_s)
        self._points: deque[tuple[float, float]] = deque(maxlen=max_points)

    def add(self, t: float, latency_ms: float) -> None:
        """A result shown at ``t`` (``time.monotonic()``) with this latency."""
        self._points.append((float(t), float(latency_ms)))

    def series(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(seconds relative to ``now``, negative; latency ms) of the points in the span."""
        while self._points and self._points[0][0] < now - self.span_s:
            self._points.popleft()
        if not self._points:
            return np.empty(0), np.empty(0)
        data = np.asarray(self._points, dtype=np.float64)
        return data[:, 0] - now, data[:, 1]

    def last(self) -> tuple[float, float] | None:
        """The newest (time, latency ms) point, or None."""
        return self._points[-1] if self._points else None

    def clear(self) -> None:
        self._points.clear()

    def __len__(self) -> int:
        return len(self._points)


def _plot_top(values: np.ndarray, p95_ms: float | None) -> float:
    """The top of the y axis: room for the bulk of the points and the p95 line; a rare spike
    (a warm-up frame) runs off the top instead of flattening everything else."""
    typical = float(np.percentile(values, 95)) if values.size else 0.0
    marker = p95_ms if p95_ms is not None and math.isfinite(p95_ms) else 0.0
    return max(typical, marker, 40.0) * 1.3


class LatencyPlot(pg.PlotWidget):
    """A small plot of a :class:`LatencyHistory`, x from -span to 0 s, y in ms from 0."""

    def __init__(self, history: LatencyHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.setMinimumHeight(100)
        self.setMaximumHeight(130)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("left", "ms")
        item.setLabel("bottom", "s")
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTextPen(COLOURS["muted"])
            item.getAxis(axis).setPen(COLOURS["border"])
        self.setXRange(-history.span_s, 0.0, padding=0.0)
        self.curve = item.plot(pen=pg.mkPen(COLOURS["latency"], width=1.5))
        self.p95 = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(COLOURS["latency_p95"], width=1, style=Qt.PenStyle.DashLine),
        )
        self.p95.setVisible(False)
        item.addItem(self.p95)

    def refresh(self, now: float, p95_ms: float | None = None) -> None:
        """Redraw the points of the last span up to ``now``; ``p95_ms`` as a dashed line."""
        x, y = self.history.series(now)
        self.curve.setData(x, y)
        self.setYRange(0.0, _plot_top(y, p95_ms), padding=0.0)
        if p95_ms is not None and math.isfinite(p95_ms):
            self.p95.setValue(p95_ms)
            self.p95.setVisible(True)
        else:
            self.p95.setVisible(False)
