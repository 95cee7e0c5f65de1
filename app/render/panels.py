"""One analysed frame drawn as three panels: raw | enhanced map overlay | risk map overlay.

Used to write panel videos (headless processing, clip exports) and exported PNGs. Colour
scales are the fixed ones of :mod:`app.render.overlay`, so frames of one video, and of
different videos, compare directly; the headers are :func:`app.render.captions.panel_headers`.
As in the viewer, the raw panel shows the field of view the model input was cut from, at the
map panels' size, so a point is the same tissue in all three; the whole frame on request.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.preprocess.field_of_view import FieldOfView
from app.render.captions import panel_headers
from app.render.layers import field_of_view_crop, frame_to_gray8, summary_fov
from app.render.overlay import (
    ENHANCED_COLORMAP,
    ENHANCED_LEVELS,
    RISK_COLORMAP,
    RISK_LEVELS,
    blend,
)
from app.render.summary import FrameSummary

__all__ = ["MIN_PANEL_HEIGHT", "compose_panels", "render_panels"]

MIN_PANEL_HEIGHT = 64
_HEADER_COLOUR = (235, 235, 235)
_HEADER_BACKGROUND = (40, 40, 40)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    interp = cv2.INTER_AREA if height <= h and width <= w else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    return _resize(image, height, max(1, round(w * height / h)))


def _with_header(panel: np.ndarray, text: str, header_px: int) -> np.ndarray:
    h, w = panel.shape[:2]
    out = np.empty((h + header_px, w, 3), np.uint8)
    out[:header_px] = _HEADER_BACKGROUND
    out[header_px:] = panel
    scale = header_px / 36.0
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    if width > w - 6:  # shrink a long header to its panel rather than run into the next one
        scale *= max(0.4, (w - 6) / width)
    baseline = header_px - max(2, header_px // 4)
    cv2.putText(
        out,
        text,
        (3, baseline),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        _HEADER_COLOUR,
        1,
        cv2.LINE_AA,
    )
    return out


def render_panels(
    summary: FrameSummary,
    raw: np.ndarray,
    display: np.ndarray,
    fov_mask: np.ndarray,
    mean: np.ndarray,
    cv: np.ndarray,
    height: int | None = None,
    *,
    whole_frame: bool = False,
) -> np.ndarray:
    """raw | enhanced | risk of an analysed frame under its headers, as one BGR uint8 image.

    Args:
        summary: the frame's numbers (for the headers, and the field of view the raw panel is
            cut to).
        raw, display, fov_mask, mean, cv, height: as for :func:`compose_panels`.
        whole_frame: show the whole frame in the raw panel instead of its field of view.

    Returns:
        See :func:`compose_panels`.
    """
    fov = None if whole_frame else summary_fov(summary)
    return compose_panels(raw, display, fov_mask, mean, cv, panel_headers(summary), height, fov=fov)


def compose_panels(
    raw: np.ndarray,
    display: np.ndarray,
    fov_mask: np.ndarray,
    mean: np.ndarray,
    cv: np.ndarray,
    headers: tuple[str, str, str],
    height: int | None = None,
    *,
    fov: FieldOfView | None = None,
) -> np.ndarray:
    """raw | enhanced | risk as one BGR uint8 image, each panel ``height`` pixels high under
    a one-line header.

    Args:
        raw: the frame as the source delivered it (any layout
            :func:`~app.render.layers.frame_to_gray8` accepts).
        display: float32 (H, W) in [0, 1], what the model saw.
        fov_mask: bool (H, W), the field of view at input size.
        mean: the enhanced map at ``display``'s size.
        cv: the risk map at ``display``'s size, NaN where undefined.
        headers: the text above each panel.
        height: panel height in pixels (the map panels keep the model input's aspect ratio);
            None uses ``display``'s height.
        fov: the field of view ``display`` was cut with: the raw panel shows that square
            (:func:`~app.render.layers.field_of_view_crop`) at the map panels' size; None
            shows the whole frame at their height, in its own aspect ratio.

    Returns:
        (height + header, width, 3) uint8; both sides even (video codecs want that).
    """
    height = max(MIN_PANEL_HEIGHT, int(height or display.shape[0]))
    enhanced = _fit_height(
        blend(display, mean, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=fov_mask), height
    )
    risk = _fit_height(blend(display, cv, RISK_LEVELS, RISK_COLORMAP, mask=fov_mask), height)
    gray = frame_to_gray8(raw)
    if fov is None:
        gray = _fit_height(gray, height)
    else:
        gray = _resize(field_of_view_crop(gray, fov), *enhanced.shape[:2])
    header_px = max(14, round(height * 0.08))
    panels = [
        _with_header(image, text, header_px)
        for image, text in zip(
            (cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), enhanced, risk), headers, strict=True
        )
    ]
    image = np.hstack(panels)
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
    return image
