"""Overlays: fixed scales, undefined values and the outside of the field of view left alone."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.overlay import ENHANCED_COLORMAP, blend, colorize


def test_nan_and_outside_mask_show_the_frame_and_defined_pixels_are_coloured() -> None:
    gray = np.full((4, 4), 0.5, np.float32)
    values = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    values[0, 0] = np.nan
    mask = np.ones((4, 4), bool)
    mask[3, 3] = False
    out = blend(gray, values, (0.0, 1.0), ENHANCED_COLORMAP, opacity=0.5, mask=mask)
    grey_pixel = np.array([128, 128, 128], np.uint8)
    assert (out[0, 0] == grey_pixel).all() and (out[3, 3] == grey_pixel).all()
    assert not (out[1, 2] == grey_pixel).all()
    assert out[1, 2, 0] != out[1, 2, 2]  # coloured, not grey


def test_fixed_levels_saturate_rather_than_rescale() -> None:
    low = colorize(np.full((2, 2), 2.0), (0.0, 1.0), ENHANCED_COLORMAP)
    high = colorize(np.full((2, 2), 1.0), (0.0, 1.0), ENHANCED_COLORMAP)
    assert (low == high).all()


def test_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        blend(np.zeros((4, 4)), np.zeros((2, 2)), (0.0, 1.0), ENHANCED_COLORMAP)
