"""Circular field of view (FOV) of pCLE frames: detection, masking, cropping, tracking.

A pCLE probe images a bright disc on a black surround; the acquisition software burns a logo
and a scale bar into the surround. Anything outside the disc is not tissue, so training, the
viewer and evaluation all crop to the disc and zero everything outside it. This module is the
single implementation of that step, so all three see exactly the same pixels.

Conventions: coordinates are pixels of the source frame, with pixel ``(x, y)`` centred at
``(x, y)``; a pixel is inside the disc when ``(x - cx)**2 + (y - cy)**2 <= radius**2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "MIN_FRAME_SIDE",
    "FieldOfView",
    "FieldOfViewTracker",
    "apply_field_of_view",
    "find_field_of_view",
    "has_signal",
    "to_gray_float",
]

MIN_FRAME_SIDE = 16
"""Smallest frame side (pixels) accepted by :func:`to_gray_float`."""

# Detection parameters. Intensities are in [0, 1] units of full scale.
_DETECT_MAX_SIDE = 256  # detection runs on a copy downscaled to at most this side
_NO_SIGNAL_LEVEL = 0.01  # 99.5th percentile below this: the frame is black (~2.5/255)
_MIN_CONTRAST = 0.02  # p99.5 - p5 below this: the frame is uniform (no disc edge to see)
_THRESH_FLOOR = 0.012  # threshold above the surround level, at least ~3/255 ...
_THRESH_REL = 0.015  # ... or this fraction of the frame's contrast
_FILLED_FRACTION = 0.95  # foreground covering this much of the frame: no black surround
_MIN_RADIUS_FRAC = 0.2  # a disc smaller than this fraction of min(H, W) is not a pCLE FOV
_HULL_TOL = 2.0  # contour points this deep inside the convex hull are rim candidates (small px)
_INLIER_TOL = 1.5  # circle-fit inlier distance (small px)
_MIN_INLIER_FRAC = 0.5  # of the rim candidates
_MIN_ARC_DEG = 90.0  # the inliers must span at least this much of the circle
_MAX_BRIGHT_OUTSIDE = 0.1  # fraction of bright pixels allowed outside the fitted disc
_RANSAC_TRIALS = 48
_RANSAC_SCORE_POINTS = 160  # RANSAC scores hypotheses on a subsample of this many points


@dataclass(frozen=True)
class FieldOfView:
    """A circular field of view in source-frame pixel coordinates.

    ``found`` tells a detection from a fallback; ``source`` says which: ``"detected"``,
    ``"no_signal"`` (black frame: inscribed circle), ``"no_disc"`` (dark surround but no disc
    edge found: inscribed circle), ``"no_surround"`` (no black surround, e.g. an ordinary
    full-frame image: circumscribed circle, nothing is masked) or ``"disabled"`` (FOV handling
    switched off by the caller: circumscribed circle).
    """

    cx: float
    cy: float
    radius: float
    found: bool = True
    source: str = "detected"

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Boolean (H, W) mask of the pixels inside the disc, for a frame of ``shape``."""
        h, w = int(shape[0]), int(shape[1])
        return _disc_mask(h, w, self.cx, self.cy, self.radius).copy()

    def bbox(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Bounding box ``(x0, y0, x1, y1)`` (end-exclusive) of the disc, clipped to the frame."""
        h, w = int(shape[0]), int(shape[1])
        x0, y0, side = self.crop_window()
        return (
            min(max(x0, 0), w),
            min(max(y0, 0), h),
            min(max(x0 + side, 0), w),
            min(max(y0 + side, 0), h),
        )

    def crop_window(self) -> tuple[int, int, int]:
        """The square crop ``(x0, y0, side)`` centred on the disc; it may extend beyond the frame.

        ``side = ceil(2 * radius)`` and the disc centre maps to the centre of the square.
        """
        side = max(1, math.ceil(2.0 * self.radius - 1e-6))
        half = (side - 1) / 2.0
        return math.floor(self.cx - half + 0.5), math.floor(self.cy - half + 0.5), side

    @classmethod
    def inscribed(cls, shape: tuple[int, ...], source: str = "no_signal") -> FieldOfView:
        """Largest circle centred in the frame (a fallback with ``found=False``)."""
        h, w = int(shape[0]), int(shape[1])
        return cls((w - 1) / 2.0, (h - 1) / 2.0, min(h, w) / 2.0, found=False, source=source)

    @classmethod
    def circumscribed(cls, shape: tuple[int, ...], source: str = "no_surround") -> FieldOfView:
        """Circle through the frame corners: masks nothing (a fallback with ``found=False``)."""
        h, w = int(shape[0]), int(shape[1])
        return cls((w - 1) / 2.0, (h - 1) / 2.0, math.hypot(h, w) / 2.0, found=False, source=source)


# ----------------------------------------------------------------------------------------------
# Conversion


def to_gray_float(frame: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Convert a frame to a new float32 (H, W) grey image in [0, 1].

    Accepts (H, W), (H, W, 1), BGR (H, W, 3) and BGRA (H, W, 4) frames of dtype uint8, uint16,
    float16/32/64 (taken to be in [0, 1] already and clipped) or bool. Colour is converted
    with the usual luma weights, so grey stored as three equal channels is unchanged.

    Integers are scaled by their container maximum (255, 65535) unless ``bit_depth`` gives the
    real depth of the data: 10- or 12-bit data in a 16-bit container would otherwise come out
    dark, so pass ``bit_depth=12`` for it (values above ``2**bit_depth - 1`` are clipped).

    Raises:
        TypeError: ``frame`` is not a numpy array.
        ValueError: empty frame, wrong ndim, unsupported channel count or dtype, non-finite
            values, a side shorter than ``MIN_FRAME_SIDE``, or a bad ``bit_depth``.
    """
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise ValueError(f"frame is empty (shape {frame.shape})")
    if frame.ndim not in (2, 3):
        raise ValueError(
            f"frame must be (H, W) or (H, W, C), got ndim={frame.ndim} (shape {frame.shape})"
        )
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(
            f"unsupported channel count {channels} (shape {frame.shape}); expected 1, 3 or 4"
        )
    h, w = frame.shape[:2]
    if min(h, w) < MIN_FRAME_SIDE:
        raise ValueError(
            f"frame too small: {h}x{w} pixels, each side must be at least {MIN_FRAME_SIDE}"
        )

    dtype = frame.dtype
    if dtype == np.bool_:
        img, scale = frame.astype(np.uint8), 1.0
    elif dtype == np.uint8 or dtype == np.uint16:
        full = 255 if dtype == np.uint8 else 65535
        if bit_depth is not None:
            if not 1 <= bit_depth <= 8 * dtype.itemsize:
                raise ValueError(f"bit_depth {bit_depth} does not fit dtype {dtype}")
            full = 2**bit_depth - 1
        img, scale = frame, 1.0 / full
    elif dtype.kind == "f" and dtype.itemsize <= 8:
        if not np.isfinite(frame).all():
            raise ValueError("frame contains non-finite values (NaN or inf)")
        img, scale = frame.astype(np.float32, copy=False), 1.0
    else:
        raise ValueError(
            f"unsupported dtype {dtype}; expected uint8, uint16, float16/32/64 or bool"
        )

    img = np.ascontiguousarray(img)
    if channels == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    elif img.ndim == 3:
        img = img[:, :, 0]
    out = img.astype(np.float32) * np.float32(scale) if scale != 1.0 else img.astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out


# ----------------------------------------------------------------------------------------------
# Detection


def find_field_of_view(frame: np.ndarray) -> FieldOfView:
    """Find the bright disc on a black surround; never fails on a valid frame.

    Method (on a copy downscaled to at most 256 px a side, ~1 ms for 464x336): threshold a
    little above the surround level (the 5th percentile), take the outer contours of the large
    foreground regions (this fills dark tissue inside the disc and ignores logos and text,
    which are small separate regions), keep the contour points on their convex hull (dark
    tissue on the rim makes dents that are off the hull), and fit a circle to those points by
    RANSAC and least squares (which rejects text or a logo touching the disc). Points on the
    frame border are not used, so a disc cut by the frame edge is still fitted correctly.

    A fit is accepted when the circle is large enough (a fifth of the short side), the inliers
    span at least 90 degrees of arc, and the surround outside it is mostly dark. Otherwise a
    fallback with ``found=False`` is returned: the inscribed circle for a black frame
    (``"no_signal"``) or a dark-surround frame without a clear disc edge (``"no_disc"``); the
    circumscribed circle (nothing masked) for a frame without a black surround
    (``"no_surround"``). Integer frames are scaled by their container maximum; convert
    10/12-bit data with :func:`to_gray_float` and ``bit_depth`` first.
    """
    gray = frame if _is_gray_float(frame) else to_gray_float(frame)
    h, w = gray.shape
    factor = max(1, math.ceil(max(h, w) / _DETECT_MAX_SIDE))
    if factor > 1:
        ws, hs = max(MIN_FRAME_SIDE // 2, w // factor), max(MIN_FRAME_SIDE // 2, h // factor)
        small = cv2.resize(gray, (ws, hs), interpolation=cv2.INTER_AREA)
    else:
        hs, ws, small = h, w, gray
    sx, sy = w / ws, h / hs

    sample = small[::2, ::2] if small.size > 4096 else small
    lo, hi = (float(v) for v in np.percentile(sample, (5.0, 99.5)))
    if hi < _NO_SIGNAL_LEVEL:
        return FieldOfView.inscribed((h, w), "no_signal")
    if hi - lo < _MIN_CONTRAST:
        # Uniformly lit: no dark surround to separate from.
        return FieldOfView.circumscribed((h, w), "no_surround")
    thresh = lo + max(_THRESH_FLOOR, _THRESH_REL * (hi - lo))
    fg = (small > thresh).astype(np.uint8)
    if fg.mean() >= _FILLED_FRACTION:
        return FieldOfView.circumscribed((h, w), "no_surround")

    fit = _fit_disc(fg)
    if fit is not None:
        cxs, cys, rs = fit
        # Map small-image pixel centres back to the source frame.
        fov = FieldOfView((cxs + 0.5) * sx - 0.5, (cys + 0.5) * sy - 0.5, rs * 0.5 * (sx + sy))
        if _plausible(fov, h, w):
            return fov
    border = np.concatenate((fg[0], fg[-1], fg[1:-1, 0], fg[1:-1, -1]))
    if border.mean() >= 0.5:
        return FieldOfView.circumscribed((h, w), "no_surround")
    return FieldOfView.inscribed((h, w), "no_disc")


def has_signal(frame: np.ndarray) -> bool:
    """False for a black frame (no tissue in contact, or no laser light), by the criterion
    :func:`find_field_of_view` uses, on a strided sample of the frame (any layout)."""
    step = max(1, min(frame.shape[:2]) // 128)  # at least 128 px a side, ~32k px for 4K
    sample = frame[::step, ::step]
    gray = sample if _is_gray_float(sample) else to_gray_float(sample)
    return float(np.percentile(gray, 99.5)) >= _NO_SIGNAL_LEVEL


def _black(fov: FieldOfView) -> FieldOfView:
    """``fov`` for a black frame: the disc where it was, marked as not seen in this frame."""
    return replace(fov, found=False, source="no_signal")


def _is_gray_float(frame: np.ndarray) -> bool:
    """True for a float32 (H, W) frame in [0, 1]: ``to_gray_float`` would not change it."""
    return (
        isinstance(frame, np.ndarray)
        and frame.dtype == np.float32
        and frame.ndim == 2
        and min(frame.shape) >= MIN_FRAME_SIDE
        and bool(frame.min() >= 0.0)  # False for NaN: to_gray_float then raises
        and bool(frame.max() <= 1.0)
    )


def _plausible(fov: FieldOfView, h: int, w: int) -> bool:
    """Sanity limits on a fitted disc: centre inside the frame, a sensible radius."""
    return (
        0.0 <= fov.cx <= w - 1
        and 0.0 <= fov.cy <= h - 1
        and _MIN_RADIUS_FRAC * min(h, w) <= fov.radius <= math.hypot(h, w)
    )


def _fit_disc(fg: np.ndarray) -> tuple[float, float, float] | None:
    """Fit the disc to a binary foreground image; ``(cx, cy, r)`` in its pixels, or None."""
    hs, ws = fg.shape
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    areas = np.array([cv2.contourArea(c) for c in contours])
    biggest = float(areas.max())
    if biggest < (_MIN_RADIUS_FRAC * min(hs, ws)) ** 2:
        return None
    # The disc may be split by dark tissue: keep every region of comparable size.
    keep = [c for c, a in zip(contours, areas, strict=True) if a >= 0.1 * biggest]
    pts = np.concatenate([c.reshape(-1, 2) for c in keep]).astype(np.float64)
    # Rim candidates: contour points on (within _HULL_TOL of) the convex hull's boundary,
    # measured with a distance transform of the filled hull (cheaper than point-to-edge tests).
    hull = cv2.convexHull(pts.astype(np.int32))
    if len(hull) < 3:
        return None
    inside = np.zeros((hs, ws), np.uint8)
    cv2.fillConvexPoly(inside, hull, 1)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    ix, iy = pts[:, 0].astype(np.intp), pts[:, 1].astype(np.intp)
    on_frame_edge = (ix <= 0) | (iy <= 0) | (ix >= ws - 1) | (iy >= hs - 1)
    rim = pts[(depth[iy, ix] <= _HULL_TOL) & ~on_frame_edge]
    if len(rim) < 12:
        return None

    circle = _ransac_circle(rim)
    if circle is None:
        return None
    cx, cy, r = circle
    inliers = _inliers(rim, circle)
    if inliers.sum() < max(12, _MIN_INLIER_FRAC * len(rim)):
        return None
    angles = np.arctan2(rim[inliers, 1] - cy, rim[inliers, 0] - cx)
    bins = np.unique(((angles + math.pi) / (2 * math.pi) * 36).astype(int) % 36)
    if len(bins) * 10.0 < _MIN_ARC_DEG:
        return None

    # The surround must be dark: few foreground pixels well outside the circle (logos only).
    yy, xx = np.ogrid[:hs, :ws]
    outside = (xx - cx) ** 2 + (yy - cy) ** 2 > (r + 2.0) ** 2
    n_out = int(outside.sum())
    if n_out > 0 and (fg.astype(bool) & outside).sum() > _MAX_BRIGHT_OUTSIDE * n_out:
        return None
    return cx, cy, r


def _ransac_circle(pts: np.ndarray) -> tuple[float, float, float] | None:
    """Robust circle fit: best 3-point circle by inlier count, refined by least squares."""
    n = len(pts)
    rng = np.random.default_rng(0)  # fixed seed: the same frame always gives the same FOV
    idx = rng.integers(0, n, size=(_RANSAC_TRIALS, 3))
    score_pts = pts[:: max(1, n // _RANSAC_SCORE_POINTS)]
    a, b, c = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    d = 2.0 * (
        a[:, 0] * (b[:, 1] - c[:, 1])
        + b[:, 0] * (c[:, 1] - a[:, 1])
        + c[:, 0] * (a[:, 1] - b[:, 1])
    )
    valid = np.abs(d) > 1e-6
    if not valid.any():
        return None
    a, b, c, d = a[valid], b[valid], c[valid], d[valid]
    sa, sb, sc = (a**2).sum(1), (b**2).sum(1), (c**2).sum(1)
    ux = (sa * (b[:, 1] - c[:, 1]) + sb * (c[:, 1] - a[:, 1]) + sc * (a[:, 1] - b[:, 1])) / d
    uy = (sa * (c[:, 0] - b[:, 0]) + sb * (a[:, 0] - c[:, 0]) + sc * (b[:, 0] - a[:, 0])) / d
    r = np.hypot(a[:, 0] - ux, a[:, 1] - uy)
    dx = score_pts[None, :, 0] - ux[:, None]
    dy = score_pts[None, :, 1] - uy[:, None]
    score = (np.abs(np.sqrt(dx * dx + dy * dy) - r[:, None]) <= _INLIER_TOL).sum(axis=1)
    best = int(score.argmax())
    circle = (float(ux[best]), float(uy[best]), float(r[best]))
    for _ in range(2):
        inliers = _inliers(pts, circle)
        if inliers.sum() < 3:
            break
        refined = _lsq_circle(pts[inliers])
        if refined is None:
            break
        circle = refined
    return circle


def _inliers(pts: np.ndarray, circle: tuple[float, float, float]) -> np.ndarray:
    """Points within ``_INLIER_TOL`` of the circle."""
    cx, cy, r = circle
    return np.abs(np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r) <= _INLIER_TOL


def _lsq_circle(pts: np.ndarray) -> tuple[float, float, float] | None:
    """Algebraic (Kasa) least-squares circle through points; None when degenerate."""
    mean = pts.mean(axis=0)
    x, y = pts[:, 0] - mean[0], pts[:, 1] - mean[1]
    z = x * x + y * y
    # Normal equations of [2x 2y 1] @ (a, b, c) = x^2 + y^2 (3x3: cheaper than lstsq).
    sxx, syy, sxy = float(x @ x), float(y @ y), float(x @ y)
    normal = np.array([[4 * sxx, 4 * sxy, 0.0], [4 * sxy, 4 * syy, 0.0], [0.0, 0.0, len(x)]])
    rhs = np.array([2 * float(x @ z), 2 * float(y @ z), float(z.sum())])
    try:
        a, b, c = np.linalg.solve(normal, rhs)
    except np.linalg.LinAlgError:
        return None
    r2 = c + a * a + b * b
    if not np.isfinite(r2) or r2 <= 0:
        return None
    return float(a + mean[0]), float(b + mean[1]), float(math.sqrt(r2))


# ----------------------------------------------------------------------------------------------
# Masking and cropping


@lru_cache(maxsize=16)
def _disc_mask(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Read-only boolean (h, w) disc mask; cached because a stream reuses one FOV."""
    yy, xx = np.ogrid[:h, :w]
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    mask.setflags(write=False)
    return mask


def apply_field_of_view(frame: np.ndarray, fov: FieldOfView, crop: bool = True) -> np.ndarray:
    """Zero everything outside the disc; with ``crop``, also cut the disc's square out.

    Works on (H, W) or (H, W, C) arrays of any dtype and returns a new array of that dtype.
    The crop is ``fov.crop_window()``: a ``ceil(2r)`` square with the disc centred, padded with
    zeros where the disc extends beyond the frame. Logos and scale bars in the surround are
    outside the disc, so nothing of them survives.
    """
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame must be (H, W) or (H, W, C), got ndim={frame.ndim}")
    h, w = frame.shape[:2]
    if not crop:
        mask = _disc_mask(h, w, fov.cx, fov.cy, fov.radius)
        out = np.zeros_like(frame)
        out[mask] = frame[mask]
        return out

    x0, y0, side = fov.crop_window()
    out = np.zeros((side, side, *frame.shape[2:]), dtype=frame.dtype)
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + side, w), min(y0 + side, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return out
    # The disc in crop coordinates is centred; the frame occupies [fy0-y0, fy1-y0) x ...
    mask = _disc_mask(side, side, fov.cx - x0, fov.cy - y0, fov.radius)
    region = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    window = frame[fy0:fy1, fx0:fx1]
    sub_mask = mask[region]
    dst = out[region]
    dst[sub_mask] = window[sub_mask]
    return out


# ----------------------------------------------------------------------------------------------
# Tracking over a stream


class FieldOfViewTracker:
    """Caches the FOV of a stream: a probe's field of view does not move between frames.

    Detects on the first frame, then again every ``redetect_every`` frames (every
    ``retry_every`` frames while only a fallback is known), and at once when the frame size
    changes. A new detection within ``jitter_tolerance`` (fraction of the radius) of the
    current FOV is blended in with weight ``smoothing``; a larger jump is only adopted when the
    next frame's detection confirms it, so a single bad frame cannot move the mask. A fallback
    never replaces a detected FOV (a dark frame says nothing about where the disc is). Every
    frame, detected or not, is checked for signal (:func:`has_signal`, microseconds): a black
    frame gets the cached disc marked ``found=False, source="no_signal"``.
    ``detector`` defaults to :func:`find_field_of_view` (looked up at call time).
    """

    def __init__(
        self,
        redetect_every: int = 50,
        *,
        retry_every: int = 5,
        smoothing: float = 0.3,
        jitter_tolerance: float = 0.03,
        detector: Callable[[np.ndarray], FieldOfView] | None = None,
    ) -> None:
        if redetect_every < 1 or retry_every < 1:
            raise ValueError("redetect_every and retry_every must be >= 1")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        self.redetect_every = redetect_every
        self.retry_every = retry_every
        self.smoothing = smoothing
        self.jitter_tolerance = jitter_tolerance
        self._detector = detector
        self.reset()

    def reset(self) -> None:
        """Forget the cached FOV; the next frame is detected afresh."""
        self._shape: tuple[int, int] | None = None
        self._fov: FieldOfView | None = None
        self._candidate: FieldOfView | None = None
        self._since = 0
        self.detections = 0

    @property
    def current(self) -> FieldOfView | None:
        """The FOV returned by the last :meth:`update`, or None before the first frame."""
        return self._fov

    def update(self, frame: np.ndarray) -> FieldOfView:
        """The FOV for this frame of the stream (detecting only when due)."""
        shape = (int(frame.shape[0]), int(frame.shape[1]))
        if shape != self._shape:
            self.reset()
            self._shape = shape
        fov = self._fov
        if fov is not None and self._candidate is None:
            period = self.redetect_every if fov.found else self.retry_every
            if self._since < period:
                self._since += 1
                return fov if has_signal(frame) else _black(fov)
        detector = self._detector or find_field_of_view
        new = detector(frame)
        self.detections += 1
        self._since = 1
        self._fov = self._merge(fov, new)
        return self._fov if new.source != "no_signal" else _black(self._fov)

    def _merge(self, cur: FieldOfView | None, new: FieldOfView) -> FieldOfView:
        """Combine the cached FOV with a fresh detection (smoothing, confirmation, fallbacks)."""
        candidate, self._candidate = self._candidate, None
        if cur is None or not cur.found:
            return new
        if not new.found:
            return cur
        if self._close(cur, new):
            a = self.smoothing
            return replace(
                cur,
                cx=cur.cx + a * (new.cx - cur.cx),
                cy=cur.cy + a * (new.cy - cur.cy),
                radius=cur.radius + a * (new.radius - cur.radius),
            )
        if candidate is not None and self._close(candidate, new):
            return new  # a jump confirmed by two detections in a row
        self._candidate = new  # check again on the next frame
        return cur

    def _close(self, a: FieldOfView, b: FieldOfView) -> bool:
        tol = self.jitter_tolerance * max(a.radius, 1.0)
        return math.hypot(a.cx - b.cx, a.cy - b.cy) <= tol and abs(a.radius - b.radius) <= tol
