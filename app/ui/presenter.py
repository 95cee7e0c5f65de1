"""Drawing one analysed frame into the panels and readouts, for the live and the review window.

A live result and a recorded frame arrive as the same
:class:`~app.render.summary.FrameSummary` plus the maps at the model's input size, and
:class:`FramePresenter` draws them the same way: the map panels (grey input, FOV outline,
overlays on the fixed scales), the field of view the raw panel is cut to, the map panels'
titles and the prediction readout. What differs stays in each window: the raw panel's frames
(the live one runs at the source rate), the map captions (a live map's age, a recorded frame's
verdict) and the window's own numbers.
"""

from __future__ import annotations

import numpy as np

from app.render.captions import map_titles
from app.render.layers import summary_fov
from app.render.summary import FrameSummary
from app.ui.panels import PanelRow
from app.ui.readout_panel import ReadoutPanel
from app.ui.readouts import Prediction

__all__ = ["FramePresenter"]


class FramePresenter:
    """Fills a window's panels and readouts from an analysed frame (GUI thread only).

    Args:
        panels: the window's raw | enhanced | risk panels.
        readouts: the window's readout column.
    """

    def __init__(self, panels: PanelRow, readouts: ReadoutPanel) -> None:
        self.panels = panels
        self.readouts = readouts

    def show(
        self,
        summary: FrameSummary,
        display: np.ndarray,
        fov_mask: np.ndarray,
        mean: np.ndarray,
        cv: np.ndarray,
        *,
        opacity: float,
        raw_shape: tuple[int, ...],
    ) -> None:
        """Draw an analysed frame.

        Args:
            summary: the frame's numbers.
            display: float (H, W) in [0, 1], what the model saw.
            fov_mask: bool (H, W), the field of view at input size.
            mean: the enhanced map at ``display``'s size.
            cv: the risk map at ``display``'s size, NaN where undefined.
            opacity: overlay opacity, 0 to 1.
            raw_shape: the analysed frame's shape as captured; the raw panel is cut to its
                field of view only while it shows a frame of that size.
        """
        panels = self.panels
        panels.show_maps(display, fov_mask, mean, cv, opacity)
        panels.set_field_of_view(summary_fov(summary), raw_shape, display.shape)
        titles = map_titles(summary)
        for panel, (title, detail) in zip((panels.enhanced, panels.risk), titles, strict=True):
            panel.set_title(title, detail)
        self.readouts.show_prediction(Prediction.of(summary))
