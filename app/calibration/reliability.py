"""How well probabilities are calibrated: ECE, NLL, Brier score and the reliability diagram.

All of them take one distribution per frame; for Monte Carlo passes, pass the MC mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.calibration.inputs import PROBABILITY_FLOOR, as_labels, as_probabilities

ECE_BINS = 15
"""Equal-width confidence bins of the ECE and the reliability diagram (Guo et al. 2017)."""


def _checked(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = as_probabilities(probabilities)
    return p, as_labels(labels, p.shape[0], p.shape[1])


def expected_calibration_error(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = ECE_BINS
) -> float:
    """Top-label expected calibration error (L1), computed by torchmetrics.

    torchmetrics' ``multiclass_calibration_error``: the frames are binned by their top
    probability into ``n_bins`` equal-width bins, and the ECE is the count-weighted mean of
    |accuracy - mean confidence| over the bins.

    Args:
        probabilities: (N, K) probabilities of each frame.
        labels: (N,) true class indices.
        n_bins: number of equal-width confidence bins.

    Returns:
        The ECE in [0, 1].

    Raises:
        ValueError: invalid probabilities or labels (see :mod:`app.calibration.inputs`).
    """
    p, y = _checked(probabilities, labels)
    # torchmetrics takes seconds to import, and only the ECE needs it (and torch).
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    # torchmetrics applies a softmax when any value is outside [0, 1]; float32 rounding may
    # leave a probability at 1 + 1e-7, which must not be mistaken for a logit.
    preds = torch.from_numpy(np.clip(p, 0.0, 1.0))
    ece = multiclass_calibration_error(
        preds, torch.from_numpy(y), num_classes=p.shape[1], n_bins=n_bins, norm="l1"
    )
    return float(ece)


def negative_log_likelihood(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of the true classes, in nats.

    Args:
        probabilities: (N, K) probabilities of each frame.
        labels: (N,) true class indices.

    Returns:
        mean of -log max(p_true, :data:`~app.calibration.inputs.PROBABILITY_FLOOR`), so at
        most 87.3 per frame, never inf.

    Raises:
        ValueError: invalid probabilities or labels.
    """
    p, y = _checked(probabilities, labels)
    p_true = p[np.arange(len(y)), y]
    return float(-np.log(np.maximum(p_true, PROBABILITY_FLOOR)).mean())


def brier_score(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Multiclass Brier score (Brier 1950): the squared error against the one-hot label,
    summed over the classes and averaged over the frames.

    Args:
        probabilities: (N, K) probabilities of each frame.
        labels: (N,) true class indices.

    Returns:
        The score in [0, 2]; 0 for a certain and right prediction, 2 for a certain and wrong one.

    Raises:
        ValueError: invalid probabilities or labels.
    """
    p, y = _checked(probabilities, labels)
    one_hot = np.eye(p.shape[1])[y]
    return float(((p - one_hot) ** 2).sum(axis=1).mean())


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per confidence bin: mean top probability, accuracy and number of frames.

    Attributes:
        edges: (B + 1,) bin edges, 0 to 1; bin i holds edges[i] <= confidence < edges[i + 1],
            the last one also confidence 1.
        confidence: (B,) mean top probability of the frames in each bin; NaN for an empty bin.
        accuracy: (B,) fraction of those frames whose top class is the label; NaN when empty.
        count: (B,) number of frames in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability_diagram(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = ECE_BINS
) -> ReliabilityDiagram:
    """The table behind a reliability diagram, in the bins of :func:`expected_calibration_error`.

    sum(count * |accuracy - confidence|) / N over the non-empty bins is the ECE, except that
    torchmetrics gives a confidence of exactly 1 a bin of its own where this table puts it in
    the last bin (which can only lower the sum, by the triangle inequality), and that the
    table is computed in float64 where torchmetrics uses float32.

    Args:
        probabilities: (N, K) probabilities of each frame.
        labels: (N,) true class indices.
        n_bins: number of equal-width confidence bins.

    Returns:
        A :class:`ReliabilityDiagram` with ``n_bins`` bins.

    Raises:
        ValueError: invalid probabilities or labels, or ``n_bins`` < 1.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    p, y = _checked(probabilities, labels)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, confidence, n_bins) / count
        accuracy = np.bincount(bins, correct, n_bins) / count
    return ReliabilityDiagram(edges, mean_confidence, accuracy, count)
