"""Drawing maps over frames: fixed colour scales, undefined values transparent.

Plain numpy and OpenCV, shared by the command line, headless processing and snapshots.
"""

from __future__ import annotations

import cv2
import numpy as np

ENHANCED_LEVELS = (0.0, 1.0)
"""The enhanced (mean) map is in [0, 1] by construction."""
RISK_LEVELS = (0.0, 1.0)
"""Coefficient of variation shown from 0 to 1; higher values saturate at the top colour."""
ENHANCED_COLORMAP = cv2.COLORMAP_JET
RISK_COLORMAP = cv2.COLORMAP_INFERNO


def to_uint8_gray(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] (H, W) as uint8."""
    return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def colorize(values: np.ndarray, levels: tuple[float, float], colormap: int) -> np.ndarray:
    """(H, W) float values -> (H, W, 3) BGR uint8 on a fixed scale; NaN drawn as black."""
    low, high = levels
    scaled = (np.nan_to_num(values, nan=low) - low) / (high - low)
    return cv2.applyColorMap(to_uint8_gray(scaled), colormap)


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
