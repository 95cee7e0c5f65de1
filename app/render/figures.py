"""Example figures like the paper's Fig. 2: frame | original map | proposed map | risk (CV) map.

Drawn by the evaluation (:mod:`app.evaluate.runner`) on the fixed colour scales of
:mod:`app.render.overlay`, like every other picture of a map.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.render.overlay import ENHANCED_COLORMAP, ENHANCED_LEVELS, RISK_COLORMAP, RISK_LEVELS, blend

__all__ = ["PANEL_SIDE", "TITLE_HEIGHT", "compose_figure"]

PANEL_SIDE = 256
"""Panels are drawn at least this many pixels wide."""
TITLE_HEIGHT = 22


def _titled(panel: np.ndarray, title: str, side: int) -> np.ndarray:
    panel = cv2.resize(panel, (side, side), interpolation=cv2.INTER_LINEAR)
    bar = np.full((TITLE_HEIGHT, side, 3), 255, np.uint8)
    cv2.putText(bar, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def compose_figure(
    image: np.ndarray,
    original: np.ndarray,
    proposed: np.ndarray,
    cv: np.ndarray,
    fov: np.ndarray,
    mask: np.ndarray | None = None,
    titles: tuple[str, str, str, str] = ("frame", "original", "proposed (mean)", "risk (CV)"),
) -> np.ndarray:
    """One row of four panels, BGR uint8.

    Args:
        image: uint8 (S, S) frame.
        original, proposed, cv: (S, S) maps at the frame's size (NaN: undefined, not drawn).
        fov: bool (S, S) field of view; maps are drawn only inside it.
        mask: bool (S, S) ground truth, outlined in green on the frame panel when given.
        titles: the four panel titles.
    """
    gray = image.astype(np.float32) / 255.0
    frame = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if mask is not None:
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(frame, contours, -1, (0, 200, 0), 1)
    panels = [
        frame,
        blend(gray, original, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=fov),
        blend(gray, proposed, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=fov),
        blend(gray, cv, RISK_LEVELS, RISK_COLORMAP, mask=fov),
    ]
    side = max(PANEL_SIDE, image.shape[0])
    return np.hstack([_titled(p, t, side) for p, t in zip(panels, titles, strict=True)])
