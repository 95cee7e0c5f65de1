"""Frame -> model input: grey conversion, FOV crop and mask, resize, normalisation.

Training, the viewer and evaluation all go through :class:`FramePreprocessor`, so a model sees
the same pixels everywhere. Besides the tensor it returns the exact grey image the model saw
(``display``) and the disc mask at input size, so attribution maps can be drawn over the right
pixels and masked to the field of view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from app.preprocess.field_of_view import (
    FieldOfView,
    FieldOfViewTracker,
    apply_field_of_view,
    find_field_of_view,
    to_gray_float,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FramePreprocessor",
    "PreprocessConfig",
    "PreprocessedFrame",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessConfig:
    """How frames become model input; stored in and read from a checkpoint's metadata.

    ``input_size`` is (H, W). ``bit_depth`` is the real depth of integer data when it is less
    than its container's (e.g. 12-bit frames in uint16); None scales by the container maximum.
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    use_fov: bool = True
    bit_depth: int | None = None

    def __post_init__(self) -> None:
        if len(self.input_size) != 2 or any(int(s) < 1 for s in self.input_size):
            raise ValueError(f"input_size must be two positive ints (H, W), got {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have three values (one per channel)")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"std values must be positive, got {self.std}")


@dataclass(frozen=True, eq=False)
class PreprocessedFrame:
    """A preprocessed frame: model input plus what is needed to draw results over it.

    ``tensor``: float32 (1, 3, H, W), normalised. ``display``: float32 (H, W) in [0, 1], the
    FOV-cropped, masked, resized grey image the model saw. ``fov_mask``: bool (H, W), the disc
    pixels (inside the disc and inside the source frame) at input size. ``fov``: the field of
    view in source-frame coordinates.
    """

    tensor: torch.Tensor
    display: np.ndarray
    fov_mask: np.ndarray
    fov: FieldOfView


class FramePreprocessor:
    """Turns raw frames (any layout :func:`to_gray_float` accepts) into model input.

    Steps: grey float -> field of view (from ``tracker`` when given, for a stream; otherwise
    detected per frame; skipped when ``config.use_fov`` is False) -> crop to the disc's square
    and zero the surround -> resize to ``input_size`` (INTER_AREA when shrinking, INTER_LINEAR
    when enlarging) -> zero the surround again (interpolation blurs the rim) -> three equal
    channels -> ``(x - mean) / std``. Outside the disc the input is therefore ``-mean / std``.
    """

    def __init__(self, config: PreprocessConfig, tracker: FieldOfViewTracker | None = None):
        self.config = config
        self.tracker = tracker
        self._mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1)
        self._mask_key: tuple[object, ...] | None = None
        self._mask: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, fov: FieldOfView | None = None) -> PreprocessedFrame:
        """Preprocess one frame.

        Args:
            frame: the frame as the source delivered it.
            fov: use this field of view instead of finding one (e.g. the one stored with a
                recorded frame, so that a review shows exactly what the model saw); the
                tracker is then left untouched.
        """
        cfg = self.config
        gray = to_gray_float(frame, bit_depth=cfg.bit_depth)
        if cfg.use_fov:
            if fov is None:
                fov = (
                    self.tracker.update(gray)
                    if self.tracker is not None
                    else find_field_of_view(gray)
                )
            image = apply_field_of_view(gray, fov, crop=True)
        else:
            fov = FieldOfView.circumscribed(gray.shape, source="disabled")
            image = gray
        out_h, out_w = int(cfg.input_size[0]), int(cfg.input_size[1])
        display = _resize(image, out_h, out_w)
        mask = self._input_mask(fov, gray.shape, image.shape)
        display *= mask
        np.clip(display, 0.0, 1.0, out=display)

        x = torch.from_numpy(display).view(1, 1, out_h, out_w).expand(1, 3, out_h, out_w)
        tensor = (x - self._mean) / self._std
        return PreprocessedFrame(tensor=tensor, display=display, fov_mask=mask.copy(), fov=fov)

    def preprocess_batch(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Stack preprocessed frames into a (B, 3, H, W) tensor.

        With a tracker, all frames are treated as one stream; for unrelated frames (a batch
        from several videos) use a preprocessor without one.
        """
        if len(frames) == 0:
            raise ValueError("preprocess_batch needs at least one frame")
        return torch.cat([self(frame).tensor for frame in frames], dim=0)

    def _input_mask(
        self, fov: FieldOfView, frame_shape: tuple[int, ...], crop_shape: tuple[int, ...]
    ) -> np.ndarray:
        """The disc mask at input size (cached: a stream keeps one FOV)."""
        h_in, w_in = int(self.config.input_size[0]), int(self.config.input_size[1])
        key = (fov, frame_shape[:2], crop_shape[:2], h_in, w_in, self.config.use_fov)
        if key != self._mask_key or self._mask is None:
            if self.config.use_fov:
                valid = np.ones(frame_shape[:2], np.float32)
                disc = apply_field_of_view(valid, fov, crop=True)
                mask = _resize(disc, h_in, w_in) >= 0.5
            else:
                mask = np.ones((h_in, w_in), bool)
            mask.setflags(write=False)
            self._mask_key, self._mask = key, mask
        return self._mask


def _resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize a float32 image (a new array): INTER_AREA to shrink, INTER_LINEAR to enlarge."""
    h, w = image.shape[:2]
    if (h, w) == (out_h, out_w):
        return image.astype(np.float32, copy=True)
    shrinking = out_h <= h and out_w <= w
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (out_w, out_h), interpolation=interp)
