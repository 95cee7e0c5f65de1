"""Maps drawn over frames: the fixed colour scales, and undefined values left transparent.

Plain numpy and OpenCV. Every picture of a map (panel videos, snapshots, exports, evaluation
figures, the viewer's RGBA layers in :mod:`app.render.layers`) takes its colours and its
value-to-colour scaling from here, so a colour means the same value everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "ENHANCED_COLORMAP",
    "ENHANCED_LEVELS",
    "RISK_COLORMAP",
    "RISK_LEVELS",
    "blend",
    "colorize",
    "level_index",
    "to_uint8_gray",
]

ENHANCED_LEVELS = (0.0, 1.0)
"""The enhanced (mean) map is in [0, 1] by construction."""
RISK_LEVELS = (0.0, 1.0)
"""Coefficient of variation shown from 0 to 1; higher values saturate at the top colour."""
ENHANCED_COLORMAP = cv2.COLORMAP_JET
RISK_COLORMAP = cv2.COLORMAP_INFERNO


def to_uint8_gray(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] (H, W) as uint8."""
    return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def level_index(values: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Map values to colour-table indices on a fixed scale.

    Args:
        values: float map; the caller replaces undefined values first (they would count as 0).
        levels: (low, high): low gets index 0, high 255; values outside saturate.

    Returns:
        uint8 indices of ``values``' shape.
    """
    low, high = levels
    return to_uint8_gray((values - low) / (high - low))


def colorize(values: np.ndarray, levels: tuple[float, float], colormap: int) -> np.ndarray:
    """(H, W) float values -> (H, W, 3) BGR uint8 on a fixed scale; NaN drawn as black."""
    return cv2.applyColorMap(level_index(np.nan_to_num(values, nan=levels[0]), levels), colormap)


def blend(
    gray: np.ndarray,
    values: np.ndarray,
    levels: tuple[float, float],
    colormap: int,
    opacity: float = 0.5,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Overlay a map on a grey frame.

    Args:
        gray: (H, W) frame in [0, 1].
        values: (H, W) map at the frame's size; NaN (undefined) shows the frame alone.
        levels: the colour scale (values outside saturate).
        colormap: an OpenCV colour map.
        opacity: weight of the colour where the map is drawn.
        mask: (H, W) bool, where to draw at all (e.g. the field of view); None draws everywhere.

    Returns:
        (H, W, 3) BGR uint8.
    """
    if gray.shape != values.shape:
        raise ValueError(f"frame {gray.shape} and map {values.shape} differ in size")
    base = cv2.cvtColor(to_uint8_gray(gray), cv2.COLOR_GRAY2BGR)
    colour = colorize(values, levels, colormap)
    drawn = ~np.isnan(values)
    if mask is not None:
        drawn &= mask
    mixed = cv2.addWeighted(base, 1.0 - opacity, colour, opacity, 0.0)
    return np.where(drawn[..., None], mixed, base)
