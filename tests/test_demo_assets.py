"""The shipped demo: a phantom video and a phantom-trained model that work out of the box."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.assets import ASSETS
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from models.checkpoint import load_checkpoint
from models.data.phantom import CLASSES, PhantomVideo, load_masks
from models.demo import DEMO_MODEL, DEMO_VIDEO, FRAMES_PER_CLASS, INTENDED_USE


@pytest.fixture(scope="module")
def demo_model() -> tuple[torch.nn.Module, object]:
    return load_checkpoint(ASSETS / DEMO_MODEL)


def test_demo_model_is_small_and_its_metadata_is_complete(demo_model: tuple) -> None:
    assert (ASSETS / DEMO_MODEL).stat().st_size < 25 * 2**20
    _, meta = demo_model
    assert meta.class_names == list(CLASSES)
    assert meta.intended_use == INTENDED_USE
    assert "phantom" in meta.provenance.lower() or "phantom" in str(meta.training).lower()
    assert meta.arch == "mobilenet_v2" and meta.target_layer and 0 < meta.dropout < 1
    assert len(meta.input_size) == 2 and len(meta.mean) == len(meta.std) == 3
    for key in ("epochs", "classes"):
        assert key in meta.training, f"training summary lacks {key!r}"


def test_demo_model_classifies_fresh_phantom_frames(demo_model: tuple) -> None:
    """Frames from seeds neither the training set nor the demo video used."""
    model, meta = demo_model
    pre = FramePreprocessor(
        PreprocessConfig(tuple(meta.input_size), tuple(meta.mean), tuple(meta.std))
    )
    frames, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for frame in PhantomVideo(class_name, 12, seed=777_000 + label):
            frames.append(pre(frame.image).tensor)
            labels.append(label)
    with torch.no_grad():
        predicted = model(torch.cat(frames)).argmax(1)
    accuracy = float((predicted == torch.tensor(labels)).float().mean())
    assert accuracy >= 0.95, f"demo model accuracy on fresh phantom frames: {accuracy:.3f}"


def test_demo_video_opens_with_its_masks() -> None:
    capture = cv2.VideoCapture(str(ASSETS / DEMO_VIDEO))
    try:
        assert capture.isOpened()
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok and frame.shape == (336, 464, 3)
    assert count == len(CLASSES) * FRAMES_PER_CLASS
    masks = load_masks(ASSETS / DEMO_VIDEO)
    assert masks.shape == (count, 336, 464) and masks.dtype == np.bool_
    assert (ASSETS / DEMO_VIDEO).stat().st_size < 10 * 2**20


def test_make_run_without_a_display_processes_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    assert main(["run", "--headless", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "phantom demo, not for clinical use" in printed and str(tmp_path) in printed
    table = next(tmp_path.glob("*.frames.csv"))
    rows = table.read_text().strip().splitlines()
    assert len(rows) == 1 + len(CLASSES) * FRAMES_PER_CLASS
    capture = cv2.VideoCapture(str(next(tmp_path.glob("*.panels.*"))))
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(CLASSES) * FRAMES_PER_CLASS
    finally:
        capture.release()
    from app.review import ReviewSession

    session = ReviewSession(tmp_path / "session")  # recorded too, and reviewable
    assert len(session) == len(CLASSES) * FRAMES_PER_CLASS and session.reader.closed_cleanly
    assert "python -m app review" in printed
    assert main(["run", "--headless", "--out", str(tmp_path)]) == 0  # a rerun replaces it
    assert len(ReviewSession(tmp_path / "session")) == len(CLASSES) * FRAMES_PER_CLASS
