"""The per-image metrics of Poppi et al. (CVPR-W 2021): Average Drop, Coherency, Complexity, ADCC.

Each function is the authors' formula on plain numbers or maps; none of them runs a model.
Where a formula is undefined it returns NaN (never inf, never a silent 0), except the harmonic
mean, whose limit is 0 when one of its terms is 0. :func:`adcc_case` and :func:`is_flat` name
the case, so that a caller can record it (see :mod:`app.evaluate.scoring`).

Undefined cases:
    - Pearson correlation with a flat map (max - min <= ``flat_tol``) -> NaN, so coherency NaN.
    - Average Drop with Y <= 0 (or Y not finite) -> NaN.
    - ADCC with a NaN component -> NaN.
    - ADCC with Coh == 0, Com == 1 or AD == 1 (a zero in a harmonic-mean denominator) -> 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

FLAT_TOL = 1e-6
"""Maps whose range (max - min) is at most this are flat; maps here are in [0, 1]."""

ADCC_ZERO = "adcc_zero_term"
"""ADCC flag: Coh == 0, Com == 1 or AD == 1, so the harmonic mean is 0."""

ADCC_UNDEFINED = "adcc_undefined"
"""ADCC flag: a component is NaN, so ADCC is NaN."""


def is_flat(map_: Tensor, flat_tol: float = FLAT_TOL) -> bool:
    """Whether a map is constant (within ``flat_tol``), so that its correlation is undefined.

    Args:
        map_: (..., H, W) map; a map containing NaN is not called flat (see :func:`pearson`).
        flat_tol: largest range (max - min) that still counts as constant.

    Returns:
        True when the finite map's range is at most ``flat_tol``.
    """
    values = map_.detach().double()
    if values.numel() == 0 or not bool(torch.isfinite(values).all()):
        return False
    return float(values.max() - values.min()) <= flat_tol


def pearson(a: Tensor, b: Tensor, flat_tol: float = FLAT_TOL) -> float:
    """Pearson correlation coefficient over all pixels of two maps, in float64.

    Args:
        a: (..., H, W) map.
        b: map of the same shape as ``a``.
        flat_tol: a map whose range is at most this is flat (see :func:`is_flat`).

    Returns:
        The correlation in [-1, 1]; NaN when either map is flat (zero variance: undefined) or
        contains NaN / inf.

    Raises:
        ValueError: the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(
            f"maps must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    x = a.detach().double().reshape(-1)
    y = b.detach().double().reshape(-1)
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        return math.nan
    if is_flat(x, flat_tol) or is_flat(y, flat_tol):
        return math.nan
    x = x - x.mean()
    y = y - y.mean()
    r = float((x * y).sum() / torch.sqrt((x * x).sum() * (y * y).sum()))
    return min(1.0, max(-1.0, r))


def coherency(map_: Tensor, masked_map: Tensor, flat_tol: float = FLAT_TOL) -> float:
    """Coherency: (Pearson(map, map') + 1) / 2.

    ``map'`` is the map the same explainer produces, for the same class, on the explanation
    map E = map * x. A coherent explanation keeps its own attribution when only the attributed
    part of the image is left.

    Args:
        map_: (H, W) attribution map on the input, upsampled to the input size.
        masked_map: (H, W) attribution map on E, upsampled to the input size.
        flat_tol: see :func:`pearson`.

    Returns:
        Coherency in [0, 1] (1: same map, 0: negated map); NaN when the correlation is
        undefined (a flat map, e.g. all zeros, or a NaN pixel).
    """
    return (pearson(map_, masked_map, flat_tol) + 1.0) / 2.0


def complexity(map_: Tensor) -> float:
    """Complexity: L1 norm of the map divided by its number of pixels, i.e. mean |map|.

    Args:
        map_: (H, W) attribution map in [0, 1], upsampled to the input size.

    Returns:
        Complexity in [0, 1] (0 for an all-zero map); NaN when the map contains NaN or is empty.
    """
    values = map_.detach().double()
    if values.numel() == 0:
        return math.nan
    return float(values.abs().mean())


def average_drop(y: float, o: float) -> float:
    """Average Drop of one image: max(0, Y - O) / Y.

    Args:
        y: softmax probability of the explained class on the input (MC-averaged for the
            proposed method).
        o: softmax probability of the same class on the explanation map E, computed the same way.

    Returns:
        The drop in [0, 1] (0 when the confidence rises, O > Y); NaN when Y <= 0 or either
        value is not finite (the relative drop is undefined).
    """
    y, o = float(y), float(o)
    if not (math.isfinite(y) and math.isfinite(o)) or y <= 0.0:
        return math.nan
    return max(0.0, y - o) / y


def adcc_case(average_drop: float, coherency: float, complexity: float) -> str | None:
    """Which special case of :func:`adcc` applies.

    Args:
        average_drop: AD in [0, 1] or NaN.
        coherency: Coh in [0, 1] or NaN.
        complexity: Com in [0, 1] or NaN.

    Returns:
        :data:`ADCC_UNDEFINED` when a component is NaN, :data:`ADCC_ZERO` when a harmonic-mean
        term is zero (Coh <= 0, Com >= 1 or AD >= 1), None for the ordinary formula.
    """
    values = (average_drop, coherency, complexity)
    if any(math.isnan(float(v)) for v in values):
        return ADCC_UNDEFINED
    if coherency <= 0.0 or complexity >= 1.0 or average_drop >= 1.0:
        return ADCC_ZERO
    return None


def adcc(average_drop: float, coherency: float, complexity: float) -> float:
    """ADCC: the harmonic mean of Coh, 1 - Com and 1 - AD.

    ADCC = 3 / (1 / Coh + 1 / (1 - Com) + 1 / (1 - AD))

    Args:
        average_drop: AD in [0, 1].
        coherency: Coh in [0, 1].
        complexity: Com in [0, 1].

    Returns:
        ADCC in [0, 1]; 0 when a term is zero (Coh == 0, Com == 1 or AD == 1: the harmonic
        mean tends to 0 there); NaN when a component is NaN.
    """
    case = adcc_case(average_drop, coherency, complexity)
    if case == ADCC_UNDEFINED:
        return math.nan
    if case == ADCC_ZERO:
        return 0.0
    return 3.0 / (1.0 / coherency + 1.0 / (1.0 - complexity) + 1.0 / (1.0 - average_drop))
