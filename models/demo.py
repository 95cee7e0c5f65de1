"""The shipped demo: a phantom pCLE video and a model trained on phantom data.

``python -m models.demo --out app/assets`` rebuilds both from nothing but this project's code:
a phantom training set (written to a temporary folder), ``models.train`` on it, and a demo
video from seeds that the training set never used. Everything here is synthetic and labelled
"phantom demo, not for clinical use".
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from models.data.phantom import (
    CLASSES,
    PhantomFrame,
    PhantomVideo,
    write_dataset,
    write_video,
)

DEMO_VIDEO = "demo_video.mp4"
DEMO_MODEL = "demo_model.pt"
INTENDED_USE = "phantom demo, not for clinical use"
VIDEO_SEED = 20261129
"""Seeds of the demo video; the training set uses ``TRAIN_SEED``, so the video is unseen."""
TRAIN_SEED = 1000
FRAMES_PER_CLASS = 70


def demo_frames(frames_per_class: int = FRAMES_PER_CLASS) -> Iterator[PhantomFrame]:
    """The demo video's frames: the probe passes over each tissue class in turn."""
    index = 0
    for k, class_name in enumerate(CLASSES):
        for frame in PhantomVideo(class_name, frames_per_class, seed=VIDEO_SEED + k):
            yield PhantomFrame(frame.image, frame.mask, frame.class_name, index)
            index += 1


def build_demo_video(out: Path, frames_per_class: int = FRAMES_PER_CLASS) -> Path:
    """Write the demo video (MPEG-4, like a compressed recording) and its masks."""
    video, _ = write_video(out / DEMO_VIDEO, demo_frames(frames_per_class), fps=24.0, codec="mp4v")
    return video


def training_arguments(data: Path, checkpoint: Path) -> list[str]:
    """The ``models.train`` command line of the demo model."""
    return [
        "--data", str(data), "--out", str(checkpoint), "--arch", "mobilenet_v2",
        "--epochs", "10", "--input-size", "224", "--batch-size", "32",
        "--val-fraction", "0.25", "--seed", "0", "--intended-use", INTENDED_USE,
        "--no-progress",
    ]  # fmt: skip


def build_demo_model(out: Path) -> Path:
    """Train the demo model on a fresh phantom training set and copy the best checkpoint."""
    from models.training.cli import main as train_main

    with tempfile.TemporaryDirectory(prefix="phantom_train_") as work:
        data = Path(work) / "phantom"
        write_dataset(data, CLASSES, videos_per_class=8, frames_per_video=40, seed=TRAIN_SEED)
        checkpoint = Path(work) / DEMO_MODEL
        train_main(training_arguments(data, checkpoint))
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, out / DEMO_MODEL)
    return out / DEMO_MODEL


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.demo", description=__doc__)
    parser.add_argument("--out", default="app/assets", help="folder for the demo video and model")
    parser.add_argument("--video-only", action="store_true", help="skip training the model")
    args = parser.parse_args(argv)
    out = Path(args.out)
    print(f"wrote {build_demo_video(out)}")
    if not args.video_only:
        print(f"wrote {build_demo_model(out)}")


if __name__ == "__main__":
    main()
