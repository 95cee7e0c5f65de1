"""Localisation against ground-truth masks: IoU of the thresholded map and the pointing game.

Both work at the model's input size, inside the field of view: the map (target-layer
resolution) is upsampled bilinearly (:func:`app.explain.statistics.upsample_map`) and only
the disc pixels count.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from app.explain.statistics import upsample_map

THRESHOLD = 0.5
"""Map values at or above this are the explained region (maps are in [0, 1])."""


def upsampled(map_: torch.Tensor, size: int) -> np.ndarray:
    """A (h, w) map upsampled to (size, size) as float32 numpy (NaN stays NaN)."""
    return upsample_map(map_.detach().float().cpu(), (size, size)).numpy()


def explained_region(
    map_up: np.ndarray, fov: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """The pixels the map marks: ``map >= threshold`` inside the field of view (NaN: unmarked).

    Returns:
        bool, the shape of ``map_up``.
    """
    return (np.nan_to_num(map_up, nan=-1.0) >= threshold) & fov


def iou(
    map_up: np.ndarray, mask: np.ndarray, fov: np.ndarray, threshold: float = THRESHOLD
) -> float:
    """IoU of :func:`explained_region` with the mask, inside the field of view.

    Returns:
        The IoU in [0, 1]; NaN when both regions are empty (undefined).
    """
    region = explained_region(map_up, fov, threshold)
    truth = mask & fov
    union = int((region | truth).sum())
    return float((region & truth).sum()) / union if union else math.nan


def pointing_hit(map_up: np.ndarray, mask: np.ndarray, fov: np.ndarray) -> float:
    """1.0 when the map's maximum inside the field of view falls in the mask, else 0.0.

    Returns:
        NaN when the frame's mask is empty or the map is undefined everywhere in the disc.
    """
    truth = mask & fov
    values = np.where(fov & ~np.isnan(map_up), map_up, -np.inf)
    if not truth.any() or not np.isfinite(values).any():
        return math.nan
    return float(truth.reshape(-1)[int(np.argmax(values))])
