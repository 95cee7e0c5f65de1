"""Scoring an explainer on images (Poppi et al.'s protocol) and aggregating over a dataset.

For one image x (normalised, as the model expects) and an :class:`app.explain.Explainer`:

1. ``r = explainer(x)``: the explained class c = ``r.class_idx``, Y = ``r.mean_probs[c]`` and the
   map ``r.mean`` upsampled (bilinear) to the input size.
2. The explanation map E = map_up * x (the map broadcast over the channels).
3. ``r' = explainer(E, class_idx=c)``: O = ``r'.mean_probs[c]`` and map' = ``r'.mean`` upsampled.
4. AD(Y, O), Coh(map_up, map'_up), Com(map_up) and ADCC (see :mod:`app.evaluate.metrics`).

The scorer uses whatever the explainer returns, so the same code scores the proposed method
(``mc=True``: MC mean map, MC-averaged probabilities, map' recomputed by the MC method on E) and
the original (``mc=False``: the deterministic model, T = 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.evaluate import metrics
from app.explain import Explainer, Explanation
from app.explain.statistics import upsample_map

NAN_MAP = "nan_map"
"""The map on x has NaN pixels: they mask as 0; complexity and coherency are NaN."""
FLAT_MAP = "flat_map"
"""The map on x is constant (e.g. all zeros): Pearson undefined, coherency NaN."""
FLAT_MASKED_MAP = "flat_masked_map"
"""The map on E is constant: Pearson undefined, coherency NaN."""
ZERO_Y = "zero_y"
"""Y <= 0: the relative drop is undefined, average drop NaN."""

FLAGS: tuple[str, ...] = (
    NAN_MAP,
    FLAT_MAP,
    FLAT_MASKED_MAP,
    ZERO_Y,
    metrics.ADCC_ZERO,
    metrics.ADCC_UNDEFINED,
)
"""Every flag a score can carry, in a fixed order (``aggregate`` counts each)."""


@dataclass(frozen=True)
class ExplanationScore:
    """Poppi et al.'s metrics for one image.

    Attributes:
        average_drop: AD = max(0, Y - O) / Y in [0, 1]; NaN when Y <= 0.
        coherency: (Pearson(map, map') + 1) / 2 in [0, 1]; NaN when a map is flat or has NaN.
        complexity: mean |map| in [0, 1]; NaN when the map has NaN.
        adcc: harmonic mean of Coh, 1 - Com, 1 - AD in [0, 1]; 0 when a term is 0, NaN when a
            component is NaN.
        class_idx: the class explained (the same on x and on E).
        y: probability of ``class_idx`` on x (MC-averaged for the proposed method).
        o: probability of ``class_idx`` on the explanation map E, computed the same way.
        map_size: (h, w) of the explainer's maps (target-layer resolution).
        input_size: (H, W) of the input, the size the maps are upsampled to for the metrics.
        flags: the undefined / limit cases that occurred, names from :data:`FLAGS`.
    """

    average_drop: float
    coherency: float
    complexity: float
    adcc: float
    class_idx: int
    y: float
    o: float
    map_size: tuple[int, int]
    input_size: tuple[int, int]
    flags: tuple[str, ...] = ()


def explanation_input(map_: Tensor, x: Tensor) -> Tensor:
    """The explanation map E = map_up * x: the input weighted by its upsampled attribution.

    Args:
        map_: (h, w) or (B, h, w) attribution map in [0, 1]; NaN pixels count as 0.
        x: (C, H, W) or (B, C, H, W) normalised input.

    Returns:
        E with the shape of ``x``, on ``map_``'s device.
    """
    up = torch.nan_to_num(upsample_map(map_, tuple(x.shape[-2:])), nan=0.0)
    return up.unsqueeze(-3).to(dtype=x.dtype) * x.to(up.device)


def score_maps(
    map_: Tensor,
    masked_map: Tensor,
    y: float,
    o: float,
    class_idx: int,
    input_size: tuple[int, int],
) -> ExplanationScore:
    """Score one image from its two maps and two probabilities (no model involved).

    Args:
        map_: (h, w) attribution map on x, in [0, 1].
        masked_map: (h', w') attribution map on E for the same class.
        y: probability of the class on x.
        o: probability of the class on E.
        class_idx: the class explained.
        input_size: (H, W) both maps are upsampled to (bilinear) before the metrics.

    Returns:
        The :class:`ExplanationScore`, with its flags.
    """
    up = upsample_map(map_.detach(), input_size)
    up_masked = upsample_map(masked_map.detach(), input_size)
    flags: list[str] = []
    if not bool(torch.isfinite(up).all()):
        flags.append(NAN_MAP)
    if metrics.is_flat(up):
        flags.append(FLAT_MAP)
    if metrics.is_flat(up_masked):
        flags.append(FLAT_MASKED_MAP)
    y, o = float(y), float(o)
    if not y > 0.0:
        flags.append(ZERO_Y)
    ad = metrics.average_drop(y, o)
    coh = metrics.coherency(up, up_masked)
    com = metrics.complexity(up)
    case = metrics.adcc_case(ad, coh, com)
    if case is not None:
        flags.append(case)
    return ExplanationScore(
        average_drop=ad,
        coherency=coh,
        complexity=com,
        adcc=metrics.adcc(ad, coh, com),
        class_idx=int(class_idx),
        y=y,
        o=o,
        map_size=(int(map_.shape[-2]), int(map_.shape[-1])),
        input_size=(int(input_size[0]), int(input_size[1])),
        flags=tuple(flags),
    )


def _frames(r: Explanation) -> tuple[Tensor, Tensor, Tensor]:
    """(B, h, w) mean maps, (B, K) mean probabilities and (B,) classes of a result."""
    if r.batched:
        return r.mean, r.mean_probs, torch.as_tensor(r.class_idx).reshape(-1)
    return r.mean.unsqueeze(0), r.mean_probs.unsqueeze(0), torch.tensor([int(r.class_idx)])


def score_explanations(
    explainer: Explainer, x: Tensor, class_idx: int | Sequence[int] | Tensor | None = None
) -> list[ExplanationScore]:
    """Score a batch: one explainer call on x and one on the explanation maps E.

    Args:
        explainer: the explainer under evaluation (``mc=True``: proposed, ``mc=False``:
            original); its seed, passes and method apply to both calls.
        x: (B, C, H, W) normalised input (or (C, H, W) for one image).
        class_idx: class(es) to explain; None explains the explainer's default (the argmax
            of the MC-averaged softmax).

    Returns:
        B :class:`ExplanationScore`, in the order of x.
    """
    if x.ndim == 3:
        x = x.unsqueeze(0)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    maps, probs, classes = _frames(explainer(x, class_idx=class_idx))
    e = explanation_input(maps, x)
    masked_maps, masked_probs, _ = _frames(explainer(e, class_idx=classes))
    rows = torch.arange(len(classes))
    y = probs[rows, classes.to(probs.device)].tolist()
    o = masked_probs[rows, classes.to(masked_probs.device)].tolist()
    return [
        score_maps(maps[b], masked_maps[b], y[b], o[b], int(classes[b]), size)
        for b in range(len(classes))
    ]


def score_explanation(
    explainer: Explainer, x: Tensor, class_idx: int | None = None
) -> ExplanationScore:
    """Score one image: Average Drop, Coherency, Complexity and ADCC of ``explainer`` on x.

    Args:
        explainer: the explainer under evaluation (``mc=True``: proposed, ``mc=False``:
            original).
        x: (1, C, H, W) or (C, H, W) normalised input.
        class_idx: the class to explain; None explains the explainer's default class.

    Returns:
        The :class:`ExplanationScore`.

    Raises:
        ValueError: x holds more than one image (use :func:`score_explanations`).
    """
    if x.ndim == 4 and x.shape[0] != 1:
        raise ValueError(f"score_explanation takes one image, got a batch of {x.shape[0]}")
    return score_explanations(explainer, x, class_idx)[0]


def nanmean(values: Iterable[float | None]) -> float:
    """The mean of the defined values (None and NaN left out); NaN when none is defined."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def aggregate(scores: Iterable[ExplanationScore]) -> dict[str, object]:
    """Dataset summary, with ADCC computed both ways the literature does.

    Args:
        scores: per-image scores.

    Returns:
        A dict with
        ``images`` (count), ``mean_average_drop``, ``mean_coherency``, ``mean_complexity``
        (NaN-means over the images where each is defined), ``mean_of_per_image_adcc`` (NaN-mean
        of the per-image ADCC), ``adcc_of_mean_components`` (ADCC of the three means),
        ``adcc_images`` (images with a defined ADCC) and ``flag_counts`` (images carrying each
        flag of :data:`FLAGS`, zeros included). Means over no defined value are NaN.
    """
    scores = list(scores)
    ad = nanmean([s.average_drop for s in scores])
    coh = nanmean([s.coherency for s in scores])
    com = nanmean([s.complexity for s in scores])
    return {
        "images": len(scores),
        "mean_average_drop": ad,
        "mean_coherency": coh,
        "mean_complexity": com,
        "mean_of_per_image_adcc": nanmean([s.adcc for s in scores]),
        "adcc_of_mean_components": metrics.adcc(ad, coh, com),
        "adcc_images": sum(not math.isnan(s.adcc) for s in scores),
        "flag_counts": {flag: sum(flag in s.flags for s in scores) for flag in FLAGS},
    }
