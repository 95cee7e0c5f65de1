"""Shared helpers for the pipeline tests: tiny checkpoints, phantom videos, frame sequences."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models.architectures import build_model
from models.checkpoint import CheckpointMetadata, save_checkpoint
from models.data.phantom import PhantomConfig, PhantomVideo, write_video

CLASSES = ["glioblastoma", "meningioma", "metastasis"]
REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pcle-brain"


def tiny_checkpoint(
    path: Path,
    arch: str = "resnet18",
    input_size: tuple[int, int] = (64, 64),
    classes: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """A random-weight checkpoint small enough for fast tests."""
    classes = classes or CLASSES
    torch.manual_seed(seed)
    meta = CheckpointMetadata(
        arch=arch,
        class_names=classes,
        input_size=input_size,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4" if arch.startswith("resnet") else "features.18",
        dropout=0.2,
        provenance="test",
    )
    save_checkpoint(path, build_model(arch, len(classes)), meta)
    return path


def phantom_video(path: Path, frames: int = 12, fps: float = 24.0) -> Path:
    """A small phantom pCLE video (96x128) written to ``path``."""
    video = PhantomVideo("meningioma", frames, seed=3, config=PhantomConfig(height=96, width=128))
    return write_video(path, video, fps=fps)[0]


def mpeg1_video(path: Path, frames: int = 160, fps: float = 24.0) -> Path:
    """An MPEG-1 program stream (``.mpg``, as Cellvizio writes) of ``frames`` distinct frames.

    Its time stamps jitter by a frame at the first GOP boundary (11, 13, 14, 15, 15, 16) and
    its container declares one frame fewer than it holds, as the Cellvizio files do.
    """
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), fps, (128, 96))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MPEG-1 here")
    for index in range(frames):
        image = np.full((96, 128, 3), (index * 37) % 256, np.uint8)
        cv2.putText(image, str(index), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255,) * 3, 2)
        writer.write(image)
    writer.release()
    return path


def damaged_copies(video: Path, folder: Path) -> dict[str, Path]:
    """The video cut at half its length, and with 16 KiB of random bytes over its middle."""
    data = video.read_bytes()
    third = len(data) // 3
    garbage = np.random.default_rng(0).bytes(16384)
    copies = {
        "truncated": data[: len(data) // 2],
        "overwritten": data[:third] + garbage + data[third + len(garbage) :],
    }
    paths = {}
    for name, payload in copies.items():
        paths[name] = folder / f"{name}{video.suffix}"
        paths[name].write_bytes(payload)
    return paths


def numbered_frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Grey frames of a bright disc whose brightness encodes the frame's index (index 0 ->
    level 40, +1 per frame), so a frame can be recognised after the pipeline."""
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 <= (0.45 * height) ** 2
    return [np.where(disc, 40 + i, 0).astype(np.uint8) for i in range(count)]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, every: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def calibrated_copy(checkpoint: Path, folder: Path, threshold: float) -> Path:
    """``checkpoint`` with a hand-made calibration: temperature 2, UNCERTAIN below a max
    probability of ``threshold``, every class in the set from p >= 0.2 on."""
    from app.calibration.abstention import AbstentionRule
    from app.calibration.conformal import ConformalRule
    from app.calibration.rules import Calibration, ModeCalibration
    from models.checkpoint import read_metadata, rewrite_metadata

    mode = ModeCalibration(
        2.0,
        "max_probability",
        AbstentionRule(threshold, 0.01, 0.05, 0.5, 0.0, 0.01, 100),
        ConformalRule(0.8, 0.95, 100),
    )
    path = folder / "calibrated.pt"
    shutil.copyfile(checkpoint, path)
    metadata = read_metadata(path)
    calibration = Calibration(mode, mode, {"frames": 100}).to_metadata()
    rewrite_metadata(path, dataclasses.replace(metadata, calibration=calibration))
    return path
