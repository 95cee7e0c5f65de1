"""Proposed vs original, paired image by image: is the difference in ADCC real?

The paper's claim is that the proposed (MC-mean) explanation scores at least as well as the
original by ADCC. Both are scored on the same images, so the honest test is paired: the
per-image difference d = ADCC(proposed) - ADCC(original) over the images where both are
defined, its mean with a bootstrap 95 % interval, how often the proposed is at least as good,
and the mean difference per recording (frames of one video are correlated, so a difference
carried by one recording shows there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["paired_comparison", "verdict"]

_RESAMPLES = 2000
_TIE = 1e-9


def verdict(low: float, high: float) -> str:
    """What a 95 % interval of the mean difference says about "proposed >= original"."""
    if math.isnan(low) or math.isnan(high):
        return "no paired images"
    if low > 0:
        return "proposed higher"
    if high < 0:
        return "proposed lower"
    return "no detectable difference"


def paired_comparison(
    original: Sequence[Mapping[str, Any]],
    proposed: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Pair the score records of one method by (recording, frame) and compare their ADCC.

    Args:
        original: the original explainer's records (``recording``, ``frame``, ``adcc``).
        proposed: the proposed explainer's records for the same images.
        seed: seed of the bootstrap resampling.

    Returns:
        ``pairs`` (images where both ADCCs are defined), ``mean_difference``, ``ci_low`` and
        ``ci_high`` (bootstrap 95 % interval of the mean), ``at_least_as_good`` (share of pairs
        with d >= 0, ties within 1e-9 included), ``higher``/``tied``/``lower`` (counts),
        ``per_recording`` ({recording: mean d}) and ``verdict``.
    """
    before = {(r["recording"], r["frame"]): r["adcc"] for r in original}
    pairs: list[tuple[str, float]] = []
    for r in proposed:
        a, b = before.get((r["recording"], r["frame"]), math.nan), r["adcc"]
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            pairs.append((r["recording"], b - a))
    if not pairs:
        nan = math.nan
        return {
            "pairs": 0,
            "mean_difference": nan,
            "ci_low": nan,
            "ci_high": nan,
            "at_least_as_good": nan,
            "higher": 0,
            "tied": 0,
            "lower": 0,
            "per_recording": {},
            "verdict": verdict(nan, nan),
        }
    d = np.array([v for _, v in pairs], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (_RESAMPLES, d.size))].mean(axis=1)
    low, high = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    recordings = sorted({name for name, _ in pairs})
    return {
        "pairs": int(d.size),
        "mean_difference": float(d.mean()),
        "ci_low": low,
        "ci_high": high,
        "at_least_as_good": float(np.mean(d >= -_TIE)),
        "higher": int(np.sum(d > _TIE)),
        "tied": int(np.sum(np.abs(d) <= _TIE)),
        "lower": int(np.sum(d < -_TIE)),
        "per_recording": {
            name: float(np.mean([v for n, v in pairs if n == name])) for name in recordings
        },
        "verdict": verdict(low, high),
    }
