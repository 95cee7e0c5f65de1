"""Fit a checkpoint's :class:`~app.calibration.rules.Calibration` on recordings it did not
train on (``python -m app calibrate``).

The frames are the checkpoint's validation recordings by default, sampled and preprocessed as
:mod:`app.evaluate` samples them; a recording the checkpoint names among its training
recordings is refused. The model runs once with Dropout off (the deterministic explanation)
and ``passes`` times with Dropout on (MC Dropout: fresh masks per frame and pass); from the
softmax probabilities this fits, for each of the two, a temperature, the abstention signal
that flags errors best (highest AUROC on these frames) with its threshold, and the
split-conformal threshold.

Frames of one recording are correlated, so the frame counts overstate how much evidence there
is: the recordings are counted and stored too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.calibration.abstention import fit_abstention
from app.calibration.conformal import fit_conformal
from app.calibration.reliability import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from app.calibration.rules import SIGNALS, Calibration, ModeCalibration
from app.calibration.temperature import fit_temperature, scaled_probabilities
from app.timestamps import utc_now_iso

__all__ = [
    "CalibrationSettings",
    "FitError",
    "calibrate_checkpoint",
    "describe_fit",
    "error_auroc",
    "fit_calibration",
    "fit_mode",
    "passes_probabilities",
]


class FitError(Exception):
    """Calibration cannot be fitted: the message says why (no held-out recordings, a training
    recording among them, nothing readable, one class only)."""


@dataclass(frozen=True)
class CalibrationSettings:
    """What ``python -m app calibrate`` fits and on what.

    Attributes:
        target_error: the error among accepted frames the abstention rule keeps to.
        delta: the probability allowed for that guarantee to fail (0.05: 95 % confidence).
        coverage: the conformal prediction sets' coverage.
        passes: MC Dropout passes T.
        every_k: use every k-th frame of a recording.
        max_frames: at most this many frames in all (None: every sampled frame).
        batch_size: frames per forward.
        seed: seeds the Dropout masks (reproducible fits).
        recordings: the recordings to fit on, as ``"class/name"``; None: the checkpoint's
            validation recordings.
    """

    target_error: float = 0.01
    delta: float = 0.05
    coverage: float = 0.95
    passes: int = 10
    every_k: int = 1
    max_frames: int | None = None
    batch_size: int = 32
    seed: int = 0
    recordings: Sequence[str] | None = None


@contextlib.contextmanager
def _dropout_sampling(model: nn.Module) -> Iterator[None]:
    """The model in eval mode with its dropout modules sampling masks (MC Dropout)."""
    from app.explain.cut import find_dropouts

    dropouts = find_dropouts(model).values()
    for module in dropouts:
        module.train()
    try:
        yield
    finally:
        for module in dropouts:
            module.eval()


@torch.no_grad()
def passes_probabilities(
    model: nn.Module, inputs: torch.Tensor, passes: int, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of ``inputs`` (N, 3, H, W): Dropout off (N, K), and with Dropout
    sampling for ``passes`` passes (N, T, K). Seed torch beforehand for reproducible masks."""
    model.eval()
    deterministic, sampled = [], []
    for start in range(0, inputs.shape[0], batch_size):
        batch = inputs[start : start + batch_size]
        deterministic.append(torch.softmax(model(batch).double(), dim=1))
        with _dropout_sampling(model):
            sampled.append(
                torch.stack([torch.softmax(model(batch).double(), dim=1) for _ in range(passes)], 1)
            )
    return torch.cat(deterministic).cpu().numpy(), torch.cat(sampled).cpu().numpy()


def error_auroc(scores: np.ndarray, wrong: np.ndarray) -> float | None:
    """How well low confidence flags wrong frames: torchmetrics' AUROC of ``-scores`` against
    ``wrong`` (ties count one half).

    Args:
        scores: (N,) confidence score of each frame, higher = more confident.
        wrong: (N,) bool, True where the frame's predicted class is not its label.

    Returns:
        The AUROC in [0, 1] (1: every wrong frame scores below every right one; 0.5: chance);
        None when the frames are all right or all wrong (undefined).
    """
    if wrong.all() or not wrong.any():
        return None
    from torchmetrics.functional.classification import binary_auroc

    return float(binary_auroc(torch.from_numpy(-scores), torch.from_numpy(wrong.astype(np.int64))))


def fit_mode(
    passes: np.ndarray, labels: np.ndarray, settings: CalibrationSettings
) -> tuple[ModeCalibration, dict[str, Any]]:
    """One mode's calibration from its passes, and the figures measured on the way.

    Args:
        passes: (N, T, K) per-pass softmax probabilities of the calibration frames (T = 1 for
            the deterministic model).
        labels: (N,) their true class indices.
        settings: the target error, delta and coverage (the other fields are not used here).

    Returns:
        ``(calibration, figures)``: the :class:`~app.calibration.rules.ModeCalibration` (the
        temperature; the signal that flags errors best, by :func:`error_auroc`, with its
        abstention rule; the conformal rule), and what was measured on these frames.
    """
    temperature = fit_temperature(passes, labels)
    raw = passes.mean(axis=1)
    calibrated = scaled_probabilities(passes, temperature)
    wrong = calibrated.argmax(axis=1) != labels
    usable = [s for s in SIGNALS if s != "negative_mutual_information" or passes.shape[1] > 1]
    scores = {s: SIGNALS[s](calibrated, passes) for s in usable}
    aurocs = {s: error_auroc(scores[s], wrong) for s in usable}
    ranked = [s for s in usable if aurocs[s] is not None]
    signal = max(ranked, key=lambda s: aurocs[s]) if ranked else "max_probability"
    abstention = fit_abstention(
        scores[signal], wrong, target_error=settings.target_error, delta=settings.delta
    )
    conformal = fit_conformal(calibrated, labels, coverage=settings.coverage)
    sets = conformal.sets(calibrated)
    figures = {
        "accuracy": float(1.0 - wrong.mean()),
        "ece": {"raw": expected_calibration_error(raw, labels)},
        "nll": {"raw": negative_log_likelihood(raw, labels)},
        "brier": {"raw": brier_score(raw, labels)},
        "auroc_flagging_errors": aurocs,
        "abstention": abstention.describe(),
        "conformal_coverage": float(sets[np.arange(len(labels)), labels].mean()),
        "conformal_mean_set_size": float(sets.sum(axis=1).mean()),
    }
    for name, measure in (
        ("ece", expected_calibration_error),
        ("nll", negative_log_likelihood),
        ("brier", brier_score),
    ):
        figures[name]["calibrated"] = measure(calibrated, labels)
    return ModeCalibration(temperature, signal, abstention, conformal), figures


def _recordings(data: Path, training: dict[str, Any], chosen: Sequence[str] | None) -> list[Any]:
    """The recordings to fit on (see :class:`CalibrationSettings`), refusing training ones."""
    from models.data.index import DatasetError, discover

    try:
        index = discover(data)
    except DatasetError as exc:
        raise FitError(str(exc)) from None
    names = list(chosen) if chosen else list(training.get("val_recordings") or [])
    if not names:
        raise FitError(
            "the checkpoint names no validation recordings (it was trained without holding any "
            "out): name recordings it did not train on with --recordings"
        )
    trained = sorted(set(names) & set(training.get("train_recordings") or []))
    if trained:
        raise FitError(
            f"{', '.join(trained)}: the checkpoint was trained on these; calibration needs "
            "recordings it has not seen"
        )
    by_name = {r.name: r for r in index.recordings}
    absent = [n for n in names if n not in by_name]
    if absent:
        raise FitError(f"not found under {data}: {', '.join(absent)}")
    return [by_name[n] for n in names]


def fit_calibration(
    data: str | Path,
    checkpoint: str | Path,
    settings: CalibrationSettings = CalibrationSettings(),
    device: str = "cpu",
) -> Calibration:
    """Fit ``checkpoint``'s calibration on held-out recordings under ``data``.

    Args:
        data: the data set root (``ROOT/<class>/<recordings>``).
        checkpoint: a checkpoint written by this project.
        settings: levels, passes, sampling, the recordings.
        device: where the model runs.

    Returns:
        The :class:`~app.calibration.rules.Calibration` (not yet written anywhere); its
        ``fitted`` entry holds the date, the recordings, the frame count, T and the figures.

    Raises:
        FitError: see the class.
        CheckpointError: the checkpoint cannot be loaded.
    """
    from app.evaluate.frames import load_frames, to_input
    from models.checkpoint import load_checkpoint
    from models.data.frame_cache import FrameSampling

    model, metadata = load_checkpoint(checkpoint, device)
    recordings = _recordings(Path(data), dict(metadata.training or {}), settings.recordings)
    hyper = (metadata.training or {}).get("hyperparameters", {})
    sampling = FrameSampling(
        settings.every_k, float(hyper.get("dedup_threshold", FrameSampling().dedup_threshold))
    )
    frames, skipped = load_frames(
        recordings, int(metadata.input_size[0]), sampling, settings.max_frames
    )
    if skipped:
        raise FitError("unreadable: " + "; ".join(f"{s.name}: {s.reason}" for s in skipped))
    labels = np.array([f.label for f in frames], dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise FitError("the calibration frames are of one class only: name recordings of each")
    torch.manual_seed(settings.seed)
    inputs = to_input(frames, metadata.mean, metadata.std).to(device)
    deterministic, sampled = passes_probabilities(
        model, inputs, settings.passes, settings.batch_size
    )
    mc, mc_figures = fit_mode(sampled, labels, settings)
    det, det_figures = fit_mode(deterministic[:, None, :], labels, settings)
    fitted = {
        "date": utc_now_iso(),
        "recordings": [r.name for r in recordings],
        "frames": len(frames),
        "passes": int(settings.passes),
        "every_k": int(settings.every_k),
        "target_error": settings.target_error,
        "delta": settings.delta,
        "coverage": settings.coverage,
        "figures": {"mc": mc_figures, "deterministic": det_figures},
    }
    return Calibration(mc, det, fitted)


def calibrate_checkpoint(
    data: str | Path,
    checkpoint: str | Path,
    settings: CalibrationSettings = CalibrationSettings(),
    device: str = "cpu",
    *,
    write: bool = True,
) -> Calibration:
    """:func:`fit_calibration`, then, with ``write``, store the result in the checkpoint's
    metadata (atomically, weights unchanged: :func:`models.checkpoint.rewrite_metadata`).

    Raises:
        FitError, CheckpointError: as :func:`fit_calibration`; CheckpointError or OSError when
            the checkpoint cannot be rewritten (it is then as it was).
    """
    import dataclasses

    from models.checkpoint import read_metadata, rewrite_metadata

    calibration = fit_calibration(data, checkpoint, settings, device)
    if write:
        metadata = read_metadata(checkpoint)
        rewrite_metadata(
            checkpoint, dataclasses.replace(metadata, calibration=calibration.to_metadata())
        )
    return calibration


def describe_fit(calibration: Calibration) -> str:
    """What was fitted and measured, a few lines for the terminal."""
    fitted = calibration.fitted
    lines = [
        f"calibration fitted on {fitted['frames']} frames of {len(fitted['recordings'])} "
        f"recordings (T = {fitted['passes']}); frames of one recording are correlated"
    ]
    for key, name in (("mc", "MC Dropout"), ("deterministic", "deterministic")):
        mode, figures = calibration.for_mode(key == "mc"), fitted["figures"][key]
        lines.append(
            f"{name}: temperature {mode.temperature:.3f}, ECE {figures['ece']['raw']:.4f} -> "
            f"{figures['ece']['calibrated']:.4f}, NLL {figures['nll']['raw']:.4f} -> "
            f"{figures['nll']['calibrated']:.4f}; UNCERTAIN on {mode.signal}: "
            f"{mode.abstention.describe()}; {mode.conformal.coverage:.0%} sets: coverage "
            f"{figures['conformal_coverage']:.3f}, "
            f"mean size {figures['conformal_mean_set_size']:.2f}"
        )
    return "\n".join(lines)
