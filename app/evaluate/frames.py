"""The frames an evaluation scores: held-out recordings, decoded as for training and viewing.

Frames come from :class:`models.data.frame_cache.FrameCache` (field-of-view crop, surround
zeroed, resize to the checkpoint's input size, near-duplicate removal as in training), so the
model sees the pixels it was trained and validated on.

Phantom recordings (a ``<video>.masks.npz`` next to the video) also get their ground-truth mask
at input size. The mask goes through the frame's own geometry: the video is replayed through a
:class:`app.preprocess.model_input.FramePreprocessor` with a fresh
:class:`app.preprocess.field_of_view.FieldOfViewTracker` fed exactly the sampled frames that
:func:`models.data.frame_cache.decode_recording` feeds its own (so the tracker reaches the same
field of view), and each kept frame's source mask is cropped
to that field of view's square, resized like the frame (INTER_AREA to shrink, INTER_LINEAR to
enlarge), thresholded at 0.5 and restricted to the disc at input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from app.preprocess.field_of_view import FieldOfViewTracker, apply_field_of_view
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from models.data.augment import normalize
from models.data.frame_cache import DecodedRecording, FrameCache, FrameSampling, SkippedRecording
from models.data.index import Recording, is_video
from models.data.phantom import load_masks, masks_path


@dataclass(frozen=True, eq=False)
class EvalFrame:
    """One frame to score.

    Attributes:
        recording: the recording's name, ``"class/file"``.
        index: the frame's index in the recording (over all its files).
        label: the recording's class index in the data set.
        image: uint8 (S, S) preprocessed grey frame (0 outside the field of view).
        fov_mask: bool (S, S) disc pixels at input size.
        mask: bool (S, S) ground-truth mask at input size (phantom data), else None.
    """

    recording: str
    index: int
    label: int
    image: np.ndarray
    fov_mask: np.ndarray
    mask: np.ndarray | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.recording, self.index


def has_masks(recording: Recording) -> bool:
    """Whether a recording is one phantom video with its ground-truth masks next to it."""
    return (
        len(recording.paths) == 1
        and is_video(recording.paths[0])
        and masks_path(recording.paths[0]).is_file()
    )


def inscribed_disc(size: int) -> np.ndarray:
    """The disc inscribed in a ``size x size`` frame (the field of view after the FOV crop)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    return (c[None, :] ** 2 + c[:, None] ** 2) <= 1.0


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if side <= h and side <= w else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=interp)


def phantom_masks(
    decoded: DecodedRecording, every_k: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ground-truth masks and field-of-view masks at input size for each kept frame.

    Args:
        decoded: the decoded frames of a phantom recording (one video with masks).
        every_k: the sampling step the frames were decoded with.

    Returns:
        ``(masks, fov_masks)``, bool (S, S) each, in the order of ``decoded.frames``.
    """
    path = decoded.recording.paths[0]
    side = int(decoded.frames.shape[-1])
    source_masks = load_masks(path)
    config = PreprocessConfig((side, side), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    pre = FramePreprocessor(config, FieldOfViewTracker())
    wanted = {int(i): k for k, i in enumerate(decoded.source_index)}
    masks: list[np.ndarray | None] = [None] * len(wanted)
    fovs: list[np.ndarray | None] = [None] * len(wanted)
    capture = cv2.VideoCapture(str(path))
    try:
        n = 0
        while len(wanted) > sum(m is not None for m in masks):
            if n % every_k:
                if not capture.grab():
                    break
                n += 1
                continue
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            out = pre(frame)  # the tracker must see every sampled frame, kept or not
            if n in wanted and n < len(source_masks):
                crop = apply_field_of_view(source_masks[n].astype(np.float32), out.fov)
                masks[wanted[n]] = (_resize(crop, side) >= 0.5) & out.fov_mask
                fovs[wanted[n]] = out.fov_mask.copy()
            n += 1
    finally:
        capture.release()
    if any(m is None for m in masks):
        raise ValueError(f"{decoded.recording.name}: masks do not cover every kept frame")
    return masks, fovs  # type: ignore[return-value]


def load_frames(
    recordings: Sequence[Recording],
    input_size: int,
    sampling: FrameSampling,
    max_frames: int | None = None,
) -> tuple[list[EvalFrame], list[SkippedRecording]]:
    """Decode the recordings and interleave their frames (frame i of each recording in turn).

    Interleaving makes ``--max-frames`` (and the T study's first frames) cover every recording.

    Returns:
        ``(frames, skipped)``: at most ``max_frames`` frames, and each recording that could not
        be read, with the reason.
    """
    decoded, skipped = FrameCache(input_size, sampling).load_all(recordings)
    per_recording: list[list[EvalFrame]] = []
    disc = inscribed_disc(input_size)
    for d in decoded:
        masks: list[np.ndarray | None] = [None] * len(d.frames)
        fovs: list[np.ndarray] = [disc] * len(d.frames)
        if has_masks(d.recording):
            masks, fovs = phantom_masks(d, sampling.every_k)  # type: ignore[assignment]
        per_recording.append(
            [
                EvalFrame(d.recording.name, int(i), d.recording.label, image, fov, mask)
                for i, image, fov, mask in zip(d.source_index, d.frames, fovs, masks, strict=True)
            ]
        )
    frames: list[EvalFrame] = []
    for rank in range(max((len(p) for p in per_recording), default=0)):
        frames.extend(p[rank] for p in per_recording if rank < len(p))
    if max_frames is not None:
        frames = frames[:max_frames]
    return frames, skipped


def to_input(
    frames: Sequence[EvalFrame], mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Normalised model input (B, 3, S, S) for frames, as in training."""
    stacked = torch.from_numpy(np.stack([f.image for f in frames]))[:, None]
    return normalize(stacked, mean, std)
