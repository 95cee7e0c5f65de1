"""The three image panels: raw frame | enhanced attribution overlay | CV risk overlay.

Each :class:`ImagePanel` is a pyqtgraph view that keeps the image's aspect ratio and follows
the window's size: a grey image, an RGBA overlay (alpha 0 where the map is undefined or outside
the field of view, see :mod:`app.render.layers`), the field-of-view outline, a fixed colour bar
for the map panels, a title and a caption. Images are drawn with fixed levels, never
auto-levelled, so brightness and colours mean the same on every frame.

A panel emits :attr:`ImagePanel.painted` after each repaint; the window uses it to report when
a result actually reached the screen (capture-to-display latency).

The raw panel shows, by default, the frame cut to the square the model input was made from
(:func:`~app.render.layers.field_of_view_crop`, at the source's resolution) and stretched over
the map panels' pixel grid: the three images are the same size and a point at one place in
each is the same point of tissue. "Whole frame" (:attr:`PanelRow.whole_frame_action`, W, and
the button on the raw panel) shows the uncropped frame instead, as does the raw panel while no
field of view is known for the frame's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWidget

from app.preprocess.field_of_view import FieldOfView
from app.render.layers import (
    circle_outline,
    colormap_lut,
    crop_outline,
    field_of_view_crop,
    map_to_rgba,
    mask_outline,
)
from app.render.overlay import (
    ENHANCED_COLORMAP,
    ENHANCED_LEVELS,
    RISK_COLORMAP,
    RISK_LEVELS,
    to_uint8_gray,
)
from app.ui.theme import COLOURS

__all__ = [
    "ENHANCED_SCALE",
    "GREY_SCALE",
    "RISK_SCALE",
    "WHOLE_FRAME_KEY",
    "ColourScale",
    "ImagePanel",
    "PanelRow",
]

WHOLE_FRAME_KEY = "W"
"""The shortcut of the raw panel's whole-frame toggle."""


@dataclass(frozen=True)
class ColourScale:
    """A fixed colour scale: what the colour bar says and how maps are coloured."""

    label: str
    levels: tuple[float, float]
    lut: np.ndarray

    def colormap(self) -> pg.ColorMap:
        return pg.ColorMap(np.linspace(0.0, 1.0, len(self.lut)), self.lut)


ENHANCED_SCALE = ColourScale("mean attribution", ENHANCED_LEVELS, colormap_lut(ENHANCED_COLORMAP))
RISK_SCALE = ColourScale(
    "CV = std / mean  (≥ 1 saturates)", RISK_LEVELS, colormap_lut(RISK_COLORMAP)
)
GREY_SCALE = ColourScale(
    "intensity, fraction of full scale",
    (0.0, 1.0),
    np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
)
"""The raw panel's fixed grey levels (its bar also keeps its image level with the maps')."""


class _Label(pg.LabelItem):
    """A label that never widens its panel: text wider than the panel is clipped at its
    edges instead of pushing the image out of view."""

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)


class ImagePanel(pg.GraphicsLayoutWidget):
    """One image panel (see the module documentation).

    Args:
        title: the panel's heading.
        scale: the colour scale of its overlay (None: no overlay colour bar).
    """

    painted = Signal()
    shape_changed = Signal()
    _corner: QWidget | None = None  # pyqtgraph resizes the view before __init__ returns

    def __init__(self, title: str, scale: ColourScale | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(160, 160)
        self.ci.setContentsMargins(6, 4, 6, 4)
        self.ci.setSpacing(2)
        self.title = _Label("", justify="left")
        self.addItem(self.title, row=0, col=0)
        self.set_title(title)
        self.view: pg.ViewBox = self.addViewBox(
            row=1, col=0, lockAspect=True, invertY=True, enableMouse=False, enableMenu=False
        )
        self.view.setDefaultPadding(0.0)
        self.base = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.outline = pg.PlotCurveItem(
            pen=pg.mkPen(COLOURS["fov"], width=1.2, style=Qt.PenStyle.DashLine)
        )
        for z, item in enumerate((self.base, self.overlay, self.outline)):
            item.setZValue(z)
            self.view.addItem(item)
        self.colorbar: pg.ColorBarItem | None = None
        if scale is not None:
            self.colorbar = pg.ColorBarItem(
                values=scale.levels,
                colorMap=scale.colormap(),
                label=scale.label,
                interactive=False,
                width=12,
                orientation="horizontal",
                colorMapMenu=False,
            )
            self.addItem(self.colorbar, row=2, col=0)
            ticks = [(v, f"{v:g}") for v in np.linspace(*scale.levels, 5)]
            self.colorbar.axis.setTicks([ticks, []])
            self.colorbar.axis.setStyle(hideOverlappingLabels=False)
        self.caption = _Label("")
        self.addItem(self.caption, row=3, col=0)
        self.set_caption("waiting for frames…")
        self._shape: tuple[int, int] | None = None
        self._rect: tuple[int, ...] | None = None

    # -- drawing

    def show_image(self, gray: np.ndarray, extent: tuple[int, ...] | None = None) -> None:
        """Draw a (H, W) uint8 grey image (levels 0 to 255, never auto-levelled).

        Args:
            gray: the image.
            extent: (H, W) of the pixel grid to stretch it over (e.g. the map panels', so that
                outlines and points are in their coordinates); None: one unit per pixel.
        """
        self.base.setImage(gray, autoLevels=False, levels=(0, 255))
        h, w = (int(v) for v in (extent or gray.shape)[:2])
        rect = (h, w, *gray.shape[:2])
        if rect != self._rect:
            self._rect = rect
            self.base.setRect(QRectF(0, 0, w, h))
        shape = (h, w)
        if shape != self._shape:
            self._shape = shape
            self.view.setRange(QRectF(0, 0, shape[1], shape[0]), padding=0.0)
            self.shape_changed.emit()

    def show_overlay(self, rgba: np.ndarray | None) -> None:
        """Draw an (H, W, 4) uint8 RGBA layer over the image (None: remove it)."""
        if rgba is None:
            self.overlay.clear()
        else:
            self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))

    def show_outline(self, xy: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Draw the field-of-view outline (None: remove it)."""
        if xy is None or len(xy[0]) == 0:
            self.outline.setData([], [])
        else:
            self.outline.setData(*xy)

    def set_title(self, text: str, detail: str = "") -> None:
        """The heading, with ``detail`` after it in smaller, muted type."""
        html = text
        if detail:
            html += (
                f"&nbsp;&nbsp;<span style='font-size:9pt; font-weight:normal; "
                f"color:{COLOURS['muted']}'>{detail}</span>"
            )
        self.title.setText(html, size="11pt", bold=True, color=COLOURS["text"])

    def set_caption(self, text: str, alert: bool = False) -> None:
        colour = COLOURS["warning"] if alert else COLOURS["muted"]
        self.caption.setText(text, size="9pt", color=colour)

    def reset(self, caption: str = "waiting for frames…") -> None:
        """Remove the image, overlay and outline (``clear`` would empty the whole layout:
        pyqtgraph binds it to the layout on each instance)."""
        self.base.clear()
        self.overlay.clear()
        self.outline.setData([], [])
        self._shape = None
        self._rect = None
        self.set_caption(caption)

    def set_corner_widget(self, widget: QWidget) -> None:
        """Keep ``widget`` (a small button) in the panel's top right corner, over the title."""
        self._corner = widget
        widget.setParent(self)
        self._place_corner()
        widget.show()

    def _place_corner(self) -> None:
        if self._corner is not None:
            self._corner.adjustSize()
            self._corner.move(self.width() - self._corner.width() - 4, 2)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_corner()

    def image_rect(self) -> QRect:
        """Where the image is drawn, in this widget's pixels (empty before the first)."""
        if self._shape is None:
            return QRect()
        return self.mapFromScene(self.base.sceneBoundingRect()).boundingRect()

    def height_for_width(self, width: int) -> int | None:
        """The height that fits the image at ``width`` with no empty band above or below it
        (None before the first image)."""
        if self._shape is None:
            return None
        view = self.view.size()
        extra_w = self.width() - view.width()
        extra_h = self.height() - view.height()
        aspect = self._shape[0] / self._shape[1]
        return round(extra_h + max(1.0, width - extra_w) * aspect)

    @property
    def image(self) -> np.ndarray | None:
        """The grey image drawn (None before the first)."""
        return self.base.image

    @property
    def overlay_image(self) -> np.ndarray | None:
        """The RGBA overlay drawn (None when there is none)."""
        return self.overlay.image

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.painted.emit()


class PanelRow(QWidget):
    """raw | enhanced | risk, side by side, sharing the width equally.

    Emits :attr:`maps_painted` once both map panels have repainted after
    :meth:`expect_maps_paint` (the moment a new result is on the screen), and
    :attr:`whole_frame_changed` when the raw panel's view is switched.

    Args:
        whole_frame: start with the whole frame in the raw panel (default: the field of view).
    """

    maps_painted = Signal()
    whole_frame_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None, *, whole_frame: bool = False) -> None:
        super().__init__(parent)
        self.raw = ImagePanel("Raw frame", GREY_SCALE)
        self.enhanced = ImagePanel("Enhanced attribution", ENHANCED_SCALE)
        self.risk = ImagePanel("Risk", RISK_SCALE)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        for panel in self.panels:
            layout.addWidget(panel, 1, Qt.AlignmentFlag.AlignVCenter)
        for panel in self.panels:
            panel.shape_changed.connect(self.fit_heights, Qt.ConnectionType.QueuedConnection)
        self._waiting: set[ImagePanel] = set()
        self.enhanced.painted.connect(lambda: self._painted(self.enhanced))
        self.risk.painted.connect(lambda: self._painted(self.risk))

        self.whole_frame_action = QAction("&Whole frame", self)
        """Checked: the raw panel shows the whole frame; list it in a window's menu."""
        self.whole_frame_action.setCheckable(True)
        self.whole_frame_action.setChecked(whole_frame)
        self.whole_frame_action.setShortcut(QKeySequence(WHOLE_FRAME_KEY))
        self.whole_frame_action.setToolTip(
            f"Raw panel: the whole frame, or the field of view at the maps' scale "
            f"({WHOLE_FRAME_KEY})"
        )
        self.whole_frame_action.toggled.connect(self._whole_frame_toggled)
        self.whole_frame_button = QToolButton()
        self.whole_frame_button.setObjectName("PanelToggle")
        self.whole_frame_button.setDefaultAction(self.whole_frame_action)
        self.whole_frame_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.raw.set_corner_widget(self.whole_frame_button)
        self._frame: np.ndarray | None = None
        self._frame_caption = ""
        self._fov: FieldOfView | None = None
        self._fov_frame_shape: tuple[int, ...] = ()
        self._input_shape: tuple[int, ...] = ()

    @property
    def panels(self) -> tuple[ImagePanel, ImagePanel, ImagePanel]:
        return self.raw, self.enhanced, self.risk

    # -- the raw panel

    @property
    def whole_frame(self) -> bool:
        """Whether the raw panel shows the whole frame (else the field of view)."""
        return self.whole_frame_action.isChecked()

    def set_whole_frame(self, whole: bool) -> None:
        """Show the whole frame (True) or the field of view (False) in the raw panel."""
        self.whole_frame_action.setChecked(whole)

    @property
    def raw_frame(self) -> np.ndarray | None:
        """The last frame given to :meth:`show_raw`, whole (None after :meth:`reset`)."""
        return self._frame

    @property
    def raw_view(self) -> str:
        """What the raw panel shows: ``"field of view"`` or ``"whole frame"``."""
        return "whole frame" if self._crop_fov() is None else "field of view"

    def show_raw(self, gray: np.ndarray, caption: str = "") -> None:
        """Draw a frame in the raw panel, cut to the field of view (see the module
        documentation) unless the whole frame is asked for or none is known.

        Args:
            gray: (H, W) uint8, the whole frame (:func:`~app.render.layers.frame_to_gray8`).
            caption: what to say about the frame, after the view's name.
        """
        self._frame, self._frame_caption = gray, caption
        self._draw_raw()

    def set_field_of_view(
        self,
        fov: FieldOfView | None,
        frame_shape: tuple[int, ...] = (),
        input_shape: tuple[int, ...] = (),
    ) -> None:
        """The field of view the raw panel cuts frames to: the one the maps shown were made
        with (None: none known; the whole frame is shown).

        Args:
            fov: the field of view, in source-frame pixels.
            frame_shape: the shape of the frame it was found in; frames of another size are
                shown whole.
            input_shape: (H, W) of the model input made from it (the map panels' grid).
        """
        key = (fov, tuple(frame_shape[:2]), tuple(input_shape[:2]))
        if key != (self._fov, self._fov_frame_shape, self._input_shape):
            self._fov, self._fov_frame_shape, self._input_shape = key
            self._draw_raw()

    def reset(self, caption: str = "waiting for frames…") -> None:
        """Empty the three panels and forget the frame and field of view."""
        self._frame, self._fov = None, None
        for panel in self.panels:
            panel.reset(caption)

    def _crop_fov(self) -> FieldOfView | None:
        """The field of view to cut the frame shown to (None: show it whole)."""
        frame, fov = self._frame, self._fov
        if self.whole_frame or frame is None or fov is None:
            return None
        return fov if frame.shape[:2] == self._fov_frame_shape else None

    def _draw_raw(self) -> None:
        frame = self._frame
        if frame is None:
            return
        fov = self._crop_fov()
        if fov is not None:
            self.raw.show_image(field_of_view_crop(frame, fov), self._input_shape)
            self.raw.show_outline(crop_outline(fov, self._input_shape))
            view = "field of view" + ("" if fov.found else " (assumed)")
        else:
            known = self._fov if frame.shape[:2] == self._fov_frame_shape else None
            self.raw.show_image(frame)
            self.raw.show_outline(
                None if known is None else circle_outline(known.cx, known.cy, known.radius)
            )
            view = "whole frame" if self.whole_frame else "whole frame: no field of view yet"
        caption = self._frame_caption
        self.raw.set_caption(f"{view}  ·  {caption}" if caption else view)

    def _whole_frame_toggled(self, whole: bool) -> None:
        self._draw_raw()
        self.whole_frame_changed.emit(whole)

    # -- layout

    def fit_heights(self) -> None:
        """Give the panels one height, the least that shows every image whole at the panels'
        width (no tall empty bands around square images on a wide screen); the row centres
        them vertically. Called on resize and when an image changes shape."""
        width = self.raw.width()
        wanted = [p.height_for_width(width) for p in self.panels]
        known = [h for h in wanted if h is not None]
        height = min(max(known), self.height()) if len(known) == len(wanted) else self.height()
        for panel in self.panels:
            if panel.maximumHeight() != height:
                panel.setMaximumHeight(height)
                panel.setMinimumHeight(min(height, 160))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_heights()

    def show_maps(
        self,
        display: np.ndarray,
        fov_mask: np.ndarray,
        mean: np.ndarray,
        cv: np.ndarray,
        opacity: float,
    ) -> None:
        """Draw an analysed frame's two map panels: the model's input in grey, the field-of-view
        outline, and the enhanced and risk maps (see :meth:`show_map_overlays`). The raw
        panel follows with :meth:`set_field_of_view`.

        Args:
            display: float (H, W) in [0, 1], what the model saw.
            fov_mask: bool (H, W), the field of view at input size.
            mean: the enhanced map at ``display``'s size.
            cv: the risk map at ``display``'s size, NaN where undefined.
            opacity: overlay opacity, 0 to 1.
        """
        base = to_uint8_gray(display)
        outline = mask_outline(fov_mask)
        for panel in (self.enhanced, self.risk):
            panel.show_image(base)
            panel.show_outline(outline)
        self.show_map_overlays(fov_mask, mean, cv, opacity)

    def show_map_overlays(
        self, fov_mask: np.ndarray, mean: np.ndarray, cv: np.ndarray, opacity: float
    ) -> None:
        """Redraw only the map overlays (e.g. at another opacity), on their fixed colour scales,
        transparent where a map is undefined or outside the field of view."""
        self.enhanced.show_overlay(
            map_to_rgba(mean, ENHANCED_LEVELS, ENHANCED_SCALE.lut, opacity, fov_mask)
        )
        self.risk.show_overlay(map_to_rgba(cv, RISK_LEVELS, RISK_SCALE.lut, opacity, fov_mask))

    def grab_panels(self) -> QPixmap:
        """A picture of the three panels (without the empty bands around them, and without
        the whole-frame button)."""
        area = self.raw.geometry().united(self.risk.geometry())
        button = self.whole_frame_button
        shown = button.isVisible()
        button.hide()
        try:
            return self.grab(area)
        finally:
            button.setVisible(shown)

    def expect_maps_paint(self) -> None:
        """New maps were drawn: emit :attr:`maps_painted` when both are on the screen."""
        self._waiting = {self.enhanced, self.risk}

    def _painted(self, panel: ImagePanel) -> None:
        if panel in self._waiting:
            self._waiting.discard(panel)
            if not self._waiting:
                self.maps_painted.emit()
