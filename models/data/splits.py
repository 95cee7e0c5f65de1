"""Splits of a data set's recordings into training and validation: by recording, never by
frame, stratified by class and seeded.

Neighbouring frames of a pCLE video are near-duplicates, so splitting the frames of one video
between training and validation leaks; every split here keeps a recording
(:class:`models.data.index.Recording`: one patient or acquisition) on one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.data.index import DatasetError, Recording

__all__ = ["Split", "kfold_splits", "split_train_val"]


@dataclass(frozen=True)
class Split:
    """Recordings for training and for validation; no recording is in both.

    ``val`` is empty when training on everything (``val_fraction=0``).
    """

    train: tuple[Recording, ...]
    val: tuple[Recording, ...]


def _sorted(recordings: Sequence[Recording]) -> tuple[Recording, ...]:
    """By class, then name: the order of every list of recordings given out."""
    return tuple(sorted(recordings, key=lambda r: (r.label, r.name)))


def _by_class(recordings: Sequence[Recording]) -> dict[int, list[Recording]]:
    groups: dict[int, list[Recording]] = {}
    for rec in _sorted(recordings):
        groups.setdefault(rec.label, []).append(rec)
    return groups


def _shuffled(group: list[Recording], seed: int, label: int) -> list[Recording]:
    # One stream per class: adding recordings of one class leaves the other classes' order.
    order = np.random.default_rng([seed, label]).permutation(len(group))
    return [group[i] for i in order]


def split_train_val(
    recordings: Sequence[Recording],
    val_fraction: float = 0.2,
    val_per_class: int | None = None,
    seed: int = 0,
) -> Split:
    """Split recordings into training and validation, by recording, stratified by class.

    Each class's recordings are shuffled with a generator seeded by ``(seed, label)`` and the
    first ``n_val`` go to validation, where ``n_val = val_per_class`` if given, else
    ``max(1, round(val_fraction * n))``, but never all of them. Same inputs, same split.

    Args:
        recordings: The recordings to split (e.g. the readable ones of a :class:`DatasetIndex`).
        val_fraction: Share of each class's recordings held out, ``0 <= f < 1``; 0 trains on
            everything (no validation, so no class needs more than one recording).
        val_per_class: Number of recordings held out per class; overrides ``val_fraction``.
        seed: Seed of the shuffle.

    Returns:
        The split; both parts sorted by class then name.

    Raises:
        DatasetError: If a class has fewer than 2 recordings (a video-level split needs one to
            train on and one to validate on), or ``val_per_class`` leaves a class nothing to
            train on.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_per_class is not None and val_per_class < 1:
        raise DatasetError(f"validation recordings per class must be >= 1, got {val_per_class}")
    if val_per_class is None and val_fraction == 0.0:
        return Split(_sorted(recordings), ())
    train: list[Recording] = []
    val: list[Recording] = []
    for label, group in _by_class(recordings).items():
        n = len(group)
        _need_recordings(group, 2, "a split by video")
        n_val = val_per_class if val_per_class is not None else max(1, round(val_fraction * n))
        if n_val >= n:
            raise DatasetError(
                f"class {group[0].class_name!r} has {n} recordings; holding out {n_val} for "
                "validation leaves none to train on"
            )
        shuffled = _shuffled(group, seed, label)
        val.extend(shuffled[:n_val])
        train.extend(shuffled[n_val:])
    return Split(_sorted(train), _sorted(val))


def kfold_splits(recordings: Sequence[Recording], folds: int, seed: int = 0) -> list[Split]:
    """Stratified K-fold cross-validation by recording.

    Each class's recordings are shuffled (seeded as in :func:`split_train_val`) and dealt to
    the folds in turn, starting where the previous class stopped, so fold sizes differ by at
    most one recording overall. Every recording is validated on in exactly one fold, and every
    fold validates on every class.

    Args:
        recordings: The recordings to split.
        folds: Number of folds ``K >= 2``.
        seed: Seed of the shuffle.

    Returns:
        ``K`` splits; split ``i`` validates on fold ``i`` and trains on the others.

    Raises:
        DatasetError: If ``folds < 2`` or a class has fewer than ``folds`` recordings.
    """
    if folds < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {folds}")
    assignment: list[list[Recording]] = [[] for _ in range(folds)]
    offset = 0
    for label, group in _by_class(recordings).items():
        _need_recordings(group, folds, f"{folds}-fold cross-validation")
        for j, rec in enumerate(_shuffled(group, seed, label)):
            assignment[(offset + j) % folds].append(rec)
        offset += len(group)
    splits = []
    for i in range(folds):
        train = [r for j, fold in enumerate(assignment) if j != i for r in fold]
        splits.append(Split(_sorted(train), _sorted(assignment[i])))
    return splits


def _need_recordings(group: list[Recording], needed: int, purpose: str) -> None:
    if len(group) >= needed:
        return
    folder = group[0].name.split("/", 1)[0]
    names = ", ".join(r.name.split("/", 1)[1] for r in group)
    raise DatasetError(
        f"class {group[0].class_name!r} has only {len(group)} usable recording"
        f"{'s' if len(group) != 1 else ''} ({names}); {purpose} needs at least {needed} "
        f"videos or patients per class. Add recordings to the {folder!r} folder"
        + (", or train on everything with --val-fraction 0" if needed == 2 else "")
    )
