"""Pixel-wise statistics over the T per-pass maps, and predictive uncertainty over the T softmaxes.

Everything here is plain torch on whatever device the tensors live on: nothing moves to the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def minmax_normalize(values: Tensor) -> Tensor:
    """Min-max normalise each (h, w) map of (..., h, w) to [0, 1]; a flat map becomes zeros."""
    flat = values.flatten(-2)
    lo = flat.amin(-1, keepdim=True)
    span = flat.amax(-1, keepdim=True) - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    out = torch.where(span > 0, (flat - lo) / safe, torch.zeros_like(flat))
    return out.view_as(values)


def normalize_maps(maps: Tensor) -> Tensor:
    """ReLU, then min-max normalise each map to [0, 1] (TorchCAM's convention, used by the paper).

    Args:
        maps: (..., h, w) raw class activation maps.

    Returns:
        (..., h, w) maps in [0, 1]. A flat map (max == min after ReLU) carries no attribution
        and becomes all zeros rather than NaN.
    """
    return minmax_normalize(maps.clamp(min=0))


def pass_statistics(maps: Tensor, min_mean: float) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, population std and coefficient of variation over the pass axis.

    The std is computed in two passes (mean first, then the mean squared deviation), never as
    E[x^2] - E[x]^2, which cancels catastrophically when the maps agree.

    Args:
        maps: (..., T, h, w) per-pass maps, each in [0, 1].
        min_mean: the CV is undefined (NaN, never inf) where the mean is at or below this value.

    Returns:
        (mean, std, cv), each (..., h, w).
    """
    mean = maps.mean(dim=-3)
    std = (maps - mean.unsqueeze(-3)).square().mean(dim=-3).sqrt()
    defined = mean > min_mean
    cv = torch.where(defined, std / torch.where(defined, mean, torch.ones_like(mean)), torch.nan)
    return mean, std, cv


def predictive_uncertainty(probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """MC-mean probabilities, predictive entropy and mutual information (in nats).

    Args:
        probs: (..., T, K) per-pass softmax outputs.

    Returns:
        mean_probs (..., K); entropy (...,) of the mean distribution; mutual information (...,),
        the entropy minus the mean per-pass entropy (the part of the uncertainty that comes from
        disagreement between passes), clamped at 0 against rounding.
    """
    mean_probs = probs.mean(dim=-2)
    entropy = -torch.special.xlogy(mean_probs, mean_probs).sum(-1)
    expected = -torch.special.xlogy(probs, probs).sum(-1).mean(-1)
    return mean_probs, entropy, (entropy - expected).clamp(min=0)


def upsample_map(values: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling for display and metrics that keeps undefined (NaN) pixels undefined.

    NaN pixels are left out of the interpolation (normalised convolution): a display pixel is
    defined where at least half of its interpolation weight falls on defined pixels.

    Args:
        values: (..., h, w), may contain NaN.
        size: output (H, W).

    Returns:
        (..., H, W) float tensor.
    """
    lead = values.shape[:-2]
    flat = values.reshape(-1, 1, *values.shape[-2:]).float()
    valid = ~torch.isnan(flat)
    filled = torch.where(valid, flat, torch.zeros_like(flat))
    up = F.interpolate(filled, size=size, mode="bilinear", align_corners=False)
    if bool(valid.all()):
        return up.reshape(*lead, *size)
    weight = F.interpolate(valid.float(), size=size, mode="bilinear", align_corners=False)
    out = torch.where(weight >= 0.5, up / weight.clamp(min=1e-12), torch.nan)
    return out.reshape(*lead, *size)
