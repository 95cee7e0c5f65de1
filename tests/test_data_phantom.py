"""Tests for the procedural pCLE phantom (models.data.phantom) and its command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.data.phantom import (
    CLASSES,
    PhantomConfig,
    PhantomVideo,
    fov_disc,
    load_masks,
    masks_path,
    render_frame,
    write_dataset,
    write_video,
)

SMALL = PhantomConfig(height=168, width=232)
ROOT = Path(__file__).resolve().parents[1]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


@pytest.mark.parametrize("class_name", CLASSES)
def test_frame_shape_dtype_and_fov(class_name: str) -> None:
    cfg = PhantomConfig(overlay=False)
    frame = render_frame(class_name, seed=3, config=cfg)
    disc = fov_disc(cfg)
    assert frame.image.shape == frame.mask.shape == (336, 464)
    assert frame.image.dtype == np.uint8 and frame.mask.dtype == np.bool_
    assert frame.class_name == class_name and frame.index == 0
    assert not frame.image[~disc].any()
    assert not frame.mask[~disc].any()
    inside = frame.mask[disc].mean()
    assert 0.05 < inside < 0.8, inside
    assert 60 < frame.image[disc].mean() < 150  # real frames: disc mean ~100


def test_disc_matches_config() -> None:
    disc = fov_disc(SMALL)
    radius = np.sqrt(disc.sum() / np.pi)
    assert radius == pytest.approx(SMALL.fov_radius, rel=0.02)
    assert disc[SMALL.height // 2, SMALL.width // 2] and not disc[0, 0]


def test_overlay_only_outside_disc() -> None:
    plain = render_frame("metastasis", seed=1, config=SMALL)
    bare = render_frame("metastasis", seed=1, config=PhantomConfig(168, 232, overlay=False))
    disc = fov_disc(SMALL)
    text = plain.image != bare.image
    assert text.any() and not (text & disc).any()
    rows, cols = np.nonzero(text)
    assert rows.min() > SMALL.height * 0.7  # bottom corners, like the real logo and scale bar
    assert cols.min() < SMALL.width * 0.25 and cols.max() > SMALL.width * 0.75
    np.testing.assert_array_equal(plain.mask, bare.mask)


def test_deterministic_and_seeded() -> None:
    a = PhantomVideo("meningioma", 4, seed=7, config=SMALL)
    b = PhantomVideo("meningioma", 4, seed=7, config=SMALL)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.mask, fb.mask)
    np.testing.assert_array_equal(a[2].image, b[2].image)  # random access, any order
    other = PhantomVideo("meningioma", 4, seed=8, config=SMALL)
    assert not np.array_equal(a[0].image, other[0].image)
    assert not np.array_equal(a[0].mask, other[0].mask)


def test_probe_motion_is_smooth() -> None:
    cfg = PhantomConfig(height=168, width=232, noise=0.0, overlay=False)
    video = PhantomVideo("glioblastoma", 30, seed=2, config=cfg)
    disc = fov_disc(cfg)
    f0, f1, f29 = video[0], video[1], video[29]
    assert not np.array_equal(f0.image, f1.image)
    assert not np.array_equal(f0.mask, f1.mask)
    near, far = _corr(f0.image[disc], f1.image[disc]), _corr(f0.image[disc], f29.image[disc])
    assert near > 0.8 and far < near, (near, far)
    unrelated = render_frame("glioblastoma", seed=99, config=cfg)
    assert _corr(f0.image[disc], unrelated.image[disc]) < 0.3


def _features(image: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """Translation-invariant texture features: radial power spectrum and intensity quantiles."""
    ys, xs = np.nonzero(disc)
    half = int((ys.max() - ys.min()) / (2 * np.sqrt(2)))
    cy, cx = int(ys.mean()), int(xs.mean())
    crop = image[cy - half : cy + half, cx - half : cx + half].astype(np.float64)
    power = np.abs(np.fft.fftshift(np.fft.fft2(crop - crop.mean()))) ** 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - half, xx - half).astype(int)
    radial = np.bincount(r.ravel(), power.ravel()) / np.bincount(r.ravel())
    bands = [radial[lo:hi].mean() for lo, hi in ((1, 3), (3, 6), (6, 10), (10, 16), (16, 26))]
    spectrum = np.log(np.asarray(bands) / sum(bands))
    return np.concatenate([spectrum, np.percentile(crop, [5, 50, 95]) / 255])


def test_classes_are_statistically_distinct() -> None:
    disc = fov_disc(SMALL)

    def feats(class_name: str, seeds: range) -> np.ndarray:
        return np.stack([_features(render_frame(class_name, s, SMALL).image, disc) for s in seeds])

    train = {c: feats(c, range(6)) for c in CLASSES}
    centroids = np.stack([train[c].mean(0) for c in CLASSES])
    # Pooled within-class spread: a diagonal LDA-like metric.
    sd = np.concatenate([train[c] - train[c].mean(0) for c in CLASSES]).std(0) + 1e-9
    centroids = centroids / sd
    for label, class_name in enumerate(CLASSES):
        test = feats(class_name, range(100, 103)) / sd
        pred = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        assert (pred == label).all(), (class_name, pred)


def test_frames_render_fast() -> None:
    video = PhantomVideo("glioblastoma", 20, seed=0)
    video[0]
    start = time.perf_counter()
    for frame in video:
        assert frame.image.shape == (336, 464)
    per_frame = (time.perf_counter() - start) / len(video)
    assert per_frame < 0.05, per_frame  # ~2-5 ms here; generous for slow CI


def test_write_video_round_trip(tmp_path: Path) -> None:
    video = PhantomVideo("metastasis", 5, seed=4, config=SMALL)
    path, mpath = write_video(tmp_path / "sub" / "demo.avi", video)
    assert path.exists() and mpath == masks_path(path) == tmp_path / "sub" / "demo.masks.npz"
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 5
    assert frames[0].shape == (168, 232, 3)
    # Lossless (FFV1) or near-lossless (MJPG fallback), grey stored as 3 equal channels.
    assert np.abs(frames[2][..., 1].astype(int) - video[2].image).mean() < 3
    masks = load_masks(path)
    assert masks.shape == (5, 168, 232) and masks.dtype == np.bool_
    np.testing.assert_array_equal(masks[3], video[3].mask)


def test_write_video_rejects_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_video(tmp_path / "empty.avi", [])


def test_unknown_class() -> None:
    with pytest.raises(ValueError):
        PhantomVideo("astrocytoma", 3)


def test_write_dataset_layout(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, ("glioblastoma", "meningioma"), 2, 3, seed=1, config=SMALL)
    expected = {
        tmp_path / c / f"{c}_{k}.avi" for c in ("glioblastoma", "meningioma") for k in (1, 2)
    }
    assert set(paths) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glioblastoma", "meningioma"]
    for path in paths:
        assert load_masks(path).shape == (3, 168, 232)
    first = load_masks(tmp_path / "meningioma" / "meningioma_1.avi")
    second = load_masks(tmp_path / "meningioma" / "meningioma_2.avi")
    assert not np.array_equal(first, second)


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "phantom"
    args = [sys.executable, "-m", "models.phantom", "--out", str(out)]
    args += ["--classes", "metastasis,meningioma", "--videos-per-class", "1", "--frames", "2"]
    args += ["--size", "96x128", "--seed", "5"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "metastasis_1.avi" in result.stdout
    for c in ("metastasis", "meningioma"):
        cap = cv2.VideoCapture(str(out / c / f"{c}_1.avi"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
        size = (cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        assert size == (96, 128)
        cap.release()
        assert load_masks(out / c / f"{c}_1.avi").shape == (2, 96, 128)

    single = tmp_path / "one.avi"
    args = [sys.executable, "-m", "models.phantom", "--single-video", str(single)]
    args += ["--class", "glioblastoma", "--frames", "3", "--size", "96x128"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    assert str(single) in result.stdout
    assert load_masks(single).shape == (3, 96, 128)

    bad = [sys.executable, "-m", "models.phantom", "--single-video", str(single), "--frames", "1"]
    assert subprocess.run(bad, cwd=ROOT, capture_output=True, text=True).returncode == 2
