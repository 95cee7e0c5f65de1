"""One analysed frame drawn as three panels: raw | enhanced map overlay | risk map overlay.

Used to write videos (headless processing, recordings). Colour scales are the fixed ones of
:mod:`app.overlay`, so frames of one video, and of different videos, compare directly.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.overlay import (
    ENHANCED_COLORMAP,
    ENHANCED_LEVELS,
    RISK_COLORMAP,
    RISK_LEVELS,
    blend,
    to_uint8_gray,
)
from app.pipeline.results import FrameResult
from models.fov import to_gray_float

__all__ = ["MIN_PANEL_HEIGHT", "compose_panels", "header_texts", "panel_headers", "render_panels"]

MIN_PANEL_HEIGHT = 64
_HEADER_COLOUR = (235, 235, 235)
_HEADER_BACKGROUND = (40, 40, 40)


def panel_headers(result: FrameResult, mean_cv: float | None) -> tuple[str, str, str]:
    """The text above each panel of an analysed frame."""
    explanation = result.explanation
    return header_texts(
        source_index=result.source_index,
        source_time=result.source_time,
        method=explanation.method,
        passes=explanation.passes if explanation.mc else None,
        class_name=result.class_name,
        probability=result.probability,
        mean_cv=mean_cv,
    )


def header_texts(
    *,
    source_index: int,
    source_time: float,
    method: str,
    passes: int | None,
    class_name: str,
    probability: float,
    mean_cv: float | None,
) -> tuple[str, str, str]:
    """The text above each panel; ``passes`` None means the original (no MC Dropout)."""
    mc = "original" if passes is None else f"T={passes}"
    cv_text = "-" if mean_cv is None else f"{mean_cv:.2f}"
    return (
        f"raw #{source_index}  {source_time:.2f} s",
        f"{method} {mc}: {class_name} {probability:.2f}",
        f"risk (CV), mean {cv_text}",
    )


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


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
    result: FrameResult,
    height: int | None = None,
    maps: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """raw | enhanced | risk of an analysed frame as one BGR uint8 image (see
    :func:`compose_panels`).

    Args:
        result: the analysed frame.
        height: panel height in pixels; None uses the model input height.
        maps: ``result.maps()`` when the caller has it already.
    """
    mean, cv = result.maps() if maps is None else maps
    headers = panel_headers(result, result.mean_cv_in_fov(cv))
    return compose_panels(result.raw, result.display, result.fov_mask, mean, cv, headers, height)


def compose_panels(
    raw: np.ndarray,
    display: np.ndarray,
    fov_mask: np.ndarray,
    mean: np.ndarray,
    cv: np.ndarray,
    headers: tuple[str, str, str],
    height: int | None = None,
) -> np.ndarray:
    """raw | enhanced | risk as one BGR uint8 image, each panel ``height`` pixels high under
    a one-line header.

    Args:
        raw: the frame as the source delivered it (any layout ``to_gray_float`` accepts).
        display: float32 (H, W) in [0, 1], what the model saw.
        fov_mask: bool (H, W), the field of view at input size.
        mean: the enhanced map at ``display``'s size.
        cv: the risk map at ``display``'s size, NaN where undefined.
        headers: the text above each panel.
        height: panel height in pixels (the raw panel keeps the frame's aspect ratio, the map
            panels are square like the model input); None uses ``display``'s height.

    Returns:
        (height + header, width, 3) uint8; both sides even (video codecs want that).
    """
    height = max(MIN_PANEL_HEIGHT, int(height or display.shape[0]))
    gray = cv2.cvtColor(to_uint8_gray(to_gray_float(raw)), cv2.COLOR_GRAY2BGR)
    enhanced = blend(display, mean, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=fov_mask)
    risk = blend(display, cv, RISK_LEVELS, RISK_COLORMAP, mask=fov_mask)
    header_px = max(14, round(height * 0.08))
    panels = [
        _with_header(_fit_height(image, height), text, header_px)
        for image, text in zip((gray, enhanced, risk), headers, strict=True)
    ]
    image = np.hstack(panels)
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
    return image
