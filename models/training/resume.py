"""The resume file of a training run: everything needed to continue after an interruption.

A model checkpoint (:mod:`models.checkpoint`) holds weights and metadata for the viewer; the
resume file holds what only training needs: the weights of the last finished epoch, the
optimizer and learning-rate scheduler state, the random number generator state, the best
result so far and the metric history, plus the run's settings so that a resume under other
settings is refused rather than silently mixing two runs. It is one ``torch.save`` of plain
tensors, dicts, lists and numbers, written atomically (temporary file, fsync, rename) and read
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import write_torch_file

__all__ = ["RESUME_FORMAT", "ResumeError", "ResumeState", "load_resume_state", "save_resume_state"]

RESUME_FORMAT = "pcle-train-resume"
"""Value of the ``"format"`` key that marks a resume file."""
RESUME_VERSION = 1


class ResumeError(Exception):
    """A resume file is missing, unreadable or does not belong to this run; says which and why."""


@dataclass
class ResumeState:
    """The state of a training run after its last finished epoch.

    Attributes:
        arch: Canonical architecture name.
        run: The settings that define the run (classes, split, hyper-parameters, ...): plain
            JSON-like values compared key by key on resume.
        epoch: Number of finished epochs.
        global_step: Optimizer steps taken so far.
        model: The model's state dict (CPU tensors).
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``scheduler.state_dict()``, or None without a scheduler.
        best: The best epoch so far: ``{"epoch", "frame_acc", "loss", ...}``; empty before.
        history: One dict of metrics per finished epoch.
        batch_size: The per-process batch size in use (after any out-of-memory halving).
        train_time_s: Seconds spent in training steps so far.
        wall_time_s: Wall-clock seconds of the run so far (all invocations).
        images_seen: Training images processed so far, all processes together.
    """

    arch: str
    run: dict[str, Any]
    epoch: int
    global_step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 0
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    images_seen: int = 0


def save_resume_state(path: str | os.PathLike[str], state: ResumeState) -> None:
    """Write ``state`` to ``path`` atomically; a failure leaves any previous file intact.

    Raises:
        CheckpointError: If the file could not be written, e.g. "cannot write resume file
            PATH: the disk is full or not writable" (no temporary file is left behind).
    """
    payload = {"format": RESUME_FORMAT, "format_version": RESUME_VERSION, **asdict(state)}
    write_torch_file(path, payload, "resume file")


def load_resume_state(
    path: str | os.PathLike[str], expected_arch: str | None = None
) -> ResumeState:
    """Read a resume file written by :func:`save_resume_state`.

    Args:
        path: The resume file.
        expected_arch: The architecture this run trains; named in the message when ``path``
            turns out to be a model checkpoint of another one.

    Returns:
        The state.

    Raises:
        ResumeError: If the file is missing, unreadable, corrupt, carries code, is a model
            checkpoint rather than a resume file, or lacks fields.
    """
    path = Path(path)
    if not path.is_file():
        raise ResumeError(f"no resume file at {path}: nothing to resume (start without --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ResumeError(
            f"cannot read resume file {path}: truncated, corrupt or not a resume file "
            f"({first[:160]})"
        ) from None
    if not isinstance(payload, Mapping) or payload.get("format") != RESUME_FORMAT:
        if isinstance(payload, Mapping) and payload.get("format") == "pcle-viewer-checkpoint":
            meta = payload.get("metadata")
            arch = meta.get("arch") if isinstance(meta, Mapping) else None
            asked = (
                f", and this run asks for {expected_arch}"
                if expected_arch is not None and arch != expected_arch
                else ""
            )
            raise ResumeError(
                f"{path} is a model checkpoint (architecture {arch}{asked}), not a resume file: "
                "it holds no optimizer state. Resume from the <checkpoint>.resume.pt file that "
                "training writes next to it"
            )
        raise ResumeError(f"{path} is not a resume file of models.train")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > RESUME_VERSION:
        raise ResumeError(f"{path}: unsupported resume file version {version!r}")
    names = {f.name for f in fields(ResumeState)}
    missing = sorted(n for n in names if n not in payload)
    if missing:
        raise ResumeError(f"{path}: resume file lacks {', '.join(missing)}")
    return ResumeState(**{n: payload[n] for n in names})
