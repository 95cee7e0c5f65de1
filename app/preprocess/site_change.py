"""Has the probe moved to a new site? Frame-to-frame content change of the model's input.

The video-level verdict (:mod:`app.calibration.window`) pools the frames of one site, so it
must restart when the probe leaves it. A pCLE probe glides over tissue (the image translates
and rolls a little from frame to frame) or is lifted and put down elsewhere, and a recording
may be cut. :class:`SiteChangeDetector` compares each frame with the one before it, tolerating
translation: both are shrunk to :data:`THUMBNAIL` pixels (which also averages away the fibre
bundle's honeycomb, the same in every frame) and blurred, and the centre
:data:`TEMPLATE` x :data:`TEMPLATE` of the previous frame is looked for anywhere in the current
one (normalised cross-correlation, OpenCV's ``TM_CCOEFF_NORMED``). The best match is the
similarity; below :data:`NEW_SITE_SIMILARITY` the frame is a new site.

Measured on the 20 real Cellvizio videos of ``../shared/data/pcle-brain`` (the first 300
frames of each, model input 128 px): 1.6 % of consecutive frame pairs fall below the threshold
(the fastest probe motion, where little of the previous frame is left in view), against 97.4 %
of pairs cut between two different videos (``scripts/site_change_study.py`` reproduces it).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "NEW_SITE_SIMILARITY",
    "TEMPLATE",
    "THUMBNAIL",
    "SiteChangeDetector",
    "thumbnail",
    "thumbnail_similarity",
]

THUMBNAIL = 64
"""Side of the square the model input is shrunk to before matching."""
TEMPLATE = 48
"""Side of the previous frame's centre that is looked for: a shift of up to
(THUMBNAIL - TEMPLATE) / 2 thumbnail pixels (1/8 of the field of view) still matches."""
BLUR_SIGMA = 1.0
"""Gaussian blur of the thumbnails, in thumbnail pixels (noise and residual honeycomb)."""
NEW_SITE_SIMILARITY = 0.6
"""Best normalised cross-correlation below which a frame counts as a new site."""


class SiteChangeDetector:
    """Tells, frame after frame, whether the content changed to a new site.

    Args:
        threshold: similarity below which a frame is a new site.

    Attributes:
        similarity: the last frame's best match with the frame before it, in [-1, 1]; None
            for the first frame, after :meth:`reset`, or when either frame was flat.
    """

    def __init__(self, threshold: float = NEW_SITE_SIMILARITY) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [-1, 1], got {threshold}")
        self.threshold = float(threshold)
        self.similarity: float | None = None
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame: the next one starts a site (e.g. after a black frame)."""
        self._previous = None
        self.similarity = None

    def update(self, display: np.ndarray) -> bool:
        """Compare a frame with the previous one and remember it.

        Args:
            display: (S, S) or (H, W) grey image in [0, 1], what the model saw (the field of
                view cropped and masked: ``PreprocessedFrame.display``).

        Returns:
            True when this frame is a new site: it does not match the previous one, or there
            was no previous one (the first frame, or after :meth:`reset`).

        Raises:
            ValueError: ``display`` is not a 2-D image.
        """
        if display.ndim != 2 or min(display.shape) < 1:
            raise ValueError(f"expected a 2-D grey image, got shape {display.shape}")
        current = thumbnail(display)
        previous, self._previous = self._previous, current
        if previous is None:
            self.similarity = None
            return True
        self.similarity = thumbnail_similarity(previous, current)
        return self.similarity is not None and self.similarity < self.threshold


def thumbnail(display: np.ndarray) -> np.ndarray:
    """``display`` (H, W) shrunk to :data:`THUMBNAIL` square and blurred, float32; NaN as 0."""
    image = np.nan_to_num(np.asarray(display, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    small = cv2.resize(image, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), BLUR_SIGMA)


def thumbnail_similarity(previous: np.ndarray, current: np.ndarray) -> float | None:
    """Best normalised cross-correlation of ``previous``'s centre anywhere in ``current``
    (two :func:`thumbnail` images), in [-1, 1]; None when either is flat (no texture to
    match: neither the same site nor a new one)."""
    offset = (THUMBNAIL - TEMPLATE) // 2
    template = previous[offset : offset + TEMPLATE, offset : offset + TEMPLATE]
    if template.std() < 1e-4 or current.std() < 1e-4:
        return None
    scores = cv2.matchTemplate(current, template, cv2.TM_CCOEFF_NORMED)
    best = float(np.nan_to_num(scores, nan=-1.0).max())
    return max(-1.0, min(1.0, best))
