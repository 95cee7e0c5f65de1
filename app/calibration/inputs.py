"""What the calibration functions accept: per-frame class probabilities and integer labels.

Every function of :mod:`app.calibration` validates its inputs here, so that a bad input fails
with the same message wherever it enters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PROBABILITY_FLOOR = float(np.finfo(np.float32).tiny)
"""Smallest probability treated as nonzero (about 1.2e-38, float32's smallest normal number).

``log p`` and the negative log-likelihood use ``max(p, PROBABILITY_FLOOR)``: a probability the
engine's float32 softmax rounded to 0 counts as a logit gap of at most -log(floor) = 87.3 nats,
never as -inf.
"""

SUM_TOLERANCE = 1e-4
"""How far a frame's probabilities may sum from 1 (a float32 softmax is within about 1e-6)."""


def as_probabilities(probabilities: npt.ArrayLike, *, passes: bool = False) -> np.ndarray:
    """Validated class probabilities, as float64.

    Args:
        probabilities: (N, K) per-frame probabilities or, when ``passes`` is True, also
            (N, T, K) per-pass probabilities (T Monte Carlo passes per frame).
        passes: whether the (N, T, K) form is allowed.

    Returns:
        The probabilities as a float64 array of the same shape.

    Raises:
        ValueError: wrong number of dimensions, no frames, no passes or fewer than 2 classes;
            a value that is NaN, infinite or negative; a distribution that does not sum to 1
            within :data:`SUM_TOLERANCE`.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    shapes = "(N, K) or (N, T, K)" if passes else "(N, K)"
    if p.ndim not in ((2, 3) if passes else (2,)):
        raise ValueError(f"probabilities must be {shapes}, got shape {p.shape}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probabilities are empty: shape {p.shape}")
    if p.shape[-1] < 2:
        raise ValueError(f"probabilities need at least 2 classes, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities contain NaN or infinite values")
    if (p < 0).any():
        raise ValueError(f"probabilities contain negative values (min {p.min():.3g})")
    gap = np.abs(p.sum(axis=-1) - 1.0).max()
    if gap > SUM_TOLERANCE:
        raise ValueError(
            f"probabilities must sum to 1 over the classes (within {SUM_TOLERANCE:g}); "
            f"one distribution is off by {gap:.3g}"
        )
    return p


def as_labels(labels: npt.ArrayLike, n: int, num_classes: int) -> np.ndarray:
    """Validated true class indices.

    Args:
        labels: (N,) integer class index of each frame.
        n: the number of frames N they must label.
        num_classes: K; every label must be in [0, K).

    Returns:
        (N,) int64 array.

    Raises:
        ValueError: not a 1-D integer array of length ``n``, or a label out of range.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if ((y < 0) | (y >= num_classes)).any():
        raise ValueError(
            f"labels must be in [0, {num_classes}), got values from {y.min()} to {y.max()}"
        )
    return y.astype(np.int64)


def as_open_fraction(name: str, value: float) -> float:
    """A level, rate or coverage strictly between 0 and 1.

    Args:
        name: the argument's name, for the message.
        value: the number to check.

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: ``value`` is not in the open interval (0, 1) (NaN included).
    """
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return value
