"""Finding the uncertain moments of a session from its timeline (mean CV per frame)."""

from __future__ import annotations

import numpy as np

from app.recording import Timeline

__all__ = ["next_uncertain", "uncertainty_threshold"]


def uncertainty_threshold(timeline: Timeline, quantile: float = 0.9) -> float | None:
    """The mean CV above which a frame counts as uncertain: the ``quantile`` of the session's
    defined values (None when no frame has one)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    values = timeline.mean_cv[np.isfinite(timeline.mean_cv)]
    return float(np.quantile(values, quantile)) if values.size else None


def next_uncertain(
    timeline: Timeline, position: int, threshold: float, *, backward: bool = False
) -> int | None:
    """The start of the next run of frames whose mean CV is at least ``threshold``.

    Runs, not frames: from inside an uncertain stretch it jumps to the next stretch, so
    repeated presses visit each uncertain moment once. Undefined CV never counts.

    Args:
        timeline: the session's timeline.
        position: the frame shown now.
        threshold: see :func:`uncertainty_threshold`.
        backward: search towards the start (to the start of the previous run).

    Returns:
        A frame position, or None when there is no such run.
    """
    cv = timeline.mean_cv
    above = np.isfinite(cv) & (cv >= threshold)
    starts = np.flatnonzero(above & ~np.concatenate(([False], above[:-1])))
    if backward:
        current_run_start = min(max(position, 0), len(cv))
        while 0 < current_run_start < len(cv) and above[current_run_start - 1]:
            current_run_start -= 1
        earlier = starts[starts < current_run_start]
        return int(earlier[-1]) if earlier.size else None
    later = starts[starts > position]
    return int(later[0]) if later.size else None
