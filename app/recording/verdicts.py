"""How a result chunk stores each frame's video-level verdict (:mod:`app.calibration.window`).

The verdict is kept as the live view showed it, one row per frame, in ``verdict_*`` arrays:
``verdict_class`` (int32, -1 for none), ``verdict_p`` (float64, NaN for none),
``verdict_frames`` (int32; -1 for a frame that had no verdict at all), ``verdict_s``
(float64), ``verdict_uncertain`` (int8: -1 not calibrated, 0, 1), ``verdict_calibrated``
(bool) and ``verdict_restarted`` (str, empty when the window went on). Sessions recorded
before verdicts have none of them and read back without one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from app.calibration.window import WindowVerdict

__all__ = ["verdict_arrays", "verdict_at"]

_NO_VERDICT = -1


def verdict_arrays(verdicts: Sequence[WindowVerdict | None]) -> dict[str, np.ndarray]:
    """The ``verdict_*`` arrays of a chunk whose frames had ``verdicts``, in order."""
    none = WindowVerdict(None, math.nan, _NO_VERDICT, 0.0, None, False)
    rows = [none if v is None else v for v in verdicts]
    return {
        "verdict_class": np.array(
            [-1 if v.class_idx is None else v.class_idx for v in rows], dtype=np.int32
        ),
        "verdict_p": np.array([v.probability for v in rows], dtype=np.float64),
        "verdict_frames": np.array([v.frames for v in rows], dtype=np.int32),
        "verdict_s": np.array([v.seconds for v in rows], dtype=np.float64),
        "verdict_uncertain": np.array(
            [-1 if v.uncertain is None else int(v.uncertain) for v in rows], dtype=np.int8
        ),
        "verdict_calibrated": np.array([v.calibrated for v in rows], dtype=bool),
        "verdict_restarted": np.array([v.restarted or "" for v in rows], dtype=str),
    }


def verdict_at(arrays: Mapping[str, np.ndarray], row: int) -> WindowVerdict | None:
    """Row ``row``'s verdict from a chunk's arrays; None where the chunk has no verdicts or
    the frame had none."""
    if "verdict_frames" not in arrays or int(arrays["verdict_frames"][row]) == _NO_VERDICT:
        return None
    class_idx = int(arrays["verdict_class"][row])
    uncertain = int(arrays["verdict_uncertain"][row])
    return WindowVerdict(
        class_idx=None if class_idx < 0 else class_idx,
        probability=float(arrays["verdict_p"][row]),
        frames=int(arrays["verdict_frames"][row]),
        seconds=float(arrays["verdict_s"][row]),
        uncertain=None if uncertain < 0 else bool(uncertain),
        calibrated=bool(arrays["verdict_calibrated"][row]),
        restarted=str(arrays["verdict_restarted"][row]) or None,
    )
