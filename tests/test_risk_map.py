"""Does the risk map mark where the explanation is wrong? (:mod:`app.evaluate.risk_map` and
``scripts/risk_map_study.py``)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from app.evaluate.localisation import iou
from app.evaluate.risk_map import (
    FramePixels,
    FrameRisk,
    _pair_counts,
    attribution_error,
    frame_figures,
    has_structure,
    outcome_figures,
    pixel_auroc,
    pixel_figures,
    score_frame,
)
from models.data.phantom import PhantomConfig, write_dataset
from tests.pipeline_support import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _study() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "risk_map_study", ROOT / "scripts" / "risk_map_study.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _square() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4x4 frame: field of view all but the corner (3, 3), mask the top two rows, and a map
    high on row 0 and on (2, 0), exactly at the threshold on (3, 0), just below it on (1, 1)."""
    fov = np.ones((4, 4), bool)
    fov[3, 3] = False
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    map_ = np.zeros((4, 4), np.float32)
    map_[0] = 1.0
    map_[2, 0] = 0.9
    map_[3, 0] = 0.5
    map_[1, 1] = 0.49
    map_[3, 3] = 1.0  # outside the field of view: never an error
    return map_, mask, fov


def test_attribution_error_is_the_symmetric_difference_inside_the_fov() -> None:
    map_, mask, fov = _square()
    error = attribution_error(map_, mask, fov)
    expected = np.zeros((4, 4), bool)
    expected[1] = True  # low attribution inside the mask (row 1, including 0.49)
    expected[2, 0] = expected[3, 0] = True  # high (>= 0.5) outside it
    np.testing.assert_array_equal(error, expected)
    region = (map_ >= 0.5) & fov
    assert 1.0 - iou(map_, mask, fov) == pytest.approx(error.sum() / (region | mask).sum())
    # An undefined (NaN) map pixel counts as not explained, as in the IoU.
    map_[0, 0] = np.nan
    assert attribution_error(map_, mask, fov)[0, 0]


def test_undefined_errors_are_refused_with_their_reason() -> None:
    map_, mask, fov = _square()
    outside = np.zeros((4, 4), bool)
    outside[3, 3] = True
    assert not has_structure(outside, fov)
    with pytest.raises(ValueError, match="no pixel inside the field of view"):
        attribution_error(map_, outside, fov)
    with pytest.raises(ValueError, match="field of view is empty"):
        attribution_error(map_, mask, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="one shape"):
        attribution_error(map_, mask[:3], fov)


def test_pixel_auroc() -> None:
    rng = np.random.default_rng(0)
    error = rng.random(20_000) < 0.3
    assert pixel_auroc(np.where(error, 2.0, 1.0) + rng.random(error.size) * 0.1, error) == 1.0
    assert pixel_auroc(rng.random(error.size), error) == pytest.approx(0.5, abs=0.02)
    assert pixel_auroc(np.full(error.size, 0.3), error) == 0.5  # flat: ties count one half
    assert pixel_auroc(rng.random(10), np.zeros(10, bool)) is None  # no error pixel
    assert pixel_auroc(rng.random(10), np.ones(10, bool)) is None  # no correct pixel
    with pytest.raises(ValueError, match="NaN"):
        pixel_auroc(np.array([0.1, np.nan]), np.array([True, False]))
    # Differences far below float32 resolution near 0.5 still rank (no rounding to ties).
    assert pixel_auroc(np.array([1e-3, 1e-3 + 1e-12]), np.array([False, True])) == 1.0


def test_score_frame_excludes_and_counts_undefined_cv() -> None:
    map_, mask, fov = _square()
    error = attribution_error(map_, mask, fov)
    cv = np.where(error, 0.9, 0.1).astype(np.float32)
    cv[0, 1] = cv[1, 2] = np.nan  # one correct, one error pixel left out
    risk = score_frame("a/v", 3, map_, cv, mask, fov)
    assert risk.pixels.undefined == 2 and risk.pixels.cv.size == fov.sum() - 2
    assert risk.auroc == 1.0
    assert risk.mean_cv == pytest.approx(np.nanmean(np.where(fov, cv, np.nan)))
    assert risk.pointing == 1.0 and risk.iou == pytest.approx(iou(map_, mask, fov))
    # Flat CV: chance.
    assert score_frame("a/v", 3, map_, np.full((4, 4), 0.2), mask, fov).auroc == 0.5
    # An all-zero map: the engine leaves CV undefined everywhere; nothing to score.
    empty = score_frame("a/v", 3, np.zeros((4, 4)), np.full((4, 4), np.nan), mask, fov)
    assert empty.auroc is None and empty.mean_cv is None
    assert empty.pixels.cv.size == 0 and empty.pixels.undefined == fov.sum()


def _frame(recording: str, index: int, cv: np.ndarray, error: np.ndarray, **kw: float) -> FrameRisk:
    pixels = FramePixels(cv, np.where(error, 0.2, 0.8), error, 0)
    auroc = pixel_auroc(cv, error) if error.any() and not error.all() else None
    return FrameRisk(recording, index, kw.get("mean_cv", float(cv.mean())), auroc,
                     kw.get("iou", 0.5), kw.get("pointing", 1.0), pixels)  # fmt: skip


def test_pixel_figures_pool_over_frames_with_intervals_over_recordings() -> None:
    rng = np.random.default_rng(1)
    frames = []
    for k in range(6):
        error = rng.random(500) < 0.4
        cv = rng.random(500) + 0.3 * error * (k % 3)  # informative in some recordings only
        frames.append(_frame(f"c/v{k % 3}", k, cv, error))
    out = pixel_figures(frames, bootstrap=200, seed=0)
    cv = np.concatenate([f.pixels.cv for f in frames])
    error = np.concatenate([f.pixels.error for f in frames])
    assert out["pooled"]["value"] == pytest.approx(pixel_auroc(cv, error))
    # The bootstrap's pair counts give the same AUROC on the sample itself.
    rid = np.repeat(np.arange(6) % 3, 500)
    wins, pos, neg = _pair_counts(cv, error, rid, 3)
    assert wins.sum() / (pos.sum() * neg.sum()) == pytest.approx(out["pooled"]["value"])
    assert out["pooled"]["low"] <= out["pooled"]["value"] <= out["pooled"]["high"]
    assert out["per_frame_mean"]["value"] == pytest.approx(np.mean([f.auroc for f in frames]))
    assert out["frames"] == 6 and out["recordings"] == 3 and out["pixels"]["scored"] == 3000
    # Here every error pixel has map 0.2: no error among the explained pixels.
    assert math.isnan(out["within_explained"]["value"])
    assert out["within_unexplained"]["value"] is not None
    # One recording: every resample is the sample, the interval collapses.
    one = pixel_figures(frames[:1], bootstrap=20)
    assert one["pooled"]["low"] == one["pooled"]["high"] == pytest.approx(one["pooled"]["value"])
    with pytest.raises(ValueError, match="no frame"):
        pixel_figures([])


def test_frame_figures() -> None:
    error = np.array([True, False, False, True])
    cv = np.array([0.4, 0.1, 0.2, 0.3])
    frames = [
        _frame(f"c/v{k % 3}", k, cv, error, mean_cv=0.1 * k, iou=1.0 - 0.1 * k,
               pointing=float(k < 3))
        for k in range(6)
    ]  # fmt: skip
    out = frame_figures(frames, bootstrap=50)
    assert out["spearman_iou"]["value"] == pytest.approx(-1.0)
    assert out["spearman_pointing"]["value"] < 0
    hits = out["pointing"]
    assert hits["frames_miss"] == 3 and hits["frames_hit"] == 3
    assert hits["difference_miss_minus_hit"]["value"] == pytest.approx(0.3)
    assert hits["auroc_miss"]["value"] == 1.0


def test_outcome_figures() -> None:
    out = outcome_figures(
        [0.5, 0.1, None, 0.4, 0.2], [True, False, False, True, False], ["a", "a", "a", "b", "b"],
        bootstrap=30,
    )  # fmt: skip
    assert out["frames"] == 5 and out["frames_without_mean_cv"] == 1
    assert out["frames_wrong"] == 2 and out["frames_right"] == 2
    assert out["mean_cv_wrong"]["value"] == pytest.approx(0.45)
    assert out["auroc_wrong"]["value"] == 1.0
    assert out["per_recording"]["a"] == {
        "frames": 3, "wrong": 1, "mean_cv_wrong": 0.5, "mean_cv_right": pytest.approx(0.1)
    }  # fmt: skip
    with pytest.raises(ValueError, match="one entry per frame"):
        outcome_figures([0.1], [True, False], ["a"])


def test_study_script_on_a_tiny_phantom(tmp_path: Path) -> None:
    study = _study()
    classes = ["glioblastoma", "meningioma"]
    data = tmp_path / "data"
    write_dataset(
        data, classes, videos_per_class=2, frames_per_video=6, config=PhantomConfig(96, 128)
    )
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", classes=classes)
    held = ["glioblastoma/glioblastoma_2.avi", "meningioma/meningioma_2.avi"]
    report = study.phantom_study(
        checkpoint, data, recordings=held, passes=3, every_k=3, bootstrap=20
    )
    assert report["recordings"] == held and report["frames_loaded"] == 4
    for method in ("gradcam++", "reciprocam"):
        m = report["methods"][method]
        assert m["pixels"]["frames"] + report["frames_without_mask_in_fov"] == 4
        assert m["pixels"]["recordings"] == 2 and 0.0 <= m["frame_accuracy"] <= 1.0
        assert "pooled" in m["pixels"] and "spearman_iou" in m["frames"]
        assert sorted(m["by_class"]) == classes
    # The checkpoint names no held-out recordings: the study says so instead of guessing.
    with pytest.raises(ValueError, match="names no held-out recordings"):
        study.phantom_study(checkpoint, data, passes=2)

    # The command: the real part (labelled videos; phantom ones stand in) alone, and skipped.
    out = tmp_path / "out"
    args = ["--out", str(out), "--passes", "2", "--every-k", "3", "--bootstrap", "10"]
    real = ["--real-checkpoint", str(checkpoint), "--real-data", str(data)]
    assert study.main([*args, "--skip-phantom", *real, "--recordings", ",".join(held)]) == 0
    written = json.loads((out / "risk_map_study.json").read_text())
    assert "phantom" not in written and written["real"]["frames"] == 4
    per_recording = written["real"]["methods"]["gradcam++"]["per_recording"]
    assert sorted(per_recording) == held
    assert study.main([*args, "--skip-phantom"]) == 0
    assert json.loads((out / "risk_map_study.json").read_text())["real"] is None
    assert study.main([*args, "--skip-phantom", "--real-data", str(data)]) == 2
