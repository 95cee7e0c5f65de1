"""The trust report of ``python -m app evaluate``: how far the probabilities and the uncertainty
signals can be trusted on the evaluated recordings (pure computation; the runner writes it).

From per-frame softmax probabilities, deterministic (Dropout off) and Monte Carlo (T passes):

- **Probabilities**, for the deterministic model and the MC mean, raw and temperature-scaled:
  accuracy, ECE (15 bins, torchmetrics), NLL, Brier and the reliability diagram. Scaled two
  ways: with the checkpoint's stored temperature (optimistic when it was fitted on evaluated
  recordings, which the report flags), and always by leave-one-recording-out **cross-fitting**:
  each recording's frames scaled with a temperature fitted on the other recordings only.
- **The abstention rule and conformal sets**, cross-fitted the same way (``python -m app
  calibrate``'s rules, :func:`app.calibration.fitting.fit_mode`, fitted on the other recordings
  and applied to the held-out one), and the stored ones: fraction accepted, error among the
  accepted frames, set coverage and mean set size.
- **Uncertainty signals**, each oriented as an uncertainty (higher = more likely wrong):
  1 - max probability, predictive entropy, mutual information, spread (population std over the
  passes of the predicted class's probability), mean CV in the field of view; each also over a
  sliding window of the recording's evaluated frames. For each: the AUROC of flagging the
  misclassified frames, the risk-coverage curve and its area (AURC).

Frames of one recording are correlated, so every interval is a percentile bootstrap over
recordings: a resample draws as many recordings as there are, with replacement, and keeps all
their frames. A resample is the same as integer weights (how often each recording was drawn),
so each figure's bootstrap is computed from per-recording sums for all resamples at once; at
weight 1 for every recording these formulas give the point values exactly (tested against the
shared functions). Cross-fitted results are resampled as they are (the rules are not refitted
per resample). A resample in which a figure is undefined (AUROC with no error or no correct
frame, error among accepted frames with none accepted) is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.calibration.fitting import CalibrationSettings, error_auroc, fit_mode
from app.calibration.inputs import as_labels, as_probabilities
from app.calibration.reliability import (
    ECE_BINS,
    ReliabilityDiagram,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)
from app.calibration.rules import SIGNALS, Calibration, ModeCalibration
from app.calibration.temperature import scaled_probabilities
from app.evaluate.bootstrap import (
    LEVEL,
    Estimate,
    RecordingBootstrap,
    Statistic,
    ratio,
    recording_sums,
)
from app.evaluate.tables import jsonable

__all__ = [
    "MODES",
    "CrossFitted",
    "Estimate",
    "ProbabilityFigures",
    "RiskCoverage",
    "SelectiveFigures",
    "SignalFigures",
    "StoredCalibration",
    "TrustReport",
    "cross_fitted",
    "risk_coverage",
    "trust_report",
    "uncertainty_signals",
    "window_signal",
]

MODES = ("deterministic", "mc_mean")
"""The two predictions: Dropout off (one pass), and the mean of the T MC Dropout passes."""

MODE_SIGNALS = {
    "deterministic": ("max_probability", "entropy"),
    "mc_mean": ("max_probability", "entropy", "mutual_information", "spread", "mean_cv"),
}
"""The uncertainty signals of each prediction (the others need passes or explanations)."""

DEFAULT_SETTINGS = CalibrationSettings()
"""Target error, delta and coverage of the cross-fitted rules: ``python -m app calibrate``'s."""

CURVE_POINTS = 201
"""Points of a risk-coverage curve kept in the JSON (the AURC uses every coverage)."""


@dataclass(frozen=True)
class ProbabilityFigures:
    """How good one set of per-frame probabilities is.

    Attributes:
        predictions: ``"deterministic"`` or ``"mc_mean"``.
        scaling: ``"none"``, ``"stored"`` (the checkpoint's temperature) or ``"cross-fitted"``
            (each recording scaled with a temperature fitted on the others).
        temperature: the temperature; None when cross-fitted (one per recording: see
            :attr:`CrossFitted.temperatures`).
        accuracy: fraction of frames whose top class is the label.
        ece: expected calibration error, 15 equal-width bins (torchmetrics, L1).
        nll: mean negative log-likelihood of the label, nats.
        brier: multiclass Brier score.
        reliability: the reliability-diagram table.
    """

    predictions: str
    scaling: str
    temperature: float | None
    accuracy: Estimate
    ece: Estimate
    nll: Estimate
    brier: Estimate
    reliability: ReliabilityDiagram


@dataclass(frozen=True)
class RiskCoverage:
    """The risk-coverage curve of an uncertainty signal.

    Frames are sorted from the lowest uncertainty up; the risk at coverage k / N is the error
    rate among the k most confident frames. Frames tied in uncertainty count in random order
    (the expected risk: their errors are spread evenly over their positions).

    Attributes:
        coverage: (N,) k / N for k = 1..N.
        risk: (N,) the error rate among the k most confident frames.
        aurc: area under the curve, the mean of ``risk`` (lower is better).
        ideal_aurc: the AURC of an ordering that puts every right frame first (the lowest
            possible with these errors).
        error_rate: the risk at full coverage (the AURC of an uninformative signal).
    """

    coverage: np.ndarray
    risk: np.ndarray
    aurc: float
    ideal_aurc: float
    error_rate: float


@dataclass(frozen=True)
class SignalFigures:
    """How well one uncertainty signal flags the misclassified frames of one prediction.

    Attributes:
        predictions: ``"deterministic"`` or ``"mc_mean"``: whose errors and probabilities.
        signal: the signal's name (see :func:`uncertainty_signals`).
        window: 1 for the frame's own signal, w for its mean over a sliding window.
        frames: frames where the signal is defined (mean CV may be unknown for some).
        errors: misclassified frames among them.
        auroc: AUROC of the uncertainty against "misclassified" (1: every error is more
            uncertain than every right frame; 0.5: chance).
        aurc: area under the risk-coverage curve.
        curve: the curve itself.
    """

    predictions: str
    signal: str
    window: int
    frames: int
    errors: int
    auroc: Estimate
    aurc: Estimate
    curve: RiskCoverage


@dataclass(frozen=True)
class SelectiveFigures:
    """An abstention rule and conformal sets applied to the evaluated frames.

    Attributes:
        rule: ``"cross-fitted"`` (fitted on the other recordings) or ``"stored"`` (the
            checkpoint's).
        predictions: ``"deterministic"`` or ``"mc_mean"``.
        target_error: the error among accepted frames the rule was fitted to keep to.
        delta: the probability allowed for that guarantee to fail.
        coverage_target: the sets' nominal coverage.
        accepted_fraction: fraction of frames the rule accepts (does not mark UNCERTAIN).
        accepted_error: error rate among the accepted frames (calibrated top class vs label);
            NaN when none is accepted.
        set_coverage: fraction of frames whose conformal set holds the label.
        mean_set_size: mean number of classes in a set.
    """

    rule: str
    predictions: str
    target_error: float
    delta: float
    coverage_target: float
    accepted_fraction: Estimate
    accepted_error: Estimate
    set_coverage: Estimate
    mean_set_size: Estimate


@dataclass(frozen=True)
class CrossFitted:
    """Leave-one-recording-out calibration of one prediction.

    Attributes:
        probabilities: (N, K) each frame's probabilities scaled with its fold's temperature.
        accepted: (N,) bool, whether its fold's abstention rule accepts the frame.
        sets: (N, K) bool, its fold's conformal set.
        temperatures: per held-out recording, the temperature fitted on the others.
        signals: per held-out recording, the abstention signal chosen on the others.
    """

    probabilities: np.ndarray
    accepted: np.ndarray
    sets: np.ndarray
    temperatures: Mapping[str, float]
    signals: Mapping[str, str]


@dataclass(frozen=True)
class StoredCalibration:
    """Where the checkpoint's stored calibration was fitted.

    Attributes:
        recordings: the recordings it was fitted on (``calibration.fitted``).
        overlap: those among the evaluated recordings: its figures are then optimistic.
        temperatures: its temperature per prediction.
    """

    recordings: tuple[str, ...]
    overlap: tuple[str, ...]
    temperatures: Mapping[str, float]

    @property
    def optimistic(self) -> bool:
        """Whether it was fitted on some of the evaluated frames."""
        return bool(self.overlap)


@dataclass(frozen=True)
class TrustReport:
    """Everything :func:`trust_report` measured.

    Attributes:
        frames: number of frames.
        recordings: the recordings, in the order the bootstrap indexes them.
        classes: number of classes K.
        passes: MC Dropout passes T.
        window: the sliding window's length w.
        bootstrap: resamples B; ``seed``: their seed; ``level``: the intervals' level.
        probabilities: one entry per (prediction, scaling).
        signals: one entry per (prediction, signal, window).
        selective: one entry per (rule, prediction).
        cross_fitting: None when it was possible, else why not.
        cross_fitted: per prediction, the cross-fitted calibration (empty when not possible).
        stored: where the stored calibration was fitted; None without one.
        notes: what was left out and why.
    """

    frames: int
    recordings: tuple[str, ...]
    classes: int
    passes: int
    window: int
    bootstrap: int
    seed: int
    level: float
    probabilities: tuple[ProbabilityFigures, ...]
    signals: tuple[SignalFigures, ...]
    selective: tuple[SelectiveFigures, ...]
    cross_fitting: str | None
    cross_fitted: Mapping[str, CrossFitted]
    stored: StoredCalibration | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The report as strict JSON (NaN as null); curves kept at :data:`CURVE_POINTS`."""

        def estimate(e: Estimate) -> dict[str, Any]:
            return {"value": e.value, "low": e.low, "high": e.high, "resamples": e.resamples}

        def diagram(d: ReliabilityDiagram) -> dict[str, Any]:
            return {
                "edges": d.edges.tolist(),
                "confidence": d.confidence.tolist(),
                "accuracy": d.accuracy.tolist(),
                "count": d.count.tolist(),
            }

        def curve(c: RiskCoverage) -> dict[str, Any]:
            keep = np.unique(np.linspace(0, len(c.risk) - 1, CURVE_POINTS).round().astype(int))
            return {
                "coverage": c.coverage[keep].tolist(),
                "risk": c.risk[keep].tolist(),
                "aurc": c.aurc,
                "ideal_aurc": c.ideal_aurc,
                "error_rate": c.error_rate,
            }

        stored = None
        if self.stored is not None:
            stored = {
                "recordings": list(self.stored.recordings),
                "overlap": list(self.stored.overlap),
                "optimistic": self.stored.optimistic,
                "temperatures": dict(self.stored.temperatures),
            }
        report = {
            "frames": self.frames,
            "recordings": list(self.recordings),
            "classes": self.classes,
            "passes": self.passes,
            "window": self.window,
            "bootstrap": {
                "resamples": self.bootstrap,
                "seed": self.seed,
                "level": self.level,
                "unit": "recording",
            },
            "stored_calibration": stored,
            "cross_fitting": {
                "available": self.cross_fitting is None,
                "reason": self.cross_fitting,
                "temperatures": {m: dict(c.temperatures) for m, c in self.cross_fitted.items()},
                "signals": {m: dict(c.signals) for m, c in self.cross_fitted.items()},
            },
            "probabilities": [
                {
                    "predictions": p.predictions,
                    "scaling": p.scaling,
                    "temperature": p.temperature,
                    **{k: estimate(getattr(p, k)) for k in ("accuracy", "ece", "nll", "brier")},
                    "reliability": diagram(p.reliability),
                }
                for p in self.probabilities
            ],
            "signals": [
                {
                    "predictions": s.predictions,
                    "signal": s.signal,
                    "window": s.window,
                    "frames": s.frames,
                    "errors": s.errors,
                    "auroc": estimate(s.auroc),
                    "aurc": estimate(s.aurc),
                    "curve": curve(s.curve),
                }
                for s in self.signals
            ],
            "selective": [
                {
                    "rule": s.rule,
                    "predictions": s.predictions,
                    "target_error": s.target_error,
                    "delta": s.delta,
                    "coverage_target": s.coverage_target,
                    **{
                        k: estimate(getattr(s, k))
                        for k in ("accepted_fraction", "accepted_error", "set_coverage")
                    },
                    "mean_set_size": estimate(s.mean_set_size),
                }
                for s in self.selective
            ],
            "notes": list(self.notes),
        }
        return jsonable(report)


# -- Signals ------------------------------------------------------------------------------------


def uncertainty_signals(
    probabilities: npt.ArrayLike,
    passes: npt.ArrayLike,
    mean_cv: npt.ArrayLike | None = None,
    names: Sequence[str] = MODE_SIGNALS["mc_mean"],
) -> dict[str, np.ndarray]:
    """Per-frame uncertainty signals, each oriented so that higher = more likely wrong.

    - ``max_probability``: 1 - max_k p_k (the confidence of :data:`~app.calibration.rules.SIGNALS`
      turned around);
    - ``entropy``: predictive entropy of ``probabilities``, nats;
    - ``mutual_information``: entropy of the mean minus the mean entropy of the passes, nats;
    - ``spread``: population std over the passes of the probability of the predicted class
      (the argmax of ``probabilities``);
    - ``mean_cv``: the given mean CV in the field of view (NaN where unknown).

    Args:
        probabilities: (N, K) the prediction's probabilities (the MC mean, or deterministic).
        passes: (N, T, K) the passes they came from ((N, 1, K) for the deterministic model).
        mean_cv: (N,) mean CV per frame, NaN where unknown; needed for ``mean_cv`` only.
        names: the signals wanted.

    Returns:
        ``{name: (N,) float64}`` in the order of ``names``.

    Raises:
        ValueError: an unknown name, invalid probabilities, or ``mean_cv`` wanted but missing
            or of another length.
    """
    p = as_probabilities(probabilities)
    t = as_probabilities(passes, passes=True)
    if t.ndim != 3 or t.shape[0] != p.shape[0] or t.shape[2] != p.shape[1]:
        raise ValueError(
            f"passes must be (N, T, K) = ({p.shape[0]}, T, {p.shape[1]}), got {t.shape}"
        )
    predicted = p.argmax(axis=1)
    compute: dict[str, Callable[[], np.ndarray]] = {
        "max_probability": lambda: 1.0 - SIGNALS["max_probability"](p, t),
        "entropy": lambda: -SIGNALS["negative_entropy"](p, t),
        "mutual_information": lambda: np.maximum(-SIGNALS["negative_mutual_information"](p, t), 0),
        "spread": lambda: t[np.arange(len(p)), :, predicted].std(axis=1),
        "mean_cv": lambda: _per_frame("mean_cv", mean_cv, len(p)),
    }
    unknown = [n for n in names if n not in compute]
    if unknown:
        raise ValueError(f"unknown signal(s) {unknown}; known: {', '.join(compute)}")
    return {n: np.asarray(compute[n](), dtype=np.float64) for n in names}


def _per_frame(name: str, values: npt.ArrayLike | None, n: int) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} is needed for this signal")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
    return v


def window_signal(
    values: npt.ArrayLike, recordings: npt.ArrayLike, frames: npt.ArrayLike, window: int
) -> np.ndarray:
    """A signal averaged over a sliding window of each recording's evaluated frames.

    Each frame gets the mean of the signal over itself and the ``window - 1`` evaluated frames
    of its recording before it, in frame-index order (fewer at a recording's start); NaN values
    are left out of the mean, and a window of NaN only stays NaN. The window counts evaluated
    frames, so with ``--every-k k`` it spans about ``window * k`` frames of the video. It uses
    only the current and earlier frames, as a live viewer could.

    Args:
        values: (N,) the signal per frame.
        recordings: (N,) each frame's recording.
        frames: (N,) each frame's index in its recording.
        window: w >= 1; 1 returns the signal itself.

    Returns:
        (N,) float64, in the order of ``values``.

    Raises:
        ValueError: mismatched lengths, or ``window`` < 1.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    rec, idx = _recordings_and_frames(recordings, frames, len(v))
    if int(window) != window or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window}")
    out = np.empty_like(v)
    for name in np.unique(rec):
        members = np.flatnonzero(rec == name)
        members = members[np.argsort(idx[members], kind="stable")]
        x = v[members]
        known = np.isfinite(x)
        sums = np.concatenate([[0.0], np.cumsum(np.where(known, x, 0.0))])
        counts = np.concatenate([[0], np.cumsum(known)])
        end = np.arange(1, len(x) + 1)
        start = np.maximum(end - int(window), 0)
        n = counts[end] - counts[start]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[members] = np.where(n > 0, (sums[end] - sums[start]) / n, np.nan)
    return out


def _recordings_and_frames(
    recordings: npt.ArrayLike, frames: npt.ArrayLike, n: int
) -> tuple[np.ndarray, np.ndarray]:
    rec = np.asarray(recordings)
    idx = np.asarray(frames)
    if rec.shape != (n,) or idx.shape != (n,):
        raise ValueError(
            f"recordings and frames must have shape ({n},), got {rec.shape} and {idx.shape}"
        )
    if n and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"frames must be integer frame indices, got dtype {idx.dtype}")
    return rec.astype(str), idx.astype(np.int64)


# -- Risk-coverage --------------------------------------------------------------------------------


def risk_coverage(uncertainty: npt.ArrayLike, wrong: npt.ArrayLike) -> RiskCoverage:
    """The risk-coverage curve of ``uncertainty`` and its area (AURC; Geifman et al. 2019).

    Args:
        uncertainty: (N,) finite uncertainty per frame, higher = less confident.
        wrong: (N,) bool, True where the frame is misclassified.

    Returns:
        The :class:`RiskCoverage` (tied frames in random order: expected risk).

    Raises:
        ValueError: no frames, mismatched lengths or non-finite uncertainty.
    """
    u, w = _finite_signal(uncertainty, wrong)
    n = len(u)
    _, group = np.unique(u, return_inverse=True)
    ends = np.concatenate([[0], np.cumsum(np.bincount(group))])
    errors = np.concatenate([[0.0], np.cumsum(np.bincount(group, weights=w))])
    k = np.arange(1, n + 1)
    risk = np.interp(k, ends, errors) / k
    right = n - int(w.sum())
    ideal = np.maximum(k - right, 0) / k
    return RiskCoverage(k / n, risk, float(risk.mean()), float(ideal.mean()), float(w.mean()))


def _finite_signal(uncertainty: npt.ArrayLike, wrong: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    u = np.asarray(uncertainty, dtype=np.float64)
    w = np.asarray(wrong, dtype=bool)
    if u.ndim != 1 or len(u) == 0 or w.shape != u.shape:
        raise ValueError(f"uncertainty and wrong must be non-empty (N,), got {u.shape}, {w.shape}")
    if not np.isfinite(u).all():
        raise ValueError("uncertainty contains NaN or infinite values")
    return u, w.astype(np.float64)


# -- Bootstrap over recordings --------------------------------------------------------------------


def _mean_statistic(
    measure: Callable[[np.ndarray, np.ndarray], float],
    probabilities: np.ndarray,
    labels: np.ndarray,
    rid: np.ndarray,
    n_recordings: int,
) -> Statistic:
    """A mean over frames (NLL, Brier) with each recording's frames weighted by its count,
    from ``measure`` applied to each recording's frames."""
    frames = np.bincount(rid, minlength=n_recordings).astype(np.float64)
    sums = np.array(
        [
            measure(probabilities[rid == i], labels[rid == i]) * frames[i] if frames[i] else 0.0
            for i in range(n_recordings)
        ]
    )
    return ratio(sums, frames)


def _ece_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """torchmetrics' bin of each confidence: bucketize on float32 linspace edges, right=True,
    minus 1, so that a confidence of exactly 1 has bin ``n_bins`` of its own."""
    import torch

    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)
    c = torch.from_numpy(confidence.astype(np.float32))
    return (torch.bucketize(c, edges, right=True) - 1).numpy()


def _ece_statistic(
    probabilities: np.ndarray, labels: np.ndarray, rid: np.ndarray, n_recordings: int
) -> Statistic:
    """The ECE of :func:`~app.calibration.reliability.expected_calibration_error` with each
    recording's frames weighted by its count: sum over bins of |sum w (correct - confidence)|
    over sum w."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    bins = _ece_bins(confidence, ECE_BINS)
    gaps = np.zeros((n_recordings, ECE_BINS + 1))
    np.add.at(gaps, (rid, bins), correct - confidence.astype(np.float32))
    frames = np.bincount(rid, minlength=n_recordings).astype(np.float64)

    def statistic(counts: np.ndarray) -> np.ndarray:
        return np.abs(counts @ gaps).sum(axis=1) / (counts @ frames)

    return statistic


def _grouped(
    uncertainty: np.ndarray, wrong: np.ndarray, rid: np.ndarray, n_recordings: int
) -> tuple[np.ndarray, np.ndarray]:
    """(R, U) frames and errors per recording and distinct uncertainty value (ascending)."""
    _, group = np.unique(uncertainty, return_inverse=True)
    shape = (n_recordings, int(group.max()) + 1)
    frames, errors = np.zeros(shape), np.zeros(shape)
    np.add.at(frames, (rid, group), 1.0)
    np.add.at(errors, (rid, group), wrong.astype(np.float64))
    return frames, errors


def _auroc_statistic(frames: np.ndarray, errors: np.ndarray) -> Statistic:
    """Mann-Whitney AUROC (ties one half, as torchmetrics' trapezoidal ROC) of the uncertainty
    for flagging errors, with each recording's frames weighted by its count."""
    right = frames - errors

    def statistic(counts: np.ndarray) -> np.ndarray:
        pos, neg = counts @ errors, counts @ right
        below = np.cumsum(neg, axis=1) - neg  # right frames less uncertain than each group
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)

    return statistic


def _aurc_statistic(frames: np.ndarray, errors: np.ndarray) -> Statistic:
    """:func:`risk_coverage`'s AURC with each recording's frames weighted by its count.

    A tie group g of n_g frames with e_g errors fills positions K_{g-1} + 1 .. K_g, at each
    with expected errors E_{g-1} + (k - K_{g-1}) e_g / n_g; summing risk = errors / k over
    them gives (E_{g-1} - K_{g-1} r_g) (H(K_g) - H(K_{g-1})) + e_g, with r_g = e_g / n_g and
    H(m) = 1 + 1/2 + ... + 1/m.
    """
    most = int(frames.sum(axis=1).max()) * frames.shape[0]  # every draw the largest recording
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, most + 1))])

    def statistic(counts: np.ndarray) -> np.ndarray:
        n, e = counts @ frames, counts @ errors
        k = np.cumsum(n, axis=1)
        k_before, e_before = k - n, np.cumsum(e, axis=1) - e
        rate = np.divide(e, n, out=np.zeros_like(e), where=n > 0)
        steps = harmonic[k.astype(np.int64)] - harmonic[k_before.astype(np.int64)]
        return ((e_before - k_before * rate) * steps + e).sum(axis=1) / k[:, -1]

    return statistic


# -- Cross-fitting --------------------------------------------------------------------------------


def cross_fitted(
    passes: npt.ArrayLike,
    labels: npt.ArrayLike,
    recordings: npt.ArrayLike,
    settings: CalibrationSettings = DEFAULT_SETTINGS,
) -> CrossFitted:
    """Leave-one-recording-out calibration: for each recording, ``python -m app calibrate``'s
    rules (:func:`~app.calibration.fitting.fit_mode`: temperature, abstention signal and
    threshold, conformal threshold) fitted on the other recordings' frames only, then applied
    to its own.

    Args:
        passes: (N, T, K) per-pass probabilities ((N, 1, K) for the deterministic model).
        labels: (N,) true class indices.
        recordings: (N,) each frame's recording.
        settings: target error, delta and coverage.

    Returns:
        The :class:`CrossFitted` results, per frame and per recording.

    Raises:
        ValueError: invalid inputs, or fewer than two recordings (nothing to fit on).
    """
    t = as_probabilities(passes, passes=True)
    if t.ndim != 3:
        raise ValueError(f"passes must be (N, T, K), got shape {t.shape}")
    y = as_labels(labels, t.shape[0], t.shape[2])
    rec = np.asarray(recordings).astype(str)
    if rec.shape != y.shape:
        raise ValueError(f"recordings must have shape {y.shape}, got {rec.shape}")
    names = list(dict.fromkeys(rec.tolist()))
    if len(names) < 2:
        raise ValueError(
            f"cross-fitting needs at least two recordings, got {len(names)}: with one held "
            "out there is nothing left to fit on"
        )
    probabilities = np.empty((t.shape[0], t.shape[2]))
    accepted = np.empty(t.shape[0], dtype=bool)
    sets = np.empty((t.shape[0], t.shape[2]), dtype=bool)
    temperatures, signals = {}, {}
    for name in names:
        held_out = rec == name
        calibration, _ = fit_mode(t[~held_out], y[~held_out], settings)
        probabilities[held_out], accepted[held_out], sets[held_out] = _applied(
            calibration, t[held_out]
        )
        temperatures[name] = calibration.temperature
        signals[name] = calibration.signal
    return CrossFitted(probabilities, accepted, sets, temperatures, signals)


# -- The report -----------------------------------------------------------------------------------


def trust_report(
    deterministic: npt.ArrayLike,
    passes: npt.ArrayLike,
    labels: npt.ArrayLike,
    recordings: npt.ArrayLike,
    frames: npt.ArrayLike,
    mean_cv: npt.ArrayLike | None = None,
    calibration: Calibration | None = None,
    *,
    window: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    settings: CalibrationSettings = DEFAULT_SETTINGS,
) -> TrustReport:
    """Calibration, selective prediction and uncertainty signals of the evaluated frames.

    Args:
        deterministic: (N, K) softmax probabilities with Dropout off.
        passes: (N, T, K) softmax probabilities of T MC Dropout passes.
        labels: (N,) true class indices (the model's class order).
        recordings: (N,) each frame's recording (the bootstrap's and cross-fitting's unit).
        frames: (N,) each frame's index in its recording (orders the sliding window).
        mean_cv: (N,) mean CV in the field of view of each frame's MC explanation, NaN where
            unknown; None: no mean-CV signal.
        calibration: the checkpoint's stored calibration, if it has one.
        window: w of the sliding-window signals, >= 1.
        bootstrap: resamples B of the recordings, >= 1.
        seed: seeds the resamples.
        settings: the target error, delta and coverage of the cross-fitted rules
            (:class:`~app.calibration.fitting.CalibrationSettings`' defaults).

    Returns:
        The :class:`TrustReport` (``.to_dict()`` for JSON).

    Raises:
        ValueError: invalid probabilities or labels, mismatched lengths, a frame listed twice,
            or a window or bootstrap below 1. One recording is not an error: cross-fitting is
            then reported as not possible, and every interval collapses to the point.
    """
    det = as_probabilities(deterministic)
    mc = as_probabilities(passes, passes=True)
    n, k = det.shape
    if mc.ndim != 3 or mc.shape[0] != n or mc.shape[2] != k:
        raise ValueError(f"passes must be (N, T, K) = ({n}, T, {k}), got shape {mc.shape}")
    y = as_labels(labels, n, k)
    rec, idx = _recordings_and_frames(recordings, frames, n)
    cv = np.full(n, np.nan) if mean_cv is None else _per_frame("mean_cv", mean_cv, n)
    if len({(r, i) for r, i in zip(rec.tolist(), idx.tolist(), strict=True)}) < n:
        raise ValueError("a (recording, frame) pair is listed twice")
    for name, value in (("window", window), ("bootstrap", bootstrap)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value}")
    names, rid = np.unique(rec, return_inverse=True)
    r = len(names)
    boot = RecordingBootstrap(r, int(bootstrap), seed)
    mode_passes = {"deterministic": det[:, None, :], "mc_mean": mc}
    raw = {"deterministic": det, "mc_mean": mc.mean(axis=1)}
    notes: list[str] = []

    fitted: dict[str, CrossFitted] = {}
    why_not: str | None = None
    if r >= 2:
        fitted = {m: cross_fitted(mode_passes[m], y, rec, settings) for m in MODES}
    else:
        why_not = f"one recording ({names[0]}): held out, it leaves nothing to fit on"
        notes.append(f"cross-fitting not possible: {why_not}")
    stored = None
    if calibration is not None:
        fitted_on = tuple(str(x) for x in calibration.fitted.get("recordings", ()))
        stored = StoredCalibration(
            fitted_on,
            tuple(sorted(set(fitted_on) & set(names.tolist()))),
            {m: calibration.for_mode(m == "mc_mean").temperature for m in MODES},
        )
        if stored.optimistic:
            notes.append(
                f"the stored calibration was fitted on {len(stored.overlap)} of the evaluated "
                "recordings: its figures are optimistic"
            )

    variants: list[tuple[str, str, float | None, np.ndarray]] = [
        (m, "none", 1.0, raw[m]) for m in MODES
    ]
    variants += [(m, "cross-fitted", None, fitted[m].probabilities) for m in fitted]
    if stored is not None:
        variants += [
            (m, "stored", t, scaled_probabilities(mode_passes[m], t))
            for m, t in stored.temperatures.items()
        ]
    probability_figures = tuple(
        _probability_figures(m, scaling, t, p, y, rid, r, boot) for m, scaling, t, p in variants
    )

    signal_figures: list[SignalFigures] = []
    for m in MODES:
        wrong = raw[m].argmax(axis=1) != y
        signals = uncertainty_signals(raw[m], mode_passes[m], cv, MODE_SIGNALS[m])
        if "mean_cv" in signals and not np.isfinite(signals["mean_cv"]).any():
            del signals["mean_cv"]
            notes.append("mean CV: no frame has one, so the signal is left out")
        for name, values in signals.items():
            for w in dict.fromkeys((1, int(window))):
                u = values if w == 1 else window_signal(values, rec, idx, w)
                signal_figures.append(_signal_figures(m, name, w, u, wrong, rid, r, boot))

    selective: list[SelectiveFigures] = []
    levels = (settings.target_error, settings.delta, settings.coverage)
    for m, result in fitted.items():
        outcome = (result.probabilities, result.accepted, result.sets)
        selective.append(_selective_figures("cross-fitted", m, levels, outcome, y, rid, r, boot))
    if calibration is not None:
        for m in MODES:
            mode = calibration.for_mode(m == "mc_mean")
            levels = (mode.abstention.target_error, mode.abstention.delta, mode.conformal.coverage)
            selective.append(
                _selective_figures(
                    "stored", m, levels, _applied(mode, mode_passes[m]), y, rid, r, boot
                )
            )
    return TrustReport(
        frames=n,
        recordings=tuple(names.tolist()),
        classes=k,
        passes=mc.shape[1],
        window=int(window),
        bootstrap=int(bootstrap),
        seed=seed,
        level=LEVEL,
        probabilities=probability_figures,
        signals=tuple(signal_figures),
        selective=tuple(selective),
        cross_fitting=why_not,
        cross_fitted=fitted,
        stored=stored,
        notes=tuple(notes),
    )


def _probability_figures(
    predictions: str,
    scaling: str,
    temperature: float | None,
    p: np.ndarray,
    y: np.ndarray,
    rid: np.ndarray,
    r: int,
    boot: RecordingBootstrap,
) -> ProbabilityFigures:
    frames = np.bincount(rid, minlength=r).astype(np.float64)
    correct = p.argmax(axis=1) == y
    return ProbabilityFigures(
        predictions=predictions,
        scaling=scaling,
        temperature=temperature,
        accuracy=boot.estimate(
            float(correct.mean()), ratio(recording_sums(correct, rid, r), frames)
        ),
        ece=boot.estimate(
            expected_calibration_error(p, y), _ece_statistic(p, y, rid, r), ECE_BINS + 1
        ),
        nll=boot.estimate(
            negative_log_likelihood(p, y), _mean_statistic(negative_log_likelihood, p, y, rid, r)
        ),
        brier=boot.estimate(brier_score(p, y), _mean_statistic(brier_score, p, y, rid, r)),
        reliability=reliability_diagram(p, y),
    )


def _signal_figures(
    predictions: str,
    signal: str,
    window: int,
    uncertainty: np.ndarray,
    wrong: np.ndarray,
    rid: np.ndarray,
    r: int,
    boot: RecordingBootstrap,
) -> SignalFigures:
    known = np.isfinite(uncertainty)
    u, w, ids = uncertainty[known], wrong[known], rid[known]
    curve = risk_coverage(u, w)
    frames, errors = _grouped(u, w, ids, r)
    return SignalFigures(
        predictions=predictions,
        signal=signal,
        window=window,
        frames=int(known.sum()),
        errors=int(w.sum()),
        auroc=boot.estimate(error_auroc(-u, w), _auroc_statistic(frames, errors), frames.shape[1]),
        aurc=boot.estimate(curve.aurc, _aurc_statistic(frames, errors), frames.shape[1]),
        curve=curve,
    )


def _applied(
    mode: ModeCalibration, passes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities (N, K), accepted (N,), sets (N, K) bool) of ``mode`` applied to passes."""
    frames = mode.apply(passes)
    sets = np.zeros((len(frames), passes.shape[-1]), dtype=bool)
    for row, frame in enumerate(frames):
        sets[row, frame.prediction_set] = True
    accepted = np.array([f.accepted for f in frames], dtype=bool)
    return np.stack([f.probabilities for f in frames]), accepted, sets


def _selective_figures(
    rule: str,
    predictions: str,
    levels: tuple[float, float, float],
    outcome: tuple[np.ndarray, np.ndarray, np.ndarray],
    y: np.ndarray,
    rid: np.ndarray,
    r: int,
    boot: RecordingBootstrap,
) -> SelectiveFigures:
    """Figures of ``outcome`` = (probabilities, accepted, sets) for a rule fitted to
    ``levels`` = (target error, delta, coverage)."""
    (target_error, delta, coverage), (probabilities, accepted, sets) = levels, outcome
    frames = np.bincount(rid, minlength=r).astype(np.float64)
    wrong = probabilities.argmax(axis=1) != y
    covered = sets[np.arange(len(y)), y]
    size = sets.sum(axis=1)
    n_accepted = int(accepted.sum())
    return SelectiveFigures(
        rule=rule,
        predictions=predictions,
        target_error=float(target_error),
        delta=float(delta),
        coverage_target=float(coverage),
        accepted_fraction=boot.estimate(
            float(accepted.mean()), ratio(recording_sums(accepted, rid, r), frames)
        ),
        accepted_error=boot.estimate(
            float((accepted & wrong).sum() / n_accepted) if n_accepted else None,
            ratio(recording_sums(accepted & wrong, rid, r), recording_sums(accepted, rid, r)),
        ),
        set_coverage=boot.estimate(
            float(covered.mean()), ratio(recording_sums(covered, rid, r), frames)
        ),
        mean_set_size=boot.estimate(
            float(size.mean()), ratio(recording_sums(size, rid, r), frames)
        ),
    )
