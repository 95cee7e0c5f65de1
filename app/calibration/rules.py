"""A checkpoint's fitted calibration, and applying it to one frame's passes (numpy only).

:class:`Calibration` is what ``python -m app calibrate`` stores in a checkpoint's metadata
(``metadata.calibration``, JSON): for the MC Dropout explanation and for the deterministic one
(``"mc"`` and ``"deterministic"``), a temperature, an abstention rule on one confidence signal
and a split-conformal rule for prediction sets. :meth:`Calibration.apply` turns a frame's
per-pass softmax probabilities into a :class:`CalibratedFrame`: calibrated probabilities,
whether the frame is accepted or abstained (UNCERTAIN), and its prediction set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.calibration.abstention import AbstentionRule
from app.calibration.conformal import ConformalRule
from app.calibration.inputs import PROBABILITY_FLOOR, as_probabilities
from app.calibration.temperature import scaled_probabilities

__all__ = [
    "SIGNALS",
    "CalibratedFrame",
    "Calibration",
    "CalibrationError",
    "ModeCalibration",
    "summary_fields",
]

FORMAT = 1
"""Version of the ``metadata.calibration`` layout this module reads and writes."""


def _max_probability(p: np.ndarray, _passes: np.ndarray) -> np.ndarray:
    return p.max(axis=1)


def _negative_entropy(p: np.ndarray, _passes: np.ndarray) -> np.ndarray:
    return (p * np.log(np.maximum(p, PROBABILITY_FLOOR))).sum(axis=1)


def _negative_mutual_information(p: np.ndarray, passes: np.ndarray) -> np.ndarray:
    per_pass = (passes * np.log(np.maximum(passes, PROBABILITY_FLOOR))).sum(axis=2).mean(axis=1)
    return _negative_entropy(p, passes) - per_pass  # -(H[mean] - mean H)


SIGNALS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "max_probability": _max_probability,
    "negative_entropy": _negative_entropy,
    "negative_mutual_information": _negative_mutual_information,
}
"""Confidence scores an abstention rule can be fitted on, higher = more confident, from the
(N, K) calibrated probabilities and the (N, T, K) passes they came from. Mutual information
needs T > 1."""


class CalibrationError(ValueError):
    """A checkpoint's calibration entry is missing parts, of another format, or invalid."""


@dataclass(frozen=True)
class ModeCalibration:
    """The calibration of one way of explaining (MC Dropout or deterministic).

    Attributes:
        temperature: tau of the temperature scaling.
        signal: the key in :data:`SIGNALS` the abstention rule scores frames with.
        abstention: accept a frame when its score is at least the threshold.
        conformal: prediction sets at the stated coverage.
    """

    temperature: float
    signal: str
    abstention: AbstentionRule
    conformal: ConformalRule

    def apply(self, pass_probs: npt.ArrayLike) -> list[CalibratedFrame]:
        """Calibrate N frames from their (N, T, K) per-pass probabilities (or (N, K))."""
        passes = as_probabilities(pass_probs, passes=True)
        if passes.ndim == 2:
            passes = passes[:, None, :]
        p = scaled_probabilities(passes, self.temperature)
        scores = SIGNALS[self.signal](p, passes)
        accepted = np.asarray(self.abstention.accepts(scores))
        sets = self.conformal.sets(p)
        return [
            CalibratedFrame(p[i], float(scores[i]), bool(accepted[i]), np.flatnonzero(sets[i]))
            for i in range(p.shape[0])
        ]


@dataclass(frozen=True)
class CalibratedFrame:
    """One frame after calibration.

    Attributes:
        probabilities: (K,) calibrated probabilities.
        score: the abstention signal's confidence score.
        accepted: False when the frame is abstained: the viewer shows UNCERTAIN, not a class.
        prediction_set: indices of the classes in the conformal set, in the model's order.
    """

    probabilities: np.ndarray
    score: float
    accepted: bool
    prediction_set: np.ndarray

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))


def summary_fields(
    calibrated: CalibratedFrame | None, predicted: int, class_names: Sequence[str]
) -> dict[str, Any]:
    """:class:`~app.render.summary.FrameSummary`'s calibrated fields (``calibrated_p``,
    ``uncertain``, ``prediction_set`` as names) for a frame whose raw predicted class is
    ``predicted``; none (``{}``) without a calibration."""
    if calibrated is None:
        return {}
    return {
        "calibrated_p": float(calibrated.probabilities[predicted]),
        "uncertain": not calibrated.accepted,
        "prediction_set": tuple(class_names[k] for k in calibrated.prediction_set),
    }


@dataclass(frozen=True)
class Calibration:
    """A checkpoint's calibration: one :class:`ModeCalibration` per way of explaining, and
    where it was fitted (``fitted``: date, recordings, frames, passes, the figures measured).
    """

    mc: ModeCalibration
    deterministic: ModeCalibration
    fitted: Mapping[str, Any]

    def for_mode(self, mc: bool) -> ModeCalibration:
        """The calibration for MC Dropout explanations (``mc``) or the deterministic one."""
        return self.mc if mc else self.deterministic

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-like entry for ``metadata.calibration``."""

        def mode(m: ModeCalibration) -> dict[str, Any]:
            return {
                "temperature": m.temperature,
                "signal": m.signal,
                "abstention": _finite(asdict(m.abstention)),
                "conformal": _finite(asdict(m.conformal)),
            }

        return {
            "format": FORMAT,
            "mc": mode(self.mc),
            "deterministic": mode(self.deterministic),
            "fitted": dict(self.fitted),
        }

    @classmethod
    def from_metadata(cls, entry: Mapping[str, Any]) -> Calibration | None:
        """The calibration stored in a checkpoint; None when it has none (``{}``).

        Raises:
            CalibrationError: an entry of another format, or one with missing or invalid parts.
        """
        if not entry:
            return None
        if not isinstance(entry, Mapping):
            raise CalibrationError(f"the checkpoint's calibration is not an object: {entry!r:.80}")
        if entry.get("format") != FORMAT:
            raise CalibrationError(
                f"calibration of format {entry.get('format')!r}, this version reads {FORMAT}: "
                "calibrate the checkpoint again (python -m app calibrate)"
            )
        try:
            return cls(_mode(entry["mc"]), _mode(entry["deterministic"]), dict(entry["fitted"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"the checkpoint's calibration is invalid: {exc!r}") from None


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity or NaN: they are stored as strings ("inf", "nan")."""
    return {
        k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


def _mode(entry: Mapping[str, Any]) -> ModeCalibration:
    signal = str(entry["signal"])
    if signal not in SIGNALS:
        raise ValueError(f"unknown abstention signal {signal!r}")
    temperature = float(entry["temperature"])
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature {temperature}")
    abstention = {k: float(v) for k, v in entry["abstention"].items()}
    conformal = {k: float(v) for k, v in entry["conformal"].items()}
    return ModeCalibration(
        temperature,
        signal,
        AbstentionRule(**{**abstention, "n": int(abstention["n"])}),
        ConformalRule(**{**conformal, "n": int(conformal["n"])}),
    )
