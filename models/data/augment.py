"""Batched augmentation and normalisation of pCLE frames, run on the training device.

A pCLE probe has no fixed orientation, so a frame rotated by any angle or mirrored is as
plausible as the original; brightness and contrast vary between acquisitions (laser power,
tissue, gain), so they are jittered too. The black surround of the circular field of view
stays black: every augmented frame is multiplied by the disc inscribed in the square frame
(the crop :class:`app.preprocess.model_input.FramePreprocessor` makes has the disc centred),
which is also where brightness and contrast are computed and changed.

Augmentation parameters come from a ``torch.Generator`` that the caller seeds per batch, so a
run is reproducible from its seed alone, whatever the device or a resume point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "augment", "disc_mask", "normalize"]


@dataclass(frozen=True)
class AugmentConfig:
    """What :func:`augment` does.

    Attributes:
        rotate: Rotate by an angle uniform in ``[0, 360)`` degrees about the frame centre.
        flip: Mirror left-right and top-bottom, each with probability 1/2.
        brightness: Multiply the disc by a factor uniform in ``[1 - b, 1 + b]``.
        contrast: Scale the disc's deviations from its mean by a factor uniform in
            ``[1 - c, 1 + c]``.
    """

    rotate: bool = True
    flip: bool = True
    brightness: float = 0.4
    contrast: float = 0.3

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")


def disc_mask(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The disc inscribed in a ``size x size`` frame: float ``(1, 1, S, S)`` of 0s and 1s.

    A pixel is inside when its centre lies within radius ``S / 2`` of the frame centre.
    """
    c = (torch.arange(size, dtype=torch.float32, device=device) + 0.5) / size * 2.0 - 1.0
    return ((c[None, :] ** 2 + c[:, None] ** 2) <= 1.0).float().view(1, 1, size, size)


def augment(
    frames: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Randomly rotate, flip and jitter a batch of grey frames.

    Args:
        frames: float ``(B, 1, S, S)`` in ``[0, 1]``, 0 outside the disc, on any device.
        config: Which augmentations, how strong.
        generator: A CPU generator; all random parameters are drawn from it (``B`` angles,
            flips and factors), so the result depends only on its state, not on the device.

    Returns:
        A new float ``(B, 1, S, S)`` tensor in ``[0, 1]`` on ``frames``' device, 0 outside the
        disc.
    """
    b, _, h, w = frames.shape
    if h != w:
        raise ValueError(f"frames must be square, got {h}x{w}")
    device = frames.device
    u = torch.rand(b, 5, generator=generator)
    mask = disc_mask(h, device)
    out = frames
    if config.rotate or config.flip:
        angle = u[:, 0] * (2.0 * math.pi) if config.rotate else torch.zeros(b)
        sx = torch.where(u[:, 1] < 0.5, -1.0, 1.0) if config.flip else torch.ones(b)
        sy = torch.where(u[:, 2] < 0.5, -1.0, 1.0) if config.flip else torch.ones(b)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Output pixel p samples the input at R(angle) @ diag(sx, sy) @ p (normalised coords).
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos * sx, -sin * sy
        theta[:, 1, 0], theta[:, 1, 1] = sin * sx, cos * sy
        grid = F.affine_grid(theta.to(device), [b, 1, h, w], align_corners=False)
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if config.brightness > 0 or config.contrast > 0:
        gain = 1.0 + config.brightness * (2.0 * u[:, 3] - 1.0)
        spread = 1.0 + config.contrast * (2.0 * u[:, 4] - 1.0)
        mean = (out * mask).sum(dim=(1, 2, 3), keepdim=True) / mask.sum()
        gain, spread = (v.to(device).view(b, 1, 1, 1) for v in (gain, spread))
        out = ((out - mean) * spread + mean) * gain
    return (out * mask).clamp_(0.0, 1.0)


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Grey frames to model input: three equal channels, each ``(x - mean[c]) / std[c]``.

    This is what :class:`app.preprocess.model_input.FramePreprocessor` does to its ``display``
    image.

    Args:
        frames: ``(B, 1, S, S)`` grey frames: uint8 (divided by 255) or float in ``[0, 1]``.
        mean: Three per-channel means.
        std: Three per-channel standard deviations, all positive.

    Returns:
        float32 ``(B, 3, S, S)`` on ``frames``' device.
    """
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    m = torch.tensor(tuple(mean), dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(tuple(std), dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s
