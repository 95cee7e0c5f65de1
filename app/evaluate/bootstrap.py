"""Bootstrap intervals over recordings, not frames: frames of one video are correlated.

A resample draws as many recordings as there are, with replacement, and keeps all of their
frames; :class:`RecordingBootstrap` holds every resample as per-recording counts, so a figure
that is a ratio of per-recording sums (:func:`ratio` of :func:`recording_sums`) is computed for
all resamples at once. The trust report (:mod:`app.evaluate.trust`) and the risk-map study
(:mod:`app.evaluate.risk_map`) take their intervals from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LEVEL",
    "Estimate",
    "RecordingBootstrap",
    "Statistic",
    "ratio",
    "recording_sums",
]

LEVEL = 0.95
"""Level of the bootstrap percentile intervals."""

_CELLS_PER_CHUNK = 4_000_000
"""Resamples are evaluated in chunks of at most this many (resample, column) cells."""


@dataclass(frozen=True)
class Estimate:
    """A figure and its bootstrap interval over recordings.

    Attributes:
        value: the figure on the evaluated frames; NaN when undefined.
        low: the 2.5th percentile of the resampled figures (NaN when none is defined).
        high: the 97.5th percentile.
        resamples: how many resamples the figure was defined in (the others are skipped).
    """

    value: float
    low: float
    high: float
    resamples: int


Statistic = Callable[[np.ndarray], np.ndarray]
"""(B, R) recording counts -> (B,) figure per resample (NaN where undefined)."""


class RecordingBootstrap:
    """Resamples of the recordings, as counts: ``counts[b, r]`` = how often resample b drew
    recording r (R draws with replacement)."""

    def __init__(self, n_recordings: int, resamples: int, seed: int) -> None:
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        draws = rng.integers(0, n_recordings, size=(resamples, n_recordings))
        self.counts = np.zeros((resamples, n_recordings))
        np.add.at(self.counts, (np.repeat(np.arange(resamples), n_recordings), draws.ravel()), 1)

    def estimate(self, value: float | None, statistic: Statistic, width: int = 1) -> Estimate:
        """``value`` with the percentile interval of ``statistic`` over the resamples.

        Args:
            value: the figure on the evaluated frames (None or NaN: undefined).
            statistic: the figure as a function of recording counts.
            width: columns of the statistic's intermediate (B, width) arrays, to size chunks.
        """
        step = max(1, _CELLS_PER_CHUNK // max(width, 1))
        values = np.concatenate(
            [statistic(self.counts[i : i + step]) for i in range(0, len(self.counts), step)]
        )
        defined = values[np.isfinite(values)]
        value = math.nan if value is None else float(value)
        if not defined.size or not math.isfinite(value):
            return Estimate(value, math.nan, math.nan, int(defined.size))
        tail = 50.0 * (1.0 - LEVEL)
        low, high = np.percentile(defined, [tail, 100.0 - tail])
        return Estimate(value, float(low), float(high), int(defined.size))


def recording_sums(values: np.ndarray, rid: np.ndarray, n_recordings: int) -> np.ndarray:
    """Per-recording sums of per-frame values (bool counts as 0/1)."""
    return np.bincount(rid, weights=np.asarray(values, dtype=np.float64), minlength=n_recordings)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> Statistic:
    """sum(count * numerator) / sum(count * denominator) over recordings; NaN for 0 / 0."""

    def statistic(counts: np.ndarray) -> np.ndarray:
        top, bottom = counts @ numerator, counts @ denominator
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(bottom > 0, top / bottom, np.nan)

    return statistic
