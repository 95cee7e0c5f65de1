"""Temperature scaling (Guo et al. 2017) from softmax probabilities.

The engine keeps each pass's softmax probabilities, not its logits. softmax(z) = p gives
log p = z - logsumexp(z), and a softmax is unchanged by a shift, so softmax(log p / tau) equals
softmax(z / tau): scaling the log-probabilities is scaling the logits. With Monte Carlo passes
each pass is scaled, then the scaled passes are averaged.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from app.calibration.inputs import PROBABILITY_FLOOR, as_labels, as_probabilities
from app.calibration.reliability import negative_log_likelihood

TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The temperatures :func:`fit_temperature` searches between."""

_GRID_POINTS = 61


def _scaled_mean(log_p: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log_p / temperature) over the last axis; for (N, T, K) also the mean over T."""
    z = log_p / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    q = e / e.sum(axis=-1, keepdims=True)
    return q.mean(axis=1) if q.ndim == 3 else q


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(p, PROBABILITY_FLOOR))


def scaled_probabilities(pass_probs: npt.ArrayLike, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities, MC-averaged when there are passes.

    Args:
        pass_probs: (N, T, K) per-pass softmax probabilities of N frames, or (N, K) one
            distribution per frame (the same as T = 1).
        temperature: tau > 0; tau > 1 softens, tau < 1 sharpens, tau = 1 changes nothing.

    Returns:
        (N, K) float64: the mean over the T passes of softmax(log p / tau) (probabilities under
        :data:`~app.calibration.inputs.PROBABILITY_FLOOR` count as the floor).

    Raises:
        ValueError: invalid probabilities (see :mod:`app.calibration.inputs`), or a temperature
            that is not a finite positive number.
    """
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature}")
    return _scaled_mean(_log(as_probabilities(pass_probs, passes=True)), temperature)


def fit_temperature(pass_probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """The temperature that minimises the NLL of the (MC-mean) scaled probabilities.

    The search is over log tau in log :data:`TEMPERATURE_BOUNDS`: a grid of 61 points, then
    bounded Brent minimisation (``scipy.optimize.minimize_scalar``) between the best grid
    point's neighbours, so that a second local minimum of the MC-mean objective cannot trap it.
    Deterministic. A temperature at a bound means the optimum lies beyond it (for instance a
    bound of 0.05 when every frame is right).

    Args:
        pass_probs: (N, T, K) per-pass softmax probabilities of N calibration frames, or (N, K).
        labels: (N,) true class indices.

    Returns:
        The fitted temperature tau, within :data:`TEMPERATURE_BOUNDS`.

    Raises:
        ValueError: invalid probabilities or labels (see :mod:`app.calibration.inputs`).
    """
    p = as_probabilities(pass_probs, passes=True)
    y = as_labels(labels, p.shape[0], p.shape[-1])
    # scipy.optimize takes a second to import; applying a temperature does not need it.
    from scipy.optimize import minimize_scalar

    log_p = _log(p)

    def nll(log_temperature: float) -> float:
        return negative_log_likelihood(_scaled_mean(log_p, math.exp(log_temperature)), y)

    grid = np.linspace(*np.log(TEMPERATURE_BOUNDS), _GRID_POINTS)
    values = [nll(x) for x in grid]
    best = int(np.argmin(values))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, _GRID_POINTS - 1)])
    refined = minimize_scalar(nll, bounds=bracket, method="bounded", options={"xatol": 1e-6})
    log_temperature = refined.x if refined.fun <= values[best] else grid[best]
    return float(math.exp(log_temperature))
