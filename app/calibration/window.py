"""The video-level verdict: the frames of the last few seconds at one site, pooled.

Single frames flicker: a frame blurred by motion, or one ambiguous field of cells, may read as
the other tumour for a frame or two. A surgeon judges the site, not the frame.
:class:`WindowVerdictTracker` pools the frames of a sliding window (default
:data:`DEFAULT_WINDOW_S` seconds of the source's clock) and restarts the window whenever the
probe reaches a new site (:class:`app.preprocess.site_change.SiteChangeDetector`), a frame
shows no tissue, or the source's clock goes back (a seek, a loop).

The verdict's class is the one with the highest mean probability over the window's frames
(calibrated probabilities when the checkpoint is calibrated, else the MC mean), and its
probability is that mean. With a calibration, the verdict is UNCERTAIN unless at least
:data:`MIN_AGREEING` of the window's frames were accepted (not UNCERTAIN) with the verdict's
class: a window of mostly abstained or disagreeing frames does not name a class.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_WINDOW_S",
    "MIN_AGREEING",
    "RESTART_REASONS",
    "WindowVerdict",
    "WindowVerdictTracker",
]

DEFAULT_WINDOW_S = 2.0
"""Seconds of the source's clock the verdict pools."""
MAX_WINDOW_S = 60.0
"""The longest window offered."""
MIN_AGREEING = 0.5
"""Share of the window's frames that must be accepted with the verdict's class (calibrated
checkpoints only) for the verdict to name it."""

RESTART_REASONS = {
    "start": "the window was empty (the first frame, or the first after frames without tissue)",
    "site": "the probe moved to a new site",
    "no_tissue": "a frame without tissue",
    "clock": "the video went back in time (seek or loop)",
}
"""Why a window restarted, by key (:attr:`WindowVerdict.restarted`)."""


@dataclass(frozen=True)
class WindowVerdict:
    """The verdict at one frame.

    Attributes:
        class_idx: the class with the highest mean probability over the window; None when
            the window holds no frame (this frame shows no tissue).
        probability: that mean probability (NaN when ``class_idx`` is None).
        frames: the frames in the window, this one included.
        seconds: the time they span on the source's clock: from the first to the last, plus
            one mean frame interval (48 frames at 24 frames/s span 2.0 s; one frame, 0).
        uncertain: the window does not name a class (see the module documentation); None for
            a checkpoint without calibration.
        calibrated: the probabilities pooled were calibrated ones.
        restarted: why the window restarted at this frame (a key of
            :data:`RESTART_REASONS`); None when it went on.
    """

    class_idx: int | None
    probability: float
    frames: int
    seconds: float
    uncertain: bool | None
    calibrated: bool
    restarted: str | None = None


@dataclass(frozen=True)
class _Frame:
    time_s: float
    probabilities: np.ndarray
    agrees: np.ndarray | None  # (K,) bool: accepted with class k; None without calibration


class WindowVerdictTracker:
    """Pools the frames of a sliding window into a :class:`WindowVerdict`, frame by frame.

    One tracker follows one stream; feed it every analysed frame in order.

    Args:
        window_s: the window's length in seconds of the source's clock, > 0 and at most
            :data:`MAX_WINDOW_S`.
    """

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        if not (math.isfinite(window_s) and 0 < window_s <= MAX_WINDOW_S):
            raise ValueError(f"the window must be > 0 and <= {MAX_WINDOW_S} s, got {window_s}")
        self.window_s = float(window_s)
        self._frames: deque[_Frame] = deque()

    def reset(self) -> None:
        """Empty the window; the next frame restarts it (reason ``"start"``)."""
        self._frames.clear()

    def update(
        self,
        time_s: float,
        probabilities: npt.ArrayLike,
        *,
        accepted_class: int | None = None,
        calibrated: bool = False,
        new_site: bool = False,
        tissue: bool = True,
    ) -> WindowVerdict:
        """Add one frame and give the verdict at it.

        Args:
            time_s: the frame's time on the source's clock, seconds.
            probabilities: (K,) the frame's class probabilities: calibrated ones when
                ``calibrated``, else the MC mean.
            accepted_class: with a calibration, the class the frame was accepted with; None
                when it was abstained (UNCERTAIN) or without a calibration.
            calibrated: the probabilities are calibrated (the checkpoint has a calibration).
            new_site: the frame's content does not continue the previous frame's
                (:meth:`SiteChangeDetector.update
                <app.preprocess.site_change.SiteChangeDetector.update>`).
            tissue: the frame shows tissue; a frame without (black, no field of view) empties
                the window and is not pooled.

        Returns:
            The verdict over the window ending at this frame.

        Raises:
            ValueError: ``probabilities`` is not a 1-D vector of finite values, or
                ``accepted_class`` is out of its range.
        """
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 1 or p.size < 1 or not np.isfinite(p).all():
            raise ValueError(f"probabilities must be a finite (K,) vector, got {p!r:.80}")
        if accepted_class is not None and not 0 <= accepted_class < p.size:
            raise ValueError(f"accepted_class {accepted_class} is out of range for {p.size}")
        restarted = self._restart_reason(float(time_s), new_site, tissue)
        if restarted is not None:
            self._frames.clear()
        if not tissue:
            return WindowVerdict(None, math.nan, 0, 0.0, None, calibrated, restarted)
        agrees = None
        if calibrated:
            agrees = np.zeros(p.size, dtype=bool)
            if accepted_class is not None:
                agrees[accepted_class] = True
        self._frames.append(_Frame(float(time_s), p, agrees))
        while self._frames[0].time_s <= time_s - self.window_s:
            self._frames.popleft()
        return self._verdict(calibrated, restarted)

    def _restart_reason(self, time_s: float, new_site: bool, tissue: bool) -> str | None:
        if not tissue:
            return "no_tissue" if self._frames else None
        if not self._frames:
            return "start"
        if time_s < self._frames[-1].time_s:
            return "clock"
        return "site" if new_site else None

    def _verdict(self, calibrated: bool, restarted: str | None) -> WindowVerdict:
        frames = self._frames
        mean = np.mean([f.probabilities for f in frames], axis=0)
        best = int(np.argmax(mean))
        n = len(frames)
        span = frames[-1].time_s - frames[0].time_s
        seconds = span * n / (n - 1) if n > 1 else 0.0
        uncertain = None
        if calibrated:
            agreeing = sum(bool(f.agrees is not None and f.agrees[best]) for f in frames)
            uncertain = agreeing < MIN_AGREEING * n
        return WindowVerdict(best, float(mean[best]), n, seconds, uncertain, calibrated, restarted)
