"""Tests for the training data pipeline: layout discovery, video-level splits, frame sampling,
the decode cache, bad files, the frame Dataset and the batched augmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import models.data.frame_cache as frame_cache
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from models.data.augment import AugmentConfig, augment, disc_mask, normalize
from models.data.frame_cache import (
    FrameCache,
    FrameSampling,
    UnreadableRecording,
    decode_recording,
)
from models.data.frame_dataset import FrameDataset
from models.data.index import DatasetError, Recording, discover
from models.data.phantom import (
    PhantomConfig,
    PhantomFrame,
    PhantomVideo,
    write_dataset,
    write_video,
)
from models.data.splits import kfold_splits, split_train_val

SMALL = PhantomConfig(height=96, width=128)
SIZE = 32


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 classes x 3 phantom videos x 8 frames of 96x128 (plus the phantom's .masks.npz)."""
    root = tmp_path_factory.mktemp("phantom")
    write_dataset(root, ("glioblastoma", "meningioma"), 3, 8, seed=1, config=SMALL)
    return root


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    """Write grey uint8 frames as a lossless .avi."""
    items = (
        PhantomFrame(f, np.zeros(f.shape, bool), "glioblastoma", i) for i, f in enumerate(frames)
    )
    return write_video(path, items)[0]


def _phantom_frames(n: int, config: PhantomConfig = SMALL, seed: int = 0) -> list[np.ndarray]:
    return [frame.image for frame in PhantomVideo("meningioma", n, seed, config)]


def _recording(*paths: Path, label: int = 0) -> Recording:
    return Recording(f"c/{paths[0].name}", "c", label, tuple(paths))


# ------------------------------------------------------------------------------ discovery


def test_discover_videos_patient_folders_and_loose_images(tmp_path: Path) -> None:
    frames = _phantom_frames(3)
    _write(tmp_path / "b_class" / "v1.avi", frames)
    _write(tmp_path / "b_class" / "V2.AVI", frames)
    (tmp_path / "b_class" / "v1.masks.npz").write_bytes(b"not media")
    (tmp_path / "b_class" / ".hidden.avi").write_bytes(b"ignored")
    patient = tmp_path / "a_class" / "patient7"
    patient.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(patient / f"img{i}.png"), frame)
    cv2.imwrite(str(tmp_path / "a_class" / "loose1.png"), frames[0])
    cv2.imwrite(str(tmp_path / "a_class" / "loose2.tif"), frames[1])
    (tmp_path / "README.md").write_text("a note next to the class folders")
    (tmp_path / ".cache").mkdir()

    index = discover(tmp_path)

    assert index.class_names == ("a_class", "b_class")
    names = {r.name: r for r in index.recordings}
    assert set(names) == {
        "a_class/loose1.png",
        "a_class/loose2.tif",
        "a_class/patient7",
        "b_class/V2.AVI",
        "b_class/v1.avi",
    }
    assert [p.name for p in names["a_class/patient7"].paths] == ["img0.png", "img1.png", "img2.png"]
    assert names["b_class/v1.avi"].label == 1 and names["a_class/loose1.png"].label == 0
    assert index.counts() == {"a_class": 3, "b_class": 2}


def test_discover_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        discover(tmp_path / "missing")
    _write(tmp_path / "only_class" / "v.avi", _phantom_frames(2))
    with pytest.raises(DatasetError, match=r"one folder per class .*found 1"):
        discover(tmp_path)
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "notes.txt").write_text("no media here")
    with pytest.raises(DatasetError, match=r"class folder .*empty_class holds no videos or images"):
        discover(tmp_path)


def test_videos_directly_in_root_get_a_hint(tmp_path: Path) -> None:
    _write(tmp_path / "v.avi", _phantom_frames(2))
    with pytest.raises(DatasetError, match="folder named after the class"):
        discover(tmp_path)


# --------------------------------------------------------------------------------- splits


def _recordings(per_class: dict[str, int]) -> list[Recording]:
    return [
        Recording(f"{c}/{c}_{k}.avi", c, label, (Path(f"/x/{c}_{k}.avi"),))
        for label, (c, n) in enumerate(per_class.items())
        for k in range(n)
    ]


def test_split_is_by_recording_stratified_and_seeded() -> None:
    recs = _recordings({"gbm": 9, "men": 11})
    split = split_train_val(recs, val_fraction=0.2, seed=3)
    assert not set(split.train) & set(split.val)
    assert set(split.train) | set(split.val) == set(recs)
    assert sorted(r.class_name for r in split.val) == ["gbm", "gbm", "men", "men"]
    assert split == split_train_val(list(reversed(recs)), val_fraction=0.2, seed=3)
    assert any(split_train_val(recs, 0.2, seed=s).val != split.val for s in range(4, 8))
    per_class = split_train_val(recs, val_per_class=3, seed=0)
    assert sorted(r.class_name for r in per_class.val) == ["gbm"] * 3 + ["men"] * 3
    everything = split_train_val(recs, val_fraction=0.0)
    assert len(everything.train) == 20 and everything.val == ()


def test_a_class_with_one_video_cannot_be_split() -> None:
    recs = _recordings({"gbm": 3, "men": 1})
    with pytest.raises(DatasetError) as info:
        split_train_val(recs, seed=0)
    message = str(info.value)
    assert "'men' has only 1 usable recording" in message
    assert "at least 2 videos or patients per class" in message
    with pytest.raises(DatasetError, match="leaves none to train on"):
        split_train_val(_recordings({"gbm": 3, "men": 3}), val_per_class=3)


def test_kfold_validates_every_recording_once_with_every_class_in_every_fold() -> None:
    recs = _recordings({"gbm": 9, "men": 11})
    splits = kfold_splits(recs, 5, seed=0)
    assert len(splits) == 5
    validated = [r for s in splits for r in s.val]
    assert sorted(validated, key=lambda r: r.name) == sorted(recs, key=lambda r: r.name)
    for s in splits:
        assert {r.class_name for r in s.val} == {"gbm", "men"}
        assert not set(s.train) & set(s.val) and len(s.train) + len(s.val) == 20
    assert max(len(s.val) for s in splits) - min(len(s.val) for s in splits) <= 1
    with pytest.raises(DatasetError, match="5-fold cross-validation needs at least 5"):
        kfold_splits(_recordings({"gbm": 4, "men": 11}), 5)


# ----------------------------------------------------------------------- decoding & cache


def test_every_k_and_near_duplicate_frames(tmp_path: Path) -> None:
    distinct = _phantom_frames(6)
    doubled = _write(tmp_path / "doubled.avi", [f for f in distinct for _ in range(2)])
    rec = _recording(doubled)

    dedup = decode_recording(rec, SIZE, FrameSampling(every_k=1, dedup_threshold=0.005))
    assert dedup.source_index.tolist() == [0, 2, 4, 6, 8, 10] and dedup.total_frames == 12
    keep_all = decode_recording(rec, SIZE, FrameSampling(every_k=1, dedup_threshold=0.0))
    assert len(keep_all.frames) == 12
    every_3 = decode_recording(rec, SIZE, FrameSampling(every_k=3, dedup_threshold=0.0))
    assert every_3.source_index.tolist() == [0, 3, 6, 9]
    np.testing.assert_array_equal(every_3.frames[1], keep_all.frames[3])


def test_frames_are_what_the_viewer_feeds_the_model(tmp_path: Path) -> None:
    raw = _phantom_frames(2)  # with the burned-in logo and scale bar outside the FOV
    video = _write(tmp_path / "v.avi", raw)
    decoded = decode_recording(_recording(video), SIZE, FrameSampling(dedup_threshold=0.0))
    assert decoded.frames.shape == (2, SIZE, SIZE) and decoded.frames.dtype == np.uint8

    mean, std = (0.3, 0.3, 0.3), (0.2, 0.2, 0.2)
    viewer = FramePreprocessor(PreprocessConfig((SIZE, SIZE), mean, std))(raw[0])
    ours = normalize(torch.from_numpy(decoded.frames[:1])[:, None], mean, std)
    # The only difference is the 8-bit storage of the cache: at most half a grey level.
    assert torch.allclose(ours, viewer.tensor, atol=0.5 / 255 / 0.2 + 1e-6)
    assert (decoded.frames[:, ~viewer.fov_mask] == 0).all()  # surround (logo) is black


def test_cache_is_reused_and_invalidated_by_a_changed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = _write(tmp_path / "data" / "v.avi", _phantom_frames(4))
    rec = _recording(video)
    cache = FrameCache(SIZE, FrameSampling(), tmp_path / "cache")
    first = cache.load(rec)
    path = cache.cache_path(rec)
    assert path is not None and path.exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temp files
    assert path.stat().st_mode & 0o777 == 0o600  # decoded patient frames: owner-only
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(frame_cache, "decode_recording", no_decoding)
    again = cache.load(rec)
    np.testing.assert_array_equal(again.frames, first.frames)
    np.testing.assert_array_equal(again.source_index, first.source_index)
    assert FrameCache(SIZE * 2, FrameSampling(), tmp_path / "cache").cache_path(rec) != path
    monkeypatch.undo()

    _write(video, _phantom_frames(5, seed=9))  # the file changes: size and mtime
    assert cache.cache_path(rec) != path
    assert len(cache.load(rec).frames) == 5

    damaged = cache.cache_path(rec)
    assert damaged is not None
    damaged.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged frame cache"):
        assert len(cache.load(rec).frames) == 5


def test_unreadable_and_truncated_videos_are_skipped_and_named(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.avi", _phantom_frames(12))
    truncated = tmp_path / "truncated.avi"
    shutil.copy(good, truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(4000))
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"\x89PNG but not really")

    recs = [_recording(p) for p in (good, truncated, garbage, bad_image)]
    decoded, skipped = FrameCache(SIZE).load_all(recs, workers=2)

    assert [d.recording.name for d in decoded] == ["c/good.avi"]
    reasons = {s.name: s.reason for s in skipped}
    assert list(reasons) == ["c/truncated.avi", "c/garbage.mp4", "c/bad.png"]
    assert "truncated.avi: truncated or damaged" in reasons["c/truncated.avi"]
    assert "garbage.mp4: cannot be opened as a video" in reasons["c/garbage.mp4"]
    assert "bad.png: cannot be read as an image" in reasons["c/bad.png"]
    with pytest.raises(UnreadableRecording, match=r"garbage\.mp4"):
        decode_recording(recs[2], SIZE)


def test_mixed_frame_sizes_and_image_folders(tmp_path: Path) -> None:
    small = _write(tmp_path / "small.avi", _phantom_frames(3))
    big = _write(tmp_path / "big.avi", _phantom_frames(3, PhantomConfig(height=150, width=210)))
    patient = tmp_path / "patient"
    patient.mkdir()
    for i, frame in enumerate(_phantom_frames(3, PhantomConfig(height=120, width=120), seed=4)):
        cv2.imwrite(str(patient / f"{i:03d}.png"), frame)
    images = tuple(sorted(patient.iterdir()))
    recs = [_recording(small), _recording(big), Recording("c/patient", "c", 0, images)]
    decoded, skipped = FrameCache(SIZE, FrameSampling(dedup_threshold=0.0)).load_all(recs)
    assert not skipped
    assert [d.frames.shape for d in decoded] == [(3, SIZE, SIZE)] * 3
    dataset = FrameDataset(decoded)
    assert len(dataset) == 9 and dataset.input_size == SIZE


# -------------------------------------------------------------------- Dataset, augmentation


def test_frame_dataset_serves_frames_labels_and_statistics(phantom_root: Path) -> None:
    index = discover(phantom_root)
    assert index.class_names == ("glioblastoma", "meningioma")
    decoded, skipped = FrameCache(SIZE).load_all(index.recordings)
    assert not skipped
    dataset = FrameDataset(decoded)
    assert len(dataset) == sum(len(d.frames) for d in decoded)
    frame, label = dataset[len(dataset) - 1]
    assert frame.shape == (1, SIZE, SIZE) and frame.dtype == torch.uint8 and label == 1
    frames, labels = dataset.batch(torch.tensor([0, len(dataset) - 1]))
    assert frames.shape == (2, 1, SIZE, SIZE) and labels.tolist() == [0, 1]
    assert dataset.recording_index[-1] == len(decoded) - 1
    pixels = np.concatenate([d.frames.ravel() for d in decoded]) / 255.0
    mean, std = dataset.grey_stats()
    assert mean == pytest.approx(pixels.mean(), abs=1e-9)
    assert std == pytest.approx(pixels.std(), abs=1e-9)


def test_augmentation_keeps_the_surround_black_and_is_seeded(phantom_root: Path) -> None:
    rec = discover(phantom_root).recordings[0]
    frames = torch.from_numpy(decode_recording(rec, SIZE).frames[:4])[:, None].float() / 255
    config = AugmentConfig()
    out = augment(frames, config, torch.Generator().manual_seed(1))
    again = augment(frames, config, torch.Generator().manual_seed(1))
    other = augment(frames, config, torch.Generator().manual_seed(2))
    outside = disc_mask(SIZE)[0, 0] == 0
    assert out.shape == frames.shape and torch.equal(out, again) and not torch.equal(out, other)
    assert (out[:, :, outside] == 0).all() and out.min() >= 0 and out.max() <= 1
    assert (out[:, :, ~outside] > 0).float().mean() > 0.9  # the tissue is still there

    # Flips alone move pixels exactly: each output is its frame mirrored in 0, 1 or 2 axes.
    flip_only = AugmentConfig(rotate=False, flip=True, brightness=0.0, contrast=0.0)
    flipped = augment(frames, flip_only, torch.Generator().manual_seed(0))
    for i in range(len(frames)):
        candidates = [frames[i], frames[i].flip(-1), frames[i].flip(-2), frames[i].flip(-1, -2)]
        masked = [c * disc_mask(SIZE)[0] for c in candidates]
        assert any(torch.allclose(flipped[i], c, atol=1e-6) for c in masked)

    jitter_only = AugmentConfig(rotate=False, flip=False, brightness=0.4, contrast=0.0)
    bright = augment(frames, jitter_only, torch.Generator().manual_seed(0))
    inside = ~outside
    ratio = bright[:, 0][:, inside].sum(1) / (frames[:, 0][:, inside]).sum(1)
    assert ((ratio > 0.55) & (ratio < 1.45)).all() and ratio.std() > 0
