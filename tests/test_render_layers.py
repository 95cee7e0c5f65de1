"""Map layers for the viewer's panels: RGBA conversion, lookup tables, grey frames, outlines."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.render.layers import (
    circle_outline,
    colormap_lut,
    frame_to_gray8,
    map_to_rgba,
    mask_outline,
)
from app.render.overlay import ENHANCED_COLORMAP, RISK_COLORMAP, colorize


def test_lut_matches_the_headless_colours() -> None:
    values = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    for colormap in (ENHANCED_COLORMAP, RISK_COLORMAP):
        lut = colormap_lut(colormap)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        rgba = map_to_rgba(values, (0.0, 1.0), lut, 1.0)
        bgr = colorize(values, (0.0, 1.0), colormap)
        np.testing.assert_array_equal(rgba[..., :3], bgr[..., ::-1])


def test_alpha_is_opacity_where_defined_and_zero_where_nan_or_outside_the_fov() -> None:
    values = np.full((6, 6), 0.5, np.float32)
    values[0, 0] = np.nan
    mask = np.ones((6, 6), bool)
    mask[5, :] = False
    rgba = map_to_rgba(values, (0.0, 1.0), colormap_lut(RISK_COLORMAP), 0.4, mask)
    assert rgba.shape == (6, 6, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 3] == 0
    assert (rgba[5, :, 3] == 0).all()
    assert rgba[2, 2, 3] == round(0.4 * 255)


def test_values_outside_the_levels_saturate() -> None:
    lut = colormap_lut(RISK_COLORMAP)
    rgba = map_to_rgba(np.array([[-1.0, 0.0, 1.0, 7.0]], np.float32), (0.0, 1.0), lut, 1.0)
    np.testing.assert_array_equal(rgba[0, 0, :3], lut[0])
    np.testing.assert_array_equal(rgba[0, 3, :3], lut[255])
    np.testing.assert_array_equal(rgba[0, 2, :3], lut[255])


def test_map_to_rgba_refuses_bad_input() -> None:
    lut = colormap_lut(RISK_COLORMAP)
    with pytest.raises(ValueError, match="levels"):
        map_to_rgba(np.zeros((2, 2)), (1.0, 1.0), lut, 0.5)
    with pytest.raises(ValueError, match="mask"):
        map_to_rgba(np.zeros((2, 2)), (0.0, 1.0), lut, 0.5, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="map"):
        map_to_rgba(np.zeros((2, 2, 2)), (0.0, 1.0), lut, 0.5)


@pytest.mark.parametrize(
    "frame",
    [
        np.full((40, 50), 128, np.uint8),
        np.full((40, 50, 1), 128, np.uint8),
        np.full((40, 50, 3), 128, np.uint8),
        np.full((40, 50), 128 * 257, np.uint16),
        np.full((40, 50), 128 / 255, np.float32),
    ],
    ids=["grey8", "one-channel", "bgr", "grey16", "float"],
)
def test_any_source_frame_becomes_grey_uint8(frame: np.ndarray) -> None:
    gray = frame_to_gray8(frame)
    assert gray.shape == (40, 50) and gray.dtype == np.uint8
    assert abs(int(gray[20, 25]) - 128) <= 1


def test_unusable_frames_raise_value_error() -> None:
    with pytest.raises(ValueError):
        frame_to_gray8(np.zeros((40, 50, 2), np.uint8))


def test_outlines() -> None:
    xs, ys = circle_outline(10.0, 20.0, 5.0, points=9)
    assert np.allclose(np.hypot(xs - 10.5, ys - 20.5), 5.0)
    mask = np.zeros((30, 30), np.uint8)
    cv2.circle(mask, (15, 15), 10, 1, -1)
    xs, ys = mask_outline(mask.astype(bool))
    assert len(xs) > 8 and xs[0] == xs[-1] and ys[0] == ys[-1]
    assert 4 <= xs.min() <= 6 and 25 <= xs.max() <= 27
    empty = mask_outline(np.zeros((5, 5), bool))
    assert len(empty[0]) == 0
