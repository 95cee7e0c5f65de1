"""Tests for app.preprocess.field_of_view: detection, fallbacks, input validation, masking,
tracking."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import app.preprocess.field_of_view as fov_module
from app.preprocess.field_of_view import (
    FieldOfView,
    FieldOfViewTracker,
    apply_field_of_view,
    find_field_of_view,
    has_signal,
    to_gray_float,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pcle-brain"
OVERLAY = 255  # only the burned-in text and bar have this value; the disc stays below it


def make_frame(
    h: int = 336,
    w: int = 464,
    cx: float = 231.0,
    cy: float = 167.0,
    r: float = 150.0,
    seed: int = 0,
    dark_fraction: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic pCLE-like uint8 frame and the boolean mask of its burned-in overlays.

    A textured disc (smooth random blobs) with near-black patches covering about
    ``dark_fraction`` of it (some on the rim), on a black surround, with text bottom left and a
    scale bar with a label bottom right, both outside the disc.
    """
    rng = np.random.default_rng(seed)
    noise = rng.random((h // 8 + 2, w // 8 + 2)).astype(np.float32)
    texture = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    texture = cv2.GaussianBlur(texture, (0, 0), 3.0)
    img = np.clip(40 + 180 * texture + rng.normal(0, 6, (h, w)), 20, 230)
    yy, xx = np.mgrid[:h, :w]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    dark = np.zeros((h, w), bool)
    while (dark & disc).sum() < dark_fraction * disc.sum():
        ang = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0.3, 1.0) * r
        pr = rng.uniform(0.12, 0.3) * r
        px, py = cx + dist * math.cos(ang), cy + dist * math.sin(ang)
        dark |= (xx - px) ** 2 + (yy - py) ** 2 <= pr * pr
    img[dark] = rng.uniform(1, 3, int(dark.sum()))
    img[~disc] = 0
    frame = img.astype(np.uint8)

    overlay = np.zeros((h, w), np.uint8)
    cv2.putText(overlay, "Cellvizio", (6, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1)
    cv2.rectangle(overlay, (w - 60, h - 34), (w - 30, h - 31), 255, -1)
    cv2.putText(overlay, "20 um", (w - 75, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1)
    overlay_mask = overlay > 0
    near_disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= (r + 3) ** 2
    assert not (overlay_mask & near_disc).any(), "test setup: overlay must lie outside the disc"
    frame[overlay_mask] = OVERLAY
    return frame, overlay_mask


CASES = [
    (231.0, 167.0, 150.0),
    (200.5, 160.0, 120.0),
    (260.0, 175.5, 100.0),
    (231.0, 168.0, 166.0),  # touches the top and bottom edges, like real Cellvizio frames
    (215.0, 150.0, 135.0),
]


@pytest.mark.parametrize(("cx", "cy", "r"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_detects_disc_with_dark_tissue_and_overlays(cx: float, cy: float, r: float, seed: int):
    frame, _ = make_frame(cx=cx, cy=cy, r=r, seed=seed)
    fov = find_field_of_view(frame)
    assert fov.found and fov.source == "detected"
    assert math.hypot(fov.cx - cx, fov.cy - cy) <= 2.0
    assert abs(fov.radius - r) <= 0.02 * r


def test_input_formats_give_the_same_fov():
    frame8, _ = make_frame(cx=220.0, cy=160.0, r=140.0, seed=3)
    variants = {
        "gray_u8": frame8,
        "gray_u8_hw1": frame8[:, :, None],
        "bgr_u8": cv2.cvtColor(frame8, cv2.COLOR_GRAY2BGR),
        "bgra_u8": cv2.cvtColor(frame8, cv2.COLOR_GRAY2BGRA),
        "gray_u16": frame8.astype(np.uint16) * 257,
        "bgr_u16": cv2.cvtColor(frame8.astype(np.uint16) * 257, cv2.COLOR_GRAY2BGR),
        "gray_f32": frame8.astype(np.float32) / 255,
        "gray_f64": frame8.astype(np.float64) / 255,
    }
    ref = find_field_of_view(frame8)
    for name, frame in variants.items():
        fov = find_field_of_view(frame)
        assert fov.found, name
        assert (fov.cx, fov.cy, fov.radius) == pytest.approx((ref.cx, ref.cy, ref.radius), abs=0.05)
        np.testing.assert_allclose(to_gray_float(frame), frame8 / 255.0, atol=1e-6, err_msg=name)


def test_to_gray_float_scaling_and_bool():
    twelve_bit = np.full((20, 20), 4095, np.uint16)
    assert to_gray_float(twelve_bit).max() == pytest.approx(4095 / 65535)  # container maximum
    assert to_gray_float(twelve_bit, bit_depth=12).max() == pytest.approx(1.0)
    flags = np.zeros((20, 20), bool)
    flags[5, 5] = True
    out = to_gray_float(flags)
    assert out.dtype == np.float32 and out[5, 5] == 1.0 and out.sum() == 1.0
    assert to_gray_float(np.full((20, 20), 1.5)).max() == 1.0  # floats are clipped to [0, 1]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((0, 32), np.uint8), "empty"),
        (np.zeros((32, 32, 3, 1), np.uint8), "ndim=4"),
        (np.zeros((32, 32, 2), np.uint8), "channel count 2"),
        (np.zeros((32, 32), np.int32), "unsupported dtype int32"),
        (np.full((32, 32), np.nan, np.float32), "non-finite"),
        (np.zeros((8, 40), np.uint8), "too small"),
    ],
)
def test_bad_inputs_raise(frame: np.ndarray, message: str):
    with pytest.raises(ValueError, match=message):
        to_gray_float(frame)
    with pytest.raises(ValueError, match=message):
        find_field_of_view(frame)


@pytest.mark.parametrize("crop", [True, False])
def test_apply_removes_overlays(crop: bool):
    frame, overlay = make_frame(cx=225.0, cy=165.0, r=150.0, seed=4)
    assert overlay.sum() > 100
    fov = find_field_of_view(frame)
    out = apply_field_of_view(frame, fov, crop=crop)
    assert out.dtype == frame.dtype
    assert not (out == OVERLAY).any()  # no pixel of the text or bar survives
    disc = fov.mask(frame.shape)
    assert not (disc & overlay).any()
    # The output holds exactly the disc's pixels: nothing lost, nothing added.
    assert int(out.sum(dtype=np.int64)) == int(frame[disc].sum(dtype=np.int64))
    if crop:
        side = math.ceil(2 * fov.radius - 1e-6)
        assert out.shape == (side, side)


def test_crop_is_square_centred_and_padded():
    frame = np.full((100, 120, 3), 200, np.uint8)
    fov = FieldOfView(cx=10.5, cy=50.5, radius=30.0)  # extends 20 px past the left edge
    out = apply_field_of_view(frame, fov)
    assert out.shape == (60, 60, 3)
    assert fov.crop_window() == (-19, 21, 60)
    centre = (out.shape[0] - 1) / 2  # the disc centre maps to the crop's centre
    yy, xx = np.mgrid[:60, :60]
    inside = (xx - centre) ** 2 + (yy - centre) ** 2 <= 30.0**2
    beyond_frame = xx < 19  # crop columns left of frame column 0: zero padding
    assert (out[inside & ~beyond_frame] == 200).all()
    assert (out[~inside | beyond_frame] == 0).all()
    assert fov.bbox(frame.shape) == (0, 21, 41, 81)


def test_black_frame_falls_back_to_inscribed_circle():
    fov = find_field_of_view(np.zeros((120, 200), np.uint8))
    assert not fov.found and fov.source == "no_signal"
    assert (fov.cx, fov.cy, fov.radius) == (99.5, 59.5, 60.0)


@pytest.mark.parametrize("kind", ["texture", "uniform"])
def test_frame_without_surround_masks_nothing(kind: str):
    rng = np.random.default_rng(7)
    if kind == "texture":
        frame = cv2.GaussianBlur(rng.uniform(30, 250, (120, 200)), (0, 0), 2).astype(np.uint8)
        frame[40:60, 50:90] = 0  # a dark object inside the image is not a surround
    else:
        frame = np.full((120, 200), 128, np.uint8)
    fov = find_field_of_view(frame)
    assert not fov.found and fov.source == "no_surround"
    assert fov.radius == pytest.approx(math.hypot(120, 200) / 2)
    assert fov.mask(frame.shape).all()
    assert (apply_field_of_view(frame, fov, crop=False) == frame).all()


def test_tracker_caches_and_redetects_on_size_change(monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[int, ...]] = []
    real = fov_module.find_field_of_view

    def counting(frame: np.ndarray) -> FieldOfView:
        calls.append(frame.shape)
        return real(frame)

    monkeypatch.setattr(fov_module, "find_field_of_view", counting)
    frame, _ = make_frame(seed=5)
    tracker = FieldOfViewTracker()
    fovs = [tracker.update(frame) for _ in range(10)]
    assert len(calls) == 1
    assert all(f is fovs[0] for f in fovs) and fovs[0].found
    small = cv2.resize(frame, (232, 168), interpolation=cv2.INTER_AREA)
    fov_small = tracker.update(small)
    assert len(calls) == 2 and calls[-1] == small.shape
    assert fov_small.radius == pytest.approx(fovs[0].radius / 2, rel=0.03)


def test_tracker_period_smoothing_and_fallbacks():
    base = FieldOfView(100.0, 80.0, 60.0)
    script = [
        base,
        FieldOfView(101.0, 80.0, 60.0),  # jitter: blended in
        FieldOfView.inscribed((160, 200), "no_disc"),  # no disc seen: keeps the detected FOV
        FieldOfView(140.0, 80.0, 40.0),  # a jump: not trusted until confirmed...
        FieldOfView(140.5, 80.0, 40.0),  # ...by the next detection
    ]
    tracker = FieldOfViewTracker(redetect_every=3, smoothing=0.5, detector=lambda _: script.pop(0))
    frame = np.full((160, 200), 128, np.uint8)
    out = [tracker.update(frame) for _ in range(11)]
    assert tracker.detections == 5  # frames 0, 3, 6, 9 and 10 (the confirmation)
    assert out[0] == out[2] == base
    assert out[3].cx == pytest.approx(100.5) and out[3].found
    assert out[6] is out[3]  # fallback ignored
    assert out[9] is out[3]  # unconfirmed jump ignored
    assert (out[10].cx, out[10].radius) == (140.5, 40.0)


def test_the_tracker_marks_every_black_frame_whether_it_detects_or_not() -> None:
    tracker = FieldOfViewTracker(redetect_every=4)
    disc = np.zeros((160, 200), np.uint8)
    cv2.circle(disc, (100, 80), 60, 180, -1)
    black = np.zeros_like(disc)
    frames = [disc, disc, black, disc, black, disc]  # detections at 0 and 4 (black)
    out = [tracker.update(frame) for frame in frames]
    assert tracker.detections == 2
    assert [fov.source for fov in out] == [
        "detected",
        "detected",
        "no_signal",
        "detected",
        "no_signal",
        "detected",
    ]
    assert [fov.found for fov in out] == [True, True, False, True, False, True]
    assert all(fov.radius == pytest.approx(out[0].radius, rel=0.05) for fov in out)  # same disc
    assert has_signal(disc) and not has_signal(black)
    assert has_signal(np.dstack([disc] * 3)) and not has_signal(black.astype(np.float32))


def _read_frame(path: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(index + 1):
            ok, frame = cap.read()
            assert ok, f"cannot read frame {index} of {path}"
    finally:
        cap.release()
    return frame


def _real_videos() -> list[Path]:
    videos = []
    for cls in ("glioblastoma", "meningioma"):
        videos += sorted((DATA_DIR / cls).glob("*.mpg"))[:3]
    return videos


@pytest.mark.realdata
@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="real pCLE data (../shared/data) not present")
@pytest.mark.parametrize("video", _real_videos() or [None], ids=lambda p: getattr(p, "stem", "-"))
def test_real_frames_fov_hides_logo_and_scale_bar(video: Path | None):
    if video is None:
        pytest.skip("no videos in the real data folder")
    frame = _read_frame(video, 10)
    h, w = frame.shape[:2]
    fov = find_field_of_view(frame)
    assert fov.found
    assert 0.45 * h <= fov.radius <= 0.52 * h  # Cellvizio: about 165 px of 336
    assert abs(fov.cx - (w - 1) / 2) < 0.03 * w and abs(fov.cy - (h - 1) / 2) < 0.03 * h

    gray = frame[:, :, 0]
    disc = fov.mask(frame.shape)
    yy, xx = np.mgrid[:h, :w]
    bottom_corners = (yy > 0.85 * h) & ((xx < 0.25 * w) | (xx > 0.7 * w))
    overlay = (gray > 40) & ~disc & bottom_corners
    assert overlay.sum() > 300  # the logo and the scale bar are there ...
    far = (xx - fov.cx) ** 2 + (yy - fov.cy) ** 2 > (fov.radius + 8) ** 2
    assert (overlay & far).sum() >= 0.95 * overlay.sum()  # ... well clear of the disc
    # Apart from them, all bright content lies within the disc (it is not too small).
    assert ((gray > 40) & ~disc & ~bottom_corners).sum() <= 0.001 * disc.sum()

    masked = apply_field_of_view(frame, fov, crop=False)
    assert not masked[~disc].any()
    assert not masked[overlay].any()
    cropped = apply_field_of_view(frame, fov)
    assert int(cropped.sum(dtype=np.int64)) == int(frame[disc].sum(dtype=np.int64))


@pytest.mark.parametrize("shape", [(16, 16), (17, 40), (96, 128), (2160, 3840)])
def test_has_signal_on_any_frame_size(shape: tuple[int, int]) -> None:
    frame = np.zeros(shape, np.uint16)
    assert not has_signal(frame)
    band = max(1, shape[0] // 20)
    frame[shape[0] // 2 - band : shape[0] // 2 + band, :] = 40000  # a bright band of tissue
    assert has_signal(frame)
