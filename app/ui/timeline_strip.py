"""The review timeline: predicted class and mean CV of every frame of a recorded session.

Two rows share the x axis (frame position): a band coloured by the class explained in each
frame, and the mean CV in the field of view as a line (gaps where it is undefined) with the
uncertainty threshold dashed and the frames above it marked. Bookmarks are triangles along
the top, the current frame a vertical cursor. A click or a drag with the left button asks for
that frame (:attr:`TimelineStrip.position_requested`); the mouse wheel zooms the frame axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent, MouseDragEvent
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QWidget

from app.ui.theme import COLOURS

__all__ = ["CLASS_COLOURS", "TimelineStrip", "class_colour"]

CLASS_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
"""One colour per class, in the model's class order (repeating after ten)."""
_UNKNOWN = "#3a3f46"
_AXIS_WIDTH = 52
_BOOKMARK = "#f5f5f5"


def class_colour(index: int) -> str:
    """The colour of class ``index`` (grey for a negative, unknown index)."""
    return _UNKNOWN if index < 0 else CLASS_COLOURS[index % len(CLASS_COLOURS)]


class _ScrubViewBox(pg.ViewBox):
    """A view box whose left-button click or drag reports the x under the mouse."""

    def __init__(self, strip: TimelineStrip) -> None:
        super().__init__(enableMenu=False)
        self._strip = strip

    def mouseClickEvent(self, ev: MouseClickEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._strip.request_at(self.mapSceneToView(ev.scenePos()).x())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev: MouseDragEvent, axis: int | None = None) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._strip.request_at(self.mapSceneToView(ev.scenePos()).x())
        else:
            super().mouseDragEvent(ev, axis)


class TimelineStrip(pg.GraphicsLayoutWidget):
    """Class band and mean-CV line of a session (see the module documentation).

    Args:
        class_idx: (N,) the class explained in each frame (-1: unknown).
        mean_cv: (N,) mean CV in the field of view, NaN where undefined.
        class_names: the model's classes, for the legend.
        threshold: the mean CV from which a frame counts as uncertain (None: no line).
    """

    position_requested = Signal(int)

    def __init__(
        self,
        class_idx: np.ndarray,
        mean_cv: np.ndarray,
        class_names: Sequence[str],
        threshold: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.class_idx = np.asarray(class_idx, dtype=np.int64)
        self.mean_cv = np.asarray(mean_cv, dtype=np.float64)
        if self.class_idx.shape != self.mean_cv.shape or self.class_idx.ndim != 1:
            raise ValueError(
                f"one class and one mean CV per frame, got {self.class_idx.shape} and "
                f"{self.mean_cv.shape}"
            )
        self.class_names = tuple(class_names)
        self.threshold = threshold
        self.count = int(self.class_idx.size)
        self.position: int | None = None
        self.bookmarks: list[int] = []

        self.setMinimumHeight(150)
        self.setMaximumHeight(190)
        self.ci.setContentsMargins(4, 2, 8, 2)
        self.ci.setSpacing(0)
        self.setToolTip(
            "Click or drag to go to a frame; mouse wheel zooms. Band: class explained. "
            "Line: mean CV in the field of view (gaps: undefined); dashed: uncertainty "
            "threshold; triangles: bookmarks."
        )

        self.legend = pg.LabelItem(justify="left")
        self.legend.setText(self._legend_html())
        self.addItem(self.legend, row=0, col=0)

        self.band_plot = pg.PlotItem(viewBox=_ScrubViewBox(self))
        self.cv_plot = pg.PlotItem(viewBox=_ScrubViewBox(self))
        self.addItem(self.band_plot, row=1, col=0)
        self.addItem(self.cv_plot, row=2, col=0)
        self.ci.layout.setRowFixedHeight(1, 22)
        for plot in (self.band_plot, self.cv_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=True, y=False)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setTextPen(COLOURS["muted"])
                axis.setPen(COLOURS["border"])
            plot.getAxis("left").setWidth(_AXIS_WIDTH)
        self.band_plot.hideAxis("bottom")
        self.band_plot.getAxis("left").setTicks([[(0.5, "class")], []])
        self.band_plot.setYRange(0.0, 1.0, padding=0.0)
        self.cv_plot.setXLink(self.band_plot)
        self.cv_plot.showGrid(x=True, y=True, alpha=0.12)
        self.cv_plot.setLabel("left", "mean CV")
        self.cv_plot.getAxis("bottom").setHeight(22)
        self.cv_plot.getAxis("left").setStyle(tickTextOffset=4)
        self.cv_plot.getAxis("left").enableAutoSIPrefix(False)

        self.band = pg.ImageItem(axisOrder="row-major")
        self.band_plot.addItem(self.band)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(COLOURS["accent"], width=1.4), connect="finite")
        self.cv_plot.addItem(self.curve)
        self.uncertain = pg.ScatterPlotItem(
            size=5, pen=None, brush=pg.mkBrush(COLOURS["warning"]), symbol="o"
        )
        self.cv_plot.addItem(self.uncertain)
        self.threshold_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(COLOURS["warning"], width=1, style=Qt.PenStyle.DashLine),
        )
        self.threshold_line.setVisible(False)
        self.cv_plot.addItem(self.threshold_line)
        self.markers = pg.ScatterPlotItem(
            size=11,
            symbol="t",
            pen=pg.mkPen(COLOURS["panel"], width=1),
            brush=pg.mkBrush(_BOOKMARK),
        )
        self.cv_plot.addItem(self.markers)
        cursor_pen = pg.mkPen(COLOURS["text"], width=1.5)
        self.cursor = pg.InfiniteLine(angle=90, pen=cursor_pen)
        self.band_cursor = pg.InfiniteLine(angle=90, pen=cursor_pen)
        for line, plot in ((self.cursor, self.cv_plot), (self.band_cursor, self.band_plot)):
            line.setZValue(10)
            line.setVisible(False)
            plot.addItem(line)
        self._draw()

    # -- drawing

    def _legend_html(self) -> str:
        parts = [
            f"<span style='color:{class_colour(i)}'>■</span>&nbsp;{name}"
            for i, name in enumerate(self.class_names)
        ]
        parts.append(f"<span style='color:{COLOURS['accent']}'>━</span>&nbsp;mean CV")
        if self.threshold is not None:
            parts.append(
                f"<span style='color:{COLOURS['warning']}'>╌</span>&nbsp;uncertain ≥ "
                f"{self.threshold:.3g}"
            )
        parts.append(f"<span style='color:{_BOOKMARK}'>▼</span>&nbsp;bookmark")
        return (
            f"<span style='color:{COLOURS['muted']}; font-size:9pt'>"
            + "&nbsp;&nbsp;&nbsp;".join(parts)
            + "</span>"
        )

    def _draw(self) -> None:
        n = self.count
        known = int(self.class_idx.max()) + 1 if n else 0
        palette = np.array(
            [pg.mkColor(class_colour(i)).getRgb() for i in range(-1, max(known, 0))], np.uint8
        )
        rgba = np.zeros((1, max(n, 1), 4), np.uint8)
        rgba[0, :n] = palette[np.maximum(self.class_idx, -1) + 1]
        self.band.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.band.setRect(QRectF(-0.5, 0.0, max(n, 1), 1.0))

        x = np.arange(n, dtype=np.float64)
        self.curve.setData(x, self.mean_cv)
        finite = self.mean_cv[np.isfinite(self.mean_cv)]
        top = max(float(finite.max()) if finite.size else 0.0, self.threshold or 0.0, 0.05)
        self._marker_y = top * 1.12
        self.cv_plot.setYRange(0.0, top * 1.22, padding=0.0)
        if self.threshold is not None:
            self.threshold_line.setValue(self.threshold)
            self.threshold_line.setVisible(True)
            above = np.isfinite(self.mean_cv) & (self.mean_cv >= self.threshold)
            self.uncertain.setData(x[above], self.mean_cv[above])
        right = max(n - 0.5, 0.5)
        for plot in (self.band_plot, self.cv_plot):
            plot.setLimits(xMin=-0.5, xMax=right, minXRange=min(8.0, right + 0.5))
        self.band_plot.setXRange(-0.5, right, padding=0.0)
        self._draw_markers()

    def _draw_markers(self) -> None:
        marks = [p for p in self.bookmarks if 0 <= p < self.count]
        self.markers.setData(marks, [self._marker_y] * len(marks))

    # -- state

    def set_position(self, position: int | None) -> None:
        """Draw the cursor at frame ``position`` (None: hide it)."""
        self.position = position
        for line in (self.cursor, self.band_cursor):
            line.setVisible(position is not None)
            if position is not None:
                line.setValue(position)

    def set_bookmarks(self, positions: Sequence[int]) -> None:
        """Mark these frames as bookmarked."""
        self.bookmarks = sorted(int(p) for p in positions)
        self._draw_markers()

    def request_at(self, x: float) -> None:
        """Ask for the frame nearest ``x`` (in frame units; clamped to the session)."""
        if self.count == 0 or not np.isfinite(x):
            return
        self.position_requested.emit(int(min(max(round(x), 0), self.count - 1)))

    def frame_to_widget(self, position: float) -> QPoint:
        """Where frame ``position`` lies on the widget, mid-height of the CV plot (tests, and
        tooltips)."""
        box = self.cv_plot.getViewBox()
        y = sum(box.viewRange()[1]) / 2.0
        return self.mapFromScene(box.mapViewToScene(QPointF(position, y)))
