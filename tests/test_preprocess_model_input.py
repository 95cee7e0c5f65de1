"""Tests for app.preprocess.model_input: shapes, normalisation, input formats, the no-FOV path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.preprocess.field_of_view import FieldOfViewTracker
from app.preprocess.model_input import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FramePreprocessor,
    PreprocessConfig,
    PreprocessedFrame,
)

CONFIG = PreprocessConfig(input_size=(64, 80), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def disc_frame(h: int = 168, w: int = 232, value: int = 128, seed: int | None = 0) -> np.ndarray:
    """A uint8 frame: a disc (textured, or constant ``value`` when seed is None) on black."""
    yy, xx = np.mgrid[:h, :w]
    cx, cy, r = (w - 1) / 2, (h - 1) / 2, 0.45 * h
    if seed is None:
        img = np.full((h, w), value, np.float64)
    else:
        rng = np.random.default_rng(seed)
        img = cv2.GaussianBlur(rng.uniform(40, 220, (h, w)), (0, 0), 2)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 > r * r] = 0
    img[h - 12 : h - 4, 4:40] = 255  # a "logo" in the surround
    return img.astype(np.uint8)


def test_shapes_dtypes_and_ranges():
    out = FramePreprocessor(CONFIG)(disc_frame())
    assert isinstance(out, PreprocessedFrame)
    assert out.tensor.shape == (1, 3, 64, 80) and out.tensor.dtype == torch.float32
    assert out.display.shape == (64, 80) and out.display.dtype == np.float32
    assert out.fov_mask.shape == (64, 80) and out.fov_mask.dtype == bool
    assert out.display.min() >= 0.0 and out.display.max() <= 1.0
    assert out.fov.found
    assert (out.display[~out.fov_mask] == 0).all()
    assert 0.6 < out.fov_mask.mean() < 0.9  # the disc in a non-square input: an ellipse
    # The three channels carry the same grey image, each normalised with its own statistics.
    for c in range(3):
        expected = (out.display - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        np.testing.assert_allclose(out.tensor[0, c].numpy(), expected, atol=1e-5)


def test_constant_disc_normalises_to_expected_value():
    config = PreprocessConfig(input_size=(32, 32), mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.1))
    out = FramePreprocessor(config)(disc_frame(value=153, seed=None))  # 153 / 255 = 0.6
    # Away from the rim (where resizing blends the disc with the zeroed surround).
    inner = np.pad(out.fov_mask, 1).astype(np.uint8)
    inner = cv2.erode(inner, np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    assert inner.sum() > 0.5 * out.fov_mask.sum()
    for c, (m, s) in enumerate(zip(config.mean, config.std, strict=True)):
        channel = out.tensor[0, c].numpy()
        np.testing.assert_allclose(channel[inner], (0.6 - m) / s, atol=1e-4)
        np.testing.assert_allclose(channel[~out.fov_mask], (0.0 - m) / s, atol=1e-6)
    # A disc filling its square crop covers about pi/4 of the input.
    assert out.fov_mask.mean() == pytest.approx(np.pi / 4, abs=0.05)


def test_logo_does_not_reach_the_model():
    frame = disc_frame(value=100, seed=None)
    out = FramePreprocessor(PreprocessConfig((48, 48), (0.0,) * 3, (1.0,) * 3))(frame)
    assert out.display.max() == pytest.approx(100 / 255, abs=1e-4)  # the 255 logo is gone


def test_equivalent_inputs_give_the_same_tensor():
    frame = disc_frame(seed=3)
    variants = [
        frame,
        frame[:, :, None],
        cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR),
        frame.astype(np.uint16) * 257,
        np.round(frame * (4095 / 255)).astype(np.uint16),  # 12-bit data in a 16-bit container
        frame.astype(np.float32) / 255,
    ]
    configs = [CONFIG] * 4 + [
        PreprocessConfig(CONFIG.input_size, CONFIG.mean, CONFIG.std, bit_depth=12),
        CONFIG,
    ]
    ref = FramePreprocessor(CONFIG)(frame).tensor
    for variant, config in zip(variants, configs, strict=True):
        tensor = FramePreprocessor(config)(variant).tensor
        torch.testing.assert_close(tensor, ref, atol=1e-3, rtol=0)


def test_without_fov_the_whole_frame_is_resized():
    frame = disc_frame()
    config = PreprocessConfig((42, 58), (0.0,) * 3, (1.0,) * 3, use_fov=False)
    out = FramePreprocessor(config)(frame)
    assert out.fov.source == "disabled" and not out.fov.found
    assert out.fov_mask.all()
    expected = cv2.resize(frame.astype(np.float32) / 255, (58, 42), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(out.display, expected, atol=1e-6)
    assert out.display[-3:, :10].max() > 0.9  # the logo is visible when the FOV is off


def test_odd_sized_frame_and_enlarging():
    frame = disc_frame(h=77, w=101)
    out = FramePreprocessor(PreprocessConfig((224, 224), IMAGENET_MEAN, IMAGENET_STD))(frame)
    assert out.tensor.shape == (1, 3, 224, 224)
    assert out.fov.found
    assert out.fov_mask.mean() == pytest.approx(np.pi / 4, abs=0.05)
    assert (out.display[~out.fov_mask] == 0).all()


def test_batch_and_tracker():
    frames = [disc_frame(seed=s) for s in range(4)]
    tracker = FieldOfViewTracker()
    pre = FramePreprocessor(CONFIG, tracker=tracker)
    batch = pre.preprocess_batch(frames)
    assert batch.shape == (4, 3, 64, 80) and batch.dtype == torch.float32
    assert tracker.detections == 1
    single = FramePreprocessor(CONFIG)(frames[2]).tensor
    torch.testing.assert_close(batch[2:3], single)
    with pytest.raises(ValueError, match="at least one frame"):
        pre.preprocess_batch([])


def test_bad_config_raises():
    with pytest.raises(ValueError, match="std"):
        PreprocessConfig((32, 32), (0.5,) * 3, (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="input_size"):
        PreprocessConfig((0, 32), (0.5,) * 3, (1.0,) * 3)
