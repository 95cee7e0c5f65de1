"""An abstention threshold whose error among accepted frames is bounded with stated confidence.

A frame is accepted when its confidence score (higher = more confident, e.g. the calibrated
top probability) is at least the threshold, and abstained ("uncertain") otherwise. The
threshold is chosen by Learn-then-Test (Angelopoulos et al. 2021) with fixed-sequence testing:
candidate thresholds, from the most confident to the least, each test "the error among
accepted frames exceeds the target" with a one-sided Clopper-Pearson bound, and the search
stops at the first candidate that fails. Because each hypothesis is tested only once all
before it were rejected, the returned threshold keeps the error among accepted frames at or
below the target with probability at least 1 - delta over the calibration sample, although it
was chosen among many thresholds. Frames must be exchangeable with the calibration frames; frames
of one recording are correlated, which this bound does not account for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.calibration.inputs import as_open_fraction


def clopper_pearson_upper(
    errors: npt.ArrayLike, n: npt.ArrayLike, delta: float
) -> float | np.ndarray:
    """One-sided (1 - delta) Clopper-Pearson upper confidence bound on a binomial proportion.

    The rate r for which seeing at most ``errors`` errors in ``n`` trials has probability
    ``delta``: the 1 - delta quantile of Beta(errors + 1, n - errors); 1 when errors == n
    (including n == 0). For errors == 0 it is 1 - delta ** (1 / n).

    Args:
        errors: number of errors k, an integer or an integer array.
        n: number of trials, broadcastable with ``errors``.
        delta: the probability that the bound is below the true rate, in (0, 1).

    Returns:
        The bound in (0, 1]: a float for scalar inputs, else an array of the broadcast shape.

    Raises:
        ValueError: non-integer counts, errors < 0 or errors > n, or delta not in (0, 1).
    """
    delta = as_open_fraction("delta", delta)
    k, trials = np.asarray(errors), np.asarray(n)
    if not (np.issubdtype(k.dtype, np.integer) and np.issubdtype(trials.dtype, np.integer)):
        raise ValueError(f"errors and n must be integers, got {k.dtype} and {trials.dtype}")
    if (k < 0).any() or (k > trials).any():
        raise ValueError("errors must satisfy 0 <= errors <= n")
    # scipy.stats takes seconds to import; applying a fitted rule does not need it.
    from scipy.stats import beta

    below_n = k < trials
    upper = np.where(below_n, beta.ppf(1.0 - delta, k + 1, np.where(below_n, trials - k, 1)), 1.0)
    return float(upper) if upper.ndim == 0 else upper


@dataclass(frozen=True)
class AbstentionRule:
    """Accept a frame when its confidence score is at least ``threshold``.

    Attributes:
        threshold: the lowest accepted score; +inf when no threshold met the target, so that
            every frame is abstained.
        target_error: the error rate among accepted frames that the rule keeps to, with
            confidence 1 - delta.
        delta: the probability allowed for that guarantee to fail.
        accepted_fraction: fraction of the calibration frames accepted.
        accepted_error: error rate among the accepted calibration frames (NaN if none).
        error_bound: the Clopper-Pearson (1 - delta) upper bound on that error, at most
            ``target_error`` unless nothing is accepted (then 1).
        n: number of calibration frames.
    """

    threshold: float
    target_error: float
    delta: float
    accepted_fraction: float
    accepted_error: float
    error_bound: float
    n: int

    @property
    def abstains_on_everything(self) -> bool:
        """Whether no threshold met the target on the calibration data."""
        return math.isinf(self.threshold)

    def accepts(self, score: npt.ArrayLike) -> bool | np.ndarray:
        """Whether frames with these scores are accepted (not abstained).

        Args:
            score: a frame's confidence score, or an array of them; NaN is never accepted.

        Returns:
            A bool for a scalar score, else a bool array of the same shape.
        """
        accepted = np.asarray(score, dtype=np.float64) >= self.threshold
        return bool(accepted) if accepted.ndim == 0 else accepted

    def describe(self) -> str:
        """One sentence saying what the rule guarantees, or that it abstains on everything."""
        confidence = f"{1 - self.delta:.0%} confidence"
        if self.abstains_on_everything:
            return (
                f"abstains on every frame: no threshold keeps the error among accepted frames "
                f"at or below {self.target_error:.2%} with {confidence} on {self.n} frames"
            )
        return (
            f"accepts scores >= {self.threshold:.4g}: {self.accepted_fraction:.1%} of {self.n} "
            f"frames, error {self.accepted_error:.2%} among them, at most "
            f"{self.target_error:.2%} with {confidence} (bound {self.error_bound:.2%})"
        )


def _scores_and_wrong(scores: npt.ArrayLike, wrong: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(wrong)
    if s.ndim != 1 or s.shape[0] == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    if w.shape != s.shape:
        raise ValueError(f"wrong must have the shape of scores {s.shape}, got {w.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    zero_one = np.issubdtype(w.dtype, np.integer) and np.isin(w, (0, 1)).all()
    if w.dtype != np.bool_ and not zero_one:
        raise ValueError(f"wrong must be booleans (or 0/1), got dtype {w.dtype}")
    return s, w.astype(bool)


def fit_abstention(
    scores: npt.ArrayLike, wrong: npt.ArrayLike, *, target_error: float, delta: float
) -> AbstentionRule:
    """The threshold fixed-sequence testing reaches: the last candidate before the first failure.

    The candidates are the distinct calibration scores, from the highest down; candidate s
    accepts every frame scoring at least s (the accepted set changes at these scores only, so
    they stand for every threshold). The sequence starts at the first candidate with
    enough accepted frames that zero errors could pass (clopper_pearson_upper(0, m, delta) <=
    target_error; fewer frames could never pass and would end the search at once), which
    depends on the number of frames only, not on their errors. This is how Angelopoulos and
    Bates' selective-classification example keeps only thresholds with enough data.

    Args:
        scores: (N,) confidence score of each calibration frame, higher = more confident.
        wrong: (N,) True where the frame's predicted class is not its label.
        target_error: the highest acceptable error rate among accepted frames, in (0, 1).
        delta: the probability allowed for the guarantee to fail, in (0, 1).

    Returns:
        The :class:`AbstentionRule`; when even the first candidate fails (or none has enough
        frames) a rule that abstains on everything (threshold +inf).

    Raises:
        ValueError: empty, non-finite or mismatched inputs, or a level not in (0, 1).
    """
    target_error = as_open_fraction("target_error", target_error)
    delta = as_open_fraction("delta", delta)
    s, w = _scores_and_wrong(scores, wrong)
    n = s.shape[0]
    order = np.argsort(-s, kind="stable")
    s, w = s[order], w[order]
    # A candidate's accepted frames end at the last frame of its group of tied scores.
    last_of_tie = np.append(s[1:] != s[:-1], True)
    thresholds = s[last_of_tie]
    accepted = np.arange(1, n + 1)[last_of_tie]
    errors = np.cumsum(w)[last_of_tie]
    bounds = clopper_pearson_upper(errors, accepted, delta)
    could_pass = np.flatnonzero(clopper_pearson_upper(0, accepted, delta) <= target_error)
    start = int(could_pass[0]) if could_pass.size else len(bounds)
    passed = bounds[start:] <= target_error
    run = len(passed) if passed.all() else int(np.argmin(passed))
    if run == 0:
        return AbstentionRule(math.inf, target_error, delta, 0.0, math.nan, 1.0, n)
    last = start + run - 1
    return AbstentionRule(
        threshold=float(thresholds[last]),
        target_error=target_error,
        delta=delta,
        accepted_fraction=float(accepted[last] / n),
        accepted_error=float(errors[last] / accepted[last]),
        error_bound=float(bounds[last]),
        n=n,
    )
