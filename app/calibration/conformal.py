"""Split-conformal prediction sets (Vovk et al. 2005; the LAC score of Sadinle et al. 2019).

The nonconformity score of a frame is 1 - p_true, its probability's shortfall on the true
class. With q the ceil((n + 1) * coverage)-th smallest of the n calibration scores, the set
{k : 1 - p_k <= q} contains a new exchangeable frame's true class with probability at least
``coverage`` (finite-sample, marginal over frames). Frames of one recording are correlated,
which weakens exchangeability between recordings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.calibration.inputs import as_labels, as_open_fraction, as_probabilities

_RANK_SLACK = 1e-9
"""Subtracted from (n + 1) * coverage before the ceiling, so that a decimal coverage such as
0.95 with n + 1 = 20 gives rank 19, not 20 through binary rounding."""


def conformal_rank(n: int, coverage: float) -> int:
    """The rank ceil((n + 1) * coverage) of the calibration score used as the threshold.

    Args:
        n: number of calibration frames.
        coverage: the required coverage, in (0, 1).

    Returns:
        The 1-based rank; above ``n`` when there are too few frames for any finite threshold.
    """
    return math.ceil((n + 1) * as_open_fraction("coverage", coverage) - _RANK_SLACK)


@dataclass(frozen=True)
class ConformalRule:
    """Prediction sets {k : 1 - p_k <= threshold}, always with the top class.

    Attributes:
        threshold: the conformal quantile q of the scores 1 - p_true; +inf when there were too
            few calibration frames for the coverage, so that every set holds every class.
        coverage: the coverage the sets guarantee.
        n: number of calibration frames.
    """

    threshold: float
    coverage: float
    n: int

    @property
    def includes_every_class(self) -> bool:
        """Whether the calibration data were too few, so that every set is every class."""
        return math.isinf(self.threshold)

    def sets(self, probabilities: npt.ArrayLike) -> np.ndarray:
        """The prediction set of each frame.

        A set is never empty: the top class (every class tied for the top probability) is
        always in it. When q < 1 - max p the conformal set would be empty; adding the top class
        only enlarges sets, so the coverage guarantee still holds.

        Args:
            probabilities: (N, K) calibrated probabilities of N frames.

        Returns:
            (N, K) bool, True where class k is in frame n's set.

        Raises:
            ValueError: invalid probabilities (see :mod:`app.calibration.inputs`).
        """
        p = as_probabilities(probabilities)
        return ((1.0 - p) <= self.threshold) | (p == p.max(axis=1, keepdims=True))


def fit_conformal(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, coverage: float
) -> ConformalRule:
    """The split-conformal threshold for ``coverage`` from held-out calibration frames.

    Args:
        probabilities: (N, K) calibrated probabilities of the N calibration frames.
        labels: (N,) their true class indices.
        coverage: the required coverage, in (0, 1), e.g. 0.95.

    Returns:
        The :class:`ConformalRule`: threshold the :func:`conformal_rank`-th smallest score
        1 - p_true, or +inf (every class) when that rank exceeds N, i.e. when
        N < coverage / (1 - coverage) (0.95 needs at least 19 frames).

    Raises:
        ValueError: invalid probabilities or labels, or coverage not in (0, 1).
    """
    p = as_probabilities(probabilities)
    y = as_labels(labels, p.shape[0], p.shape[1])
    n = p.shape[0]
    rank = conformal_rank(n, coverage)
    scores = np.sort(1.0 - p[np.arange(n), y])
    threshold = float(scores[rank - 1]) if rank <= n else math.inf
    return ConformalRule(threshold=threshold, coverage=float(coverage), n=n)
