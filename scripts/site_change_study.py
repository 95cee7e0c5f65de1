"""How often the site-change detector restarts the verdict within a real video, and how often
it notices a cut between two videos.

``python scripts/site_change_study.py [--data ../shared/data/pcle-brain] [--frames 300]``
preprocesses the first ``--frames`` frames of every video as the viewer does (model input 128
px), scores every consecutive pair with :func:`app.preprocess.site_change.thumbnail_similarity`,
and every pair made of one of the last 40 frames of a video and the frame at the same position
among the first 40 of the next video (a cut), then prints the share of each below the
threshold. The figures in :mod:`app.preprocess.site_change` come from this script.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np

from app.preprocess.field_of_view import FieldOfViewTracker
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from app.preprocess.site_change import (
    NEW_SITE_SIMILARITY,
    thumbnail,
    thumbnail_similarity,
)

CUT_FRAMES = 40


def thumbnails(path: Path, frames: int) -> list[np.ndarray]:
    """The :func:`thumbnail` of each of the first ``frames`` model inputs of a video."""
    preprocessor = FramePreprocessor(
        PreprocessConfig((128, 128), (0.5,) * 3, (0.25,) * 3), tracker=FieldOfViewTracker()
    )
    capture = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    try:
        while len(out) < frames:
            ok, frame = capture.read()
            if not ok:
                break
            out.append(thumbnail(preprocessor(frame).display))
    finally:
        capture.release()
    return out


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    s = thumbnail_similarity(a, b)
    return 1.0 if s is None else s  # a flat pair is never a change


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "pcle-brain"
    parser.add_argument("--data", type=Path, default=root, help="folder of class folders")
    parser.add_argument("--frames", type=int, default=300, help="frames per video")
    args = parser.parse_args(argv)
    videos = sorted(p for p in args.data.glob("*/*") if p.suffix.lower() in {".mpg", ".avi"})
    if not videos:
        print(f"no videos under {args.data}", file=sys.stderr)
        return 2
    within: list[float] = []
    cuts: list[float] = []
    previous: list[np.ndarray] | None = None
    for video in videos:
        thumbs = thumbnails(video, args.frames)
        within += [_similarity(a, b) for a, b in itertools.pairwise(thumbs)]
        if previous is not None:
            tail = previous[-CUT_FRAMES:]
            cuts += [_similarity(a, b) for a, b in zip(tail, thumbs[:CUT_FRAMES], strict=False)]
        previous = thumbs
    w, c = np.array(within), np.array(cuts)
    print(f"{len(videos)} videos, {len(w)} consecutive pairs, {len(c)} cut pairs")
    print(f"threshold {NEW_SITE_SIMILARITY}:")
    print(f"  consecutive pairs counted as a new site: {(w < NEW_SITE_SIMILARITY).mean():.1%}")
    print(f"  cut pairs counted as a new site:         {(c < NEW_SITE_SIMILARITY).mean():.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
