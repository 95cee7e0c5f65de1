"""Frames and result maps as image layers for the viewer's panels: plain numpy, no Qt.

The panels (:mod:`app.ui.panels`) draw a grey image and, over it, a map converted to RGBA
here: colours and scaling from the fixed scales of :mod:`app.render.overlay` (so the screen,
every frame and every video compare directly), alpha = the overlay opacity where the map is
defined and 0 where it is undefined (NaN CV) or outside the field of view. Outlines are
polylines in the image's pixel coordinates, where pixel (row r, column c) covers x in
[c, c + 1] and y in [r, r + 1] (pyqtgraph's convention). No Qt is needed to make any of it,
so it lives with the rest of the rendering and is tested without a screen.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.preprocess.field_of_view import FieldOfView, apply_field_of_view, to_gray_float
from app.render.overlay import level_index, to_uint8_gray
from app.render.summary import FrameSummary

__all__ = [
    "circle_outline",
    "colormap_lut",
    "crop_outline",
    "field_of_view_crop",
    "frame_to_gray8",
    "map_to_rgba",
    "mask_outline",
    "summary_fov",
]


def colormap_lut(colormap: int) -> np.ndarray:
    """An OpenCV colour map as a (256, 3) uint8 RGB lookup table."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, colormap).reshape(256, 3)
    return np.ascontiguousarray(bgr[:, ::-1])


def frame_to_gray8(image: np.ndarray) -> np.ndarray:
    """A source frame (grey or colour, 8 or 16 bit, float) as (H, W) uint8 for display.

    Raises:
        ValueError: a frame :func:`app.preprocess.field_of_view.to_gray_float` rejects
            (wrong shape, dtype, non-finite values, too small).
        TypeError: not a numpy array.
    """
    return to_uint8_gray(to_gray_float(image))


def field_of_view_crop(gray: np.ndarray, fov: FieldOfView) -> np.ndarray:
    """A displayed frame cut to the square its model input was made from.

    The crop of :class:`~app.preprocess.model_input.FramePreprocessor` before it resizes:
    ``fov.crop_window()``, zero outside the disc and where the square passes the frame's
    edge, at the frame's own resolution. Every raw panel that follows the field of view (the
    viewer's, the review's, panel videos and exported PNGs) is cut here.

    Args:
        gray: (H, W) uint8, the frame as :func:`frame_to_gray8` shows it.
        fov: the field of view the model input was cut with.

    Returns:
        (side, side) uint8, ``side = fov.crop_window()[2]``.
    """
    return apply_field_of_view(gray, fov, crop=True)


def summary_fov(summary: FrameSummary) -> FieldOfView:
    """The field of view an analysed frame's model input was cut with, from its summary."""
    cx, cy, radius = summary.fov
    return FieldOfView(cx, cy, radius, found=summary.fov_found, source=summary.fov_source)


def map_to_rgba(
    values: np.ndarray,
    levels: tuple[float, float],
    lut: np.ndarray,
    opacity: float,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """A map as an RGBA layer on a fixed colour scale.

    Args:
        values: (H, W) float map; NaN marks undefined pixels.
        levels: (low, high) of the colour scale; values outside saturate.
        lut: (256, 3) uint8 RGB colours from low to high (:func:`colormap_lut`).
        opacity: alpha of the defined pixels, 0 to 1.
        mask: (H, W) bool, where to draw at all (the field of view); None draws everywhere.

    Returns:
        (H, W, 4) uint8 RGBA; alpha 0 where the map is undefined or outside ``mask``.
    """
    if values.ndim != 2:
        raise ValueError(f"a map is (H, W), got shape {values.shape}")
    if mask is not None and mask.shape != values.shape:
        raise ValueError(f"mask {mask.shape} and map {values.shape} differ in size")
    low, high = levels
    if not high > low:
        raise ValueError(f"levels must rise, got {levels}")
    defined = np.isfinite(values)
    if mask is not None:
        defined &= mask
    index = level_index(np.where(defined, values, low), levels)
    rgba = np.empty((*values.shape, 4), np.uint8)
    rgba[..., :3] = lut[index]
    alpha = round(255 * min(max(float(opacity), 0.0), 1.0))
    rgba[..., 3] = np.where(defined, np.uint8(alpha), np.uint8(0))
    return rgba


def circle_outline(
    cx: float, cy: float, radius: float, points: int = 181
) -> tuple[np.ndarray, np.ndarray]:
    """A closed circle through ``points`` points around the pixel centre (cx, cy)."""
    angles = np.linspace(0.0, 2.0 * np.pi, points)
    return cx + 0.5 + radius * np.cos(angles), cy + 0.5 + radius * np.sin(angles)


def crop_outline(
    fov: FieldOfView, size: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The field-of-view circle on :func:`field_of_view_crop`'s square, in its pixels, or
    stretched over an image of ``size`` (H, W, ...) made from that square (the model input)."""
    x0, y0, side = fov.crop_window()
    x, y = circle_outline(fov.cx - x0, fov.cy - y0, fov.radius)
    if size is not None:
        x *= size[1] / side
        y *= size[0] / side
    return x, y


def mask_outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closed outline of the largest region of a boolean mask (empty arrays when none)."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return np.empty(0), np.empty(0)
    points = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) + 0.5
    points = np.vstack([points, points[:1]])
    return points[:, 0], points[:, 1]
