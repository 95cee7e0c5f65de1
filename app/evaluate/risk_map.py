"""Does the risk map mark where the explanation is wrong?

The risk map is the pixel-wise coefficient of variation (CV) of the T MC Dropout attribution
maps. On data with ground-truth masks (the phantom) this module measures whether high CV falls
where the enhanced map is wrong, per pixel and per frame; on labelled data without masks it
compares mean CV on misclassified and correct frames.

Definitions (everything here uses these, and only here are they made):

- **Explained region**: the field-of-view pixels where the enhanced map (the MC mean,
  upsampled bilinearly to input size, in [0, 1] as the engine leaves it) is at or above
  :data:`app.evaluate.localisation.THRESHOLD` (0.5) — the region whose IoU with the mask
  ``python -m app evaluate`` reports (:func:`app.evaluate.localisation.explained_region`).
- **Attribution error** (:func:`attribution_error`): a field-of-view pixel where the explained
  region and the ground-truth mask disagree: high attribution outside the mask (a false
  positive) or low attribution inside it (a miss). It is the symmetric difference of the two
  regions, so ``1 - IoU = errors / |region ∪ mask|``: the per-pixel view of the localisation
  score, with the same map, threshold and field of view. It is undefined on a frame whose mask
  has no pixel inside the field of view (nothing to point at).
- **Scored pixels**: field-of-view pixels whose CV is defined. CV is NaN where the mean map is
  ~0 (the engine's ``cv_min_mean``); those pixels are excluded from every AUROC and counted.
- **Per-pixel AUROC of CV**: torchmetrics' binary AUROC of CV for flagging attribution-error
  pixels among the scored pixels (1: every error pixel has a higher CV than every correct one;
  0.5: chance; ties count one half, so a flat CV gives exactly 0.5). *Pooled*: over all scored
  pixels of all frames; *per frame*: on each frame's pixels, then the mean over frames where it
  is defined (a frame with no error pixel or no correct pixel has none).
- **Stratified AUROCs** separate the two kinds of error: among pixels inside the explained
  region (errors = false positives) and among pixels outside it (errors = misses). CV =
  std / mean is large where the mean is small, so the pooled AUROC partly measures how low the
  map is; within a stratum the map is on one side of the threshold and CV must carry
  information of its own.
- **Baseline** (no MC needed): the AUROC of the threshold margin ``-|map - 0.5|`` (pixels whose
  map is close to the threshold are the ones a small change would flip). CV earns its cost only
  if it beats this.
- **Mean CV** of a frame: :func:`app.pipeline.results.mean_cv_in_fov` (the viewer's), of the
  CV upsampled to input size.

Intervals are percentile bootstraps over recordings (videos), never over frames or pixels,
with the resampler of :mod:`app.evaluate.trust`. The AUROC of a resample is computed exactly
from a recordings x recordings table of pair counts (error pixel in recording r ranked above a
correct pixel in recording s), built once, so a resample costs O(R²) however many pixels there
are.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from app.calibration.fitting import error_auroc
from app.evaluate.bootstrap import Estimate, RecordingBootstrap, Statistic, ratio, recording_sums
from app.evaluate.localisation import THRESHOLD, explained_region, iou, pointing_hit
from app.pipeline.results import mean_cv_in_fov

__all__ = [
    "FramePixels",
    "FrameRisk",
    "attribution_error",
    "frame_figures",
    "has_structure",
    "outcome_figures",
    "pixel_auroc",
    "pixel_figures",
    "score_frame",
]


def _check_shapes(**arrays: np.ndarray) -> None:
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"expected (H, W) arrays of one shape, got {shapes}")


def has_structure(mask: np.ndarray, fov: np.ndarray) -> bool:
    """Whether the ground-truth mask has a pixel inside the field of view (so that
    :func:`attribution_error` is defined)."""
    return bool((mask & fov).any())


def attribution_error(
    map_up: np.ndarray, mask: np.ndarray, fov: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """The attribution-error pixels of a frame (see the module docstring).

    Args:
        map_up: (H, W) enhanced map at input size, in [0, 1] (NaN counts as below threshold).
        mask: (H, W) bool ground-truth mask.
        fov: (H, W) bool field-of-view disc.
        threshold: map values at or above it are the explained region.

    Returns:
        (H, W) bool: inside the field of view, ``(map >= threshold) XOR mask``; False outside.

    Raises:
        ValueError: shapes differ or are not 2-D; the field of view is empty; the mask has no
            pixel inside the field of view (the error is undefined: nothing to point at).
    """
    _check_shapes(map_up=map_up, mask=mask, fov=fov)
    fov = fov.astype(bool)
    if not fov.any():
        raise ValueError("the field of view is empty: no pixel to score")
    if not has_structure(mask.astype(bool), fov):
        raise ValueError(
            "the mask has no pixel inside the field of view: attribution error is undefined "
            "(there is no structure to point at)"
        )
    return explained_region(map_up, fov, threshold) ^ (mask.astype(bool) & fov)


def pixel_auroc(signal: np.ndarray, positive: np.ndarray) -> float | None:
    """torchmetrics' binary AUROC of ``signal`` (higher = more suspect) for ``positive``.

    Args:
        signal: (N,) finite values, e.g. the CV of the scored pixels.
        positive: (N,) bool, e.g. their attribution error.

    Returns:
        The AUROC in [0, 1], ties counted one half (a constant signal gives 0.5); None when
        there is no positive or no negative (undefined).

    Raises:
        ValueError: the sizes differ, or ``signal`` has NaN or infinite values.
    """
    signal = np.asarray(signal, dtype=np.float64).ravel()  # float64: no ties made by rounding
    positive = np.asarray(positive, dtype=bool).ravel()
    if signal.shape != positive.shape:
        raise ValueError(f"signal {signal.shape} and positive {positive.shape} differ in size")
    if not np.isfinite(signal).all():
        raise ValueError("signal contains NaN or infinite values; leave undefined pixels out")
    return error_auroc(-signal, positive)


@dataclass(frozen=True, eq=False)
class FramePixels:
    """The scored pixels of one frame (field of view, CV defined), flattened.

    Attributes:
        cv: float64 (n,) risk map values.
        map: float64 (n,) enhanced map values.
        error: bool (n,) attribution error.
        undefined: field-of-view pixels left out because their CV is NaN.
    """

    cv: np.ndarray
    map: np.ndarray
    error: np.ndarray
    undefined: int

    @property
    def explained(self) -> np.ndarray:
        """bool (n,): inside the explained region (map >= threshold)."""
        return self.map >= THRESHOLD


@dataclass(frozen=True, eq=False)
class FrameRisk:
    """What one frame says about the risk map.

    Attributes:
        recording: the recording's name (the bootstrap's unit).
        index: the frame's index in the recording.
        mean_cv: mean CV over the scored pixels (:func:`mean_cv_in_fov`); None when none.
        auroc: the frame's per-pixel AUROC of CV for attribution error; None when undefined
            (no scored pixel, or all scored pixels are errors, or none is).
        iou: IoU of the explained region with the mask (NaN when both are empty).
        pointing: 1.0 / 0.0 pointing-game hit / miss (NaN when undefined).
        pixels: the scored pixels.
    """

    recording: str
    index: int
    mean_cv: float | None
    auroc: float | None
    iou: float
    pointing: float
    pixels: FramePixels


def score_frame(
    recording: str,
    index: int,
    map_up: np.ndarray,
    cv_up: np.ndarray,
    mask: np.ndarray,
    fov: np.ndarray,
) -> FrameRisk:
    """Score one frame's risk map against its ground-truth mask.

    Args:
        recording: the recording's name.
        index: the frame's index in it.
        map_up: (H, W) enhanced map at input size (:func:`app.evaluate.localisation.upsampled`).
        cv_up: (H, W) risk map at input size, NaN where undefined.
        mask: (H, W) bool ground-truth mask.
        fov: (H, W) bool field-of-view disc.

    Returns:
        The frame's :class:`FrameRisk`. An all-zero map has NaN CV everywhere: no scored pixel,
        ``auroc`` and ``mean_cv`` None.

    Raises:
        ValueError: as :func:`attribution_error` (notably a mask with no pixel in the field of
            view; check :func:`has_structure` first to skip such frames).
    """
    _check_shapes(map_up=map_up, cv_up=cv_up, mask=mask, fov=fov)
    error = attribution_error(map_up, mask, fov)
    fov = fov.astype(bool)
    scored = fov & ~np.isnan(cv_up)
    pixels = FramePixels(
        cv=cv_up[scored].astype(np.float64),
        map=np.nan_to_num(map_up[scored], nan=0.0).astype(np.float64),
        error=error[scored],
        undefined=int(fov.sum() - scored.sum()),
    )
    mask = mask.astype(bool)
    return FrameRisk(
        recording=recording,
        index=int(index),
        mean_cv=mean_cv_in_fov(cv_up, fov),
        auroc=pixel_auroc(pixels.cv, pixels.error) if pixels.cv.size else None,
        iou=iou(map_up, mask, fov),
        pointing=pointing_hit(map_up, mask, fov),
        pixels=pixels,
    )


# -- Bootstrap over recordings --------------------------------------------------------------------


def _recording_ids(recordings: Sequence[str]) -> tuple[np.ndarray, int]:
    names, rid = np.unique(np.asarray(recordings, dtype=object).astype(str), return_inverse=True)
    return rid.astype(np.int64), len(names)


def _pair_counts(
    signal: np.ndarray, positive: np.ndarray, rid: np.ndarray, n_recordings: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``wins[r, s]``: pairs (positive of recording r, negative of recording s) with the
    positive's signal above the negative's, ties one half; and positives, negatives per
    recording."""
    wins = np.zeros((n_recordings, n_recordings))
    negatives = [np.sort(signal[(rid == s) & ~positive]) for s in range(n_recordings)]
    for r in range(n_recordings):
        up = signal[(rid == r) & positive]
        if not up.size:
            continue
        for s, down in enumerate(negatives):
            below = np.searchsorted(down, up, side="left").sum()
            tied = np.searchsorted(down, up, side="right").sum() - below
            wins[r, s] = below + 0.5 * tied
    pos = np.bincount(rid, weights=positive.astype(np.float64), minlength=n_recordings)
    neg = np.bincount(rid, weights=(~positive).astype(np.float64), minlength=n_recordings)
    return wins, pos, neg


def _auroc_estimate(
    boot: RecordingBootstrap,
    signal: np.ndarray,
    positive: np.ndarray,
    rid: np.ndarray,
    n_recordings: int,
) -> Estimate:
    """:func:`pixel_auroc` of the pooled values with its interval over recordings."""
    value = pixel_auroc(signal, positive) if signal.size else None
    wins, pos, neg = _pair_counts(signal, positive, rid, n_recordings)

    def statistic(counts: np.ndarray) -> np.ndarray:
        pairs = (counts @ pos) * (counts @ neg)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.einsum("br,rs,bs->b", counts, wins, counts) / pairs
        return np.where(pairs > 0, auc, np.nan)

    return boot.estimate(value, statistic)


def _group_mean(
    values: np.ndarray, group: np.ndarray, rid: np.ndarray, n_recordings: int
) -> Statistic:
    """The mean of ``values`` over the frames in ``group``, as a bootstrap statistic."""
    return ratio(
        recording_sums(np.where(group, values, 0.0), rid, n_recordings),
        recording_sums(group, rid, n_recordings),
    )


def _mean_estimate(
    boot: RecordingBootstrap, values: np.ndarray, rid: np.ndarray, n_recordings: int
) -> Estimate:
    """Mean of the finite ``values`` (one per frame), resampled by recording."""
    ok = np.isfinite(values)
    return boot.estimate(
        float(values[ok].mean()) if ok.any() else None, _group_mean(values, ok, rid, n_recordings)
    )


def _difference_estimate(
    boot: RecordingBootstrap,
    values: np.ndarray,
    flag: np.ndarray,
    rid: np.ndarray,
    n_recordings: int,
) -> Estimate:
    """Mean of ``values`` where ``flag`` minus where not, resampled by recording."""
    means = [_group_mean(values, group, rid, n_recordings) for group in (flag, ~flag)]
    value = (
        float(values[flag].mean() - values[~flag].mean()) if flag.any() and (~flag).any() else None
    )
    return boot.estimate(value, lambda counts: means[0](counts) - means[1](counts))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input: undefined, NaN
        rho = stats.spearmanr(x, y).statistic
    return float(rho)


def _spearman_estimate(
    boot: RecordingBootstrap, x: np.ndarray, y: np.ndarray, rid: np.ndarray, n_recordings: int
) -> Estimate:
    """Spearman's rho of ``x`` and ``y`` (frames where both are finite), resampled by
    recording (each drawn recording's frames as many times as it was drawn)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, rid = x[ok], y[ok], rid[ok]
    value = _spearman(x, y) if x.size > 1 else None

    def statistic(counts: np.ndarray) -> np.ndarray:
        out = np.full(len(counts), np.nan)
        for b, row in enumerate(counts):
            take = np.repeat(np.arange(x.size), row[rid].astype(np.int64))
            if take.size > 1:
                out[b] = _spearman(x[take], y[take])
        return out

    return boot.estimate(value, statistic)


def _figure(estimate: Estimate) -> dict[str, Any]:
    return asdict(estimate)


def _bootstrap(n_recordings: int, bootstrap: int, seed: int) -> RecordingBootstrap:
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be >= 1, got {bootstrap}")
    return RecordingBootstrap(n_recordings, int(bootstrap), seed)


# -- Figures --------------------------------------------------------------------------------------


def pixel_figures(
    frames: Sequence[FrameRisk], bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Per-pixel AUROCs of CV for attribution error, with intervals over recordings.

    Args:
        frames: the scored frames (:func:`score_frame`).
        bootstrap: resamples of the recordings.
        seed: their seed.

    Returns:
        A JSON-ready dict: ``frames``, ``recordings``, ``frames_with_auroc``, ``pixels`` (scored,
        errors, undefined = excluded for NaN CV, explained); ``pooled``, ``per_frame_mean``,
        ``within_explained`` (errors = false positives), ``within_unexplained`` (errors =
        misses), ``baseline_pooled`` (threshold margin) and ``baseline_within_explained`` /
        ``baseline_within_unexplained``, each ``{value, low, high, resamples}`` (value NaN
        when undefined).

    Raises:
        ValueError: no frame, or ``bootstrap`` < 1.
    """
    if not frames:
        raise ValueError("no frame to score")
    rid_frames, r = _recording_ids([f.recording for f in frames])
    boot = _bootstrap(r, bootstrap, seed)
    sizes = [f.pixels.cv.size for f in frames]
    rid = np.repeat(rid_frames, sizes)
    cv = np.concatenate([f.pixels.cv for f in frames])
    map_ = np.concatenate([f.pixels.map for f in frames])
    error = np.concatenate([f.pixels.error for f in frames])
    explained = np.concatenate([f.pixels.explained for f in frames])
    margin = -np.abs(map_ - THRESHOLD)
    per_frame = np.array([math.nan if f.auroc is None else f.auroc for f in frames])
    figures: dict[str, Any] = {
        "frames": len(frames),
        "recordings": r,
        "frames_with_auroc": int(np.isfinite(per_frame).sum()),
        "pixels": {
            "scored": int(cv.size),
            "errors": int(error.sum()),
            "undefined": int(sum(f.pixels.undefined for f in frames)),
            "explained": int(explained.sum()),
        },
        "per_frame_mean": _figure(_mean_estimate(boot, per_frame, rid_frames, r)),
    }
    for name, signal in (("", cv), ("baseline_", margin)):
        for stratum, keep in (
            ("pooled", slice(None)),
            ("within_explained", explained),
            ("within_unexplained", ~explained),
        ):
            figures[name + stratum] = _figure(
                _auroc_estimate(boot, signal[keep], error[keep], rid[keep], r)
            )
    return figures


def _group_figures(
    boot: RecordingBootstrap,
    values: np.ndarray,
    flag: np.ndarray,
    rid: np.ndarray,
    r: int,
    names: tuple[str, str],
) -> dict[str, Any]:
    """Mean of ``values`` on flagged / unflagged frames, their difference and the AUROC of
    ``values`` for the flag, over frames where ``values`` is finite."""
    ok = np.isfinite(values)
    values, flag, rid = values[ok], flag[ok], rid[ok]
    flagged, other = names
    return {
        f"frames_{flagged}": int(flag.sum()),
        f"frames_{other}": int((~flag).sum()),
        f"mean_cv_{flagged}": _figure(_mean_estimate(boot, np.where(flag, values, np.nan), rid, r)),
        f"mean_cv_{other}": _figure(_mean_estimate(boot, np.where(flag, np.nan, values), rid, r)),
        f"difference_{flagged}_minus_{other}": _figure(
            _difference_estimate(boot, values, flag, rid, r)
        ),
        f"auroc_{flagged}": _figure(_auroc_estimate(boot, values, flag, rid, r)),
    }


def frame_figures(
    frames: Sequence[FrameRisk], bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Per-frame: does a frame's mean CV go with a poor localisation?

    Args:
        frames: the scored frames (:func:`score_frame`).
        bootstrap: resamples of the recordings.
        seed: their seed.

    Returns:
        A JSON-ready dict: ``frames``, ``frames_without_mean_cv``; ``spearman_iou`` and
        ``spearman_pointing`` (Spearman's rho of mean CV with IoU and with the pointing hit,
        frames where both are defined; negative when higher CV goes with worse localisation);
        ``pointing``: frames on hits and misses, mean CV on each, their difference (miss minus
        hit) and the AUROC of mean CV for flagging misses. Each figure is
        ``{value, low, high, resamples}``.

    Raises:
        ValueError: no frame, or ``bootstrap`` < 1.
    """
    if not frames:
        raise ValueError("no frame to score")
    rid, r = _recording_ids([f.recording for f in frames])
    boot = _bootstrap(r, bootstrap, seed)
    mean_cv = np.array([math.nan if f.mean_cv is None else f.mean_cv for f in frames])
    ious = np.array([f.iou for f in frames], dtype=np.float64)
    hit = np.array([f.pointing for f in frames], dtype=np.float64)
    pointed = np.isfinite(hit)
    return {
        "frames": len(frames),
        "frames_without_mean_cv": int((~np.isfinite(mean_cv)).sum()),
        "spearman_iou": _figure(_spearman_estimate(boot, mean_cv, ious, rid, r)),
        "spearman_pointing": _figure(_spearman_estimate(boot, mean_cv, hit, rid, r)),
        "pointing": _group_figures(
            boot, mean_cv[pointed], hit[pointed] == 0.0, rid[pointed], r, ("miss", "hit")
        ),
    }


def outcome_figures(
    mean_cv: Sequence[float | None],
    wrong: Sequence[bool],
    recordings: Sequence[str],
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean CV on misclassified vs correct frames (labelled data, no masks needed).

    Args:
        mean_cv: each frame's mean CV (None or NaN: undefined, left out and counted).
        wrong: whether each frame's predicted class is not its label.
        recordings: each frame's recording.
        bootstrap: resamples of the recordings.
        seed: their seed.

    Returns:
        A JSON-ready dict: ``frames``, ``frames_without_mean_cv``; pooled over frames
        (``frames_wrong``/``frames_right``, ``mean_cv_wrong``/``mean_cv_right``, their
        difference and the AUROC of mean CV for flagging wrong frames, with intervals over
        recordings); ``per_recording``: {name: frames, wrong, mean CV on wrong and right frames
        (NaN when there are none)}.

    Raises:
        ValueError: lengths differ, no frame, or ``bootstrap`` < 1.
    """
    values = np.array([math.nan if v is None else v for v in mean_cv], dtype=np.float64)
    flag = np.asarray(wrong, dtype=bool)
    if not (len(values) == len(flag) == len(recordings)):
        raise ValueError("mean_cv, wrong and recordings must have one entry per frame")
    if not len(values):
        raise ValueError("no frame to score")
    rid, r = _recording_ids(recordings)
    boot = _bootstrap(r, bootstrap, seed)
    names = np.unique(np.asarray(recordings, dtype=object).astype(str))

    def mean_of(keep: np.ndarray) -> float:
        keep = keep & np.isfinite(values)
        return float(values[keep].mean()) if keep.any() else math.nan

    per_recording = {
        str(name): {
            "frames": int((rid == i).sum()),
            "wrong": int(flag[rid == i].sum()),
            "mean_cv_wrong": mean_of((rid == i) & flag),
            "mean_cv_right": mean_of((rid == i) & ~flag),
        }
        for i, name in enumerate(names)
    }
    return {
        "frames": len(values),
        "frames_without_mean_cv": int((~np.isfinite(values)).sum()),
        **_group_figures(boot, values, flag, rid, r, ("wrong", "right")),
        "per_recording": per_recording,
    }
