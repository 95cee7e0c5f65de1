"""Recipro-CAM (Byun & Lee): gradient-free, one batched forward for all positions and passes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from app.explain.errors import ExplainerError
from app.explain.method import (
    CamMethod,
    PassContext,
    PassMaps,
    choose_class,
    gather_class,
    split_rows,
)

GAUSSIAN_3X3 = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
"""The authors' 2022 kernel, used by the paper."""


def spatial_windows(
    height: int, width: int, kernel: str, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """One window per target-layer position: (h * w, h, w).

    Window k = i * w + j keeps position (i, j). With ``kernel="gaussian"`` it spreads that
    position's feature vector over its 3x3 neighbourhood with :data:`GAUSSIAN_3X3` (clipped at
    the border, as in the authors' code); with ``kernel="1x1"`` it keeps the position alone.
    """
    windows = torch.zeros(height * width, height + 2, width + 2, device=device, dtype=dtype)
    stamp = (
        GAUSSIAN_3X3
        if kernel == "gaussian"
        else torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    ).to(device=device, dtype=dtype)
    for i in range(height):
        for j in range(width):
            windows[i * width + j, i : i + 3, j : j + 3] = stamp
    return windows[:, 1:-1, 1:-1]


def mosaic(activation: Tensor, windows: Tensor) -> Tensor:
    """Each row followed by its h*w single-position copies.

    Args:
        activation: (R, C, h, w).
        windows: (h * w, h, w) from :func:`spatial_windows`.

    Returns:
        (R * (1 + h * w), C, h, w), ordered (row, copy); copy 0 is the row itself, copy
        1 + k is ``A[:, :, i, j]`` spread by window k.
    """
    channels, height, width = activation.shape[1:]
    vectors = activation.flatten(2).transpose(1, 2)  # (R, hw, C): the feature vector at k
    copies = vectors[..., None, None] * windows[None, :, None]  # (R, hw, C, h, w)
    return torch.cat([activation.unsqueeze(1), copies], dim=1).reshape(-1, channels, height, width)


class ReciproCAM(CamMethod):
    """Recipro-CAM: the softmax score of the explained class for each single-position copy.

    The plain activation and its h*w copies go through the rest of the network as one batch;
    with dropout after the target layer the copies are built once and repeated for the passes
    at the first dropout module, so the trunk and the copies cost the same as one original
    Recipro-CAM, and only the layers after the first dropout run T times.

    Args:
        kernel: "gaussian" (the authors' 3x3 kernel, default) or "1x1".
    """

    name = "reciprocam"
    needs_grad = False

    def __init__(self, kernel: str = "gaussian", **options: Any) -> None:
        super().__init__(**options)
        if kernel not in ("gaussian", "1x1"):
            raise ExplainerError(f"reciprocam kernel must be 'gaussian' or '1x1', got {kernel!r}")
        self.kernel = kernel

    def compute(self, ctx: PassContext, x: Tensor, class_idx: Tensor | None) -> PassMaps:
        size: list[int] = []

        def to_mosaic(activation: Tensor) -> Tensor:
            height, width = activation.shape[-2:]
            size[:] = [height, width]
            windows = spatial_windows(
                height, width, self.kernel, activation.device, activation.dtype
            )
            return mosaic(activation, windows)

        with ctx.timer.stage("forward"):
            logits, _ = ctx.forward(x, transform_target=to_mosaic)
        with ctx.timer.stage("maps"):
            probs = split_rows(logits, ctx.frames, ctx.passes).softmax(dim=-1)  # (B, T, M, K)
            chosen = choose_class(probs[:, :, 0], class_idx)
            scores = gather_class(probs[:, :, 1:], chosen)  # (B, T, hw)
            cams = scores.reshape(ctx.frames, ctx.passes, *size)
        return PassMaps(cams, probs[:, :, 0], chosen)

    def __repr__(self) -> str:
        return f"ReciproCAM(kernel={self.kernel!r})"
