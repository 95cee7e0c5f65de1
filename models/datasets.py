"""Training data of pCLE recordings: folder layout, video-level splits and the frame Dataset.

A data set root holds one folder per class; the folder names are the class names (sorted, so
the label order is stable)::

    ROOT/<class>/<video>.mp4|.avi|.mpg|.mpeg|.mkv|.mov   one recording per video file
    ROOT/<class>/<patient>/...                           one recording per sub-folder: all the
                                                         videos and images inside it, in name
                                                         order (e.g. exported frames of a patient)
    ROOT/<class>/<image>.png|.tif|.tiff|.jpg|.jpeg|.bmp  one recording per loose image

A *recording* is one patient or acquisition: the unit a split keeps together. Neighbouring
frames of a pCLE video are near-duplicates, so splitting frames of one video between training
and validation leaks; every split here is by recording, stratified by class and seeded.

Loose images directly in a class folder are each their own recording, because nothing says
which of them belong to the same patient. Put a patient's images in a sub-folder so that they
are kept together (a leak-free split needs that). Hidden files and folders (``.name``) and
files of other types (e.g. the phantom's ``.masks.npz``) are ignored.

:class:`FrameDataset` serves the decoded frames (see :mod:`models.frame_cache`) as compact
uint8 tensors; augmentation and normalisation run batched on the training device
(:mod:`models.augment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from models.frame_cache import DecodedRecording

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DatasetError",
    "DatasetIndex",
    "FrameDataset",
    "Recording",
    "Split",
    "discover",
    "kfold_splits",
    "split_train_val",
]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mpg", ".mpeg", ".mkv", ".mov")
"""File name endings (case-insensitive) read as videos."""
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
"""File name endings (case-insensitive) read as images."""


class DatasetError(Exception):
    """The data set cannot be used as asked; the message names the folder or file and says why."""


def is_video(path: Path) -> bool:
    """Whether ``path`` has a video file ending (:data:`VIDEO_EXTENSIONS`)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_image(path: Path) -> bool:
    """Whether ``path`` has an image file ending (:data:`IMAGE_EXTENSIONS`)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _is_media(path: Path) -> bool:
    return path.is_file() and (is_video(path) or is_image(path))


def _visible(entries: Sequence[Path]) -> list[Path]:
    return sorted((p for p in entries if not p.name.startswith(".")), key=lambda p: p.name)


@dataclass(frozen=True)
class Recording:
    """One patient or acquisition: the frames of its files, and its class.

    Attributes:
        name: ``"<class>/<file or folder name>"``, relative to the data set root; unique
            within a data set and free of the root's location, so it can go into summaries.
        class_name: The class folder's name.
        label: Index of ``class_name`` in the data set's sorted class names.
        paths: The video and image files, in the order their frames are read (one file for a
            video or a loose image; the sorted media files of a patient sub-folder).
    """

    name: str
    class_name: str
    label: int
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class DatasetIndex:
    """What :func:`discover` found under a data set root.

    Attributes:
        root: The data set root, as given.
        class_names: Sorted class folder names; a label is an index into this.
        recordings: Every recording, sorted by class then name.
    """

    root: Path
    class_names: tuple[str, ...]
    recordings: tuple[Recording, ...]

    def counts(self) -> dict[str, int]:
        """Number of recordings per class name."""
        return {c: sum(r.class_name == c for r in self.recordings) for c in self.class_names}


def discover(root: str | Path) -> DatasetIndex:
    """List the classes and recordings of a data set root (see the module docstring).

    Nothing is decoded here; unreadable files are found (and skipped) when frames are read.

    Args:
        root: Folder holding one sub-folder per class.

    Returns:
        The classes and recordings found.

    Raises:
        DatasetError: If ``root`` is not a folder, holds fewer than two class folders, or a
            class folder holds no video or image (the message names the folder).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"data set root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data set root {root} is not a folder")
    class_dirs = [p for p in _visible(list(root.iterdir())) if p.is_dir()]
    if len(class_dirs) < 2:
        loose = [p.name for p in _visible(list(root.iterdir())) if _is_media(p)]
        hint = (
            f"; it holds {len(loose)} video/image files directly (e.g. {loose[0]}): put each "
            "class's files in a folder named after the class"
            if loose
            else ""
        )
        raise DatasetError(
            f"data set root {root} must hold one folder per class (at least 2), found "
            f"{len(class_dirs)}{': ' + class_dirs[0].name if class_dirs else ''}{hint}"
        )
    class_names = tuple(p.name for p in class_dirs)
    recordings: list[Recording] = []
    for label, class_dir in enumerate(class_dirs):
        found = _class_recordings(class_dir, label)
        if not found:
            raise DatasetError(
                f"class folder {class_dir} holds no videos or images "
                f"(looked for {' '.join(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)}, also in "
                "per-patient sub-folders); add data or remove the folder"
            )
        recordings.extend(found)
    return DatasetIndex(root, class_names, tuple(recordings))


def _class_recordings(class_dir: Path, label: int) -> list[Recording]:
    out: list[Recording] = []
    for entry in _visible(list(class_dir.iterdir())):
        if entry.is_dir():
            files = sorted(
                (p for p in entry.rglob("*") if _is_media(p) and not _hidden_below(p, entry)),
                key=lambda p: p.relative_to(entry).as_posix(),
            )
        elif _is_media(entry):
            files = [entry]
        else:
            continue
        if files:
            name = f"{class_dir.name}/{entry.name}"
            out.append(Recording(name, class_dir.name, label, tuple(files)))
    return out


def _hidden_below(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


# --------------------------------------------------------------------------------- splits


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


# ------------------------------------------------------------------------------- Dataset


class FrameDataset(Dataset[tuple[torch.Tensor, int]]):
    """The decoded frames of some recordings, as a map-style torch Dataset.

    All frames are held in one uint8 tensor, so a training step fetches a batch with one
    indexing operation (:meth:`batch`) instead of thousands of ``__getitem__`` calls; the
    single-item interface serves ordinary ``DataLoader`` use.

    Args:
        decoded: Decoded recordings (see :meth:`models.frame_cache.FrameCache.load`), all at
            the same input size, each with at least one frame.

    Attributes:
        frames: uint8 ``(N, 1, S, S)``: the FOV-cropped, masked, resized grey frames, the same
            pixels :class:`models.preprocess.FramePreprocessor` gives the viewer (quantised to
            8 bits).
        labels: int64 ``(N,)`` class labels.
        recording_index: int64 ``(N,)``: which entry of ``recordings`` each frame comes from.
        recordings: The recordings, in the order given.
    """

    def __init__(self, decoded: Sequence[DecodedRecording]) -> None:
        if not decoded:
            raise DatasetError("a FrameDataset needs at least one decoded recording")
        sizes = {d.frames.shape[1:] for d in decoded}
        if len(sizes) != 1:
            raise DatasetError(f"decoded recordings differ in frame size: {sorted(sizes)}")
        self.recordings: tuple[Recording, ...] = tuple(d.recording for d in decoded)
        counts = [len(d.frames) for d in decoded]
        self.frames = torch.from_numpy(np.concatenate([d.frames for d in decoded]))[:, None]
        self.labels = torch.tensor(
            np.repeat([d.recording.label for d in decoded], counts), dtype=torch.int64
        )
        self.recording_index = torch.from_numpy(np.repeat(np.arange(len(decoded)), counts))

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Frame ``index`` as a uint8 ``(1, S, S)`` tensor, and its label."""
        return self.frames[index], int(self.labels[index])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(B, 1, S, S)`` uint8 and labels ``(B,)`` int64 for a 1-D index tensor."""
        return self.frames[indices], self.labels[indices]

    @property
    def input_size(self) -> int:
        """Side ``S`` of the square frames."""
        return int(self.frames.shape[-1])

    def grey_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of all pixels (surround included), in ``[0, 1]`` units.

        Computed exactly from a 256-bin histogram, a chunk of frames at a time.
        """
        hist = torch.zeros(256, dtype=torch.float64)
        for chunk in self.frames.split(1024):
            hist += torch.bincount(chunk.reshape(-1), minlength=256).double()
        values = torch.arange(256, dtype=torch.float64) / 255.0
        total = hist.sum()
        mean = float((hist * values).sum() / total)
        var = float((hist * (values - mean) ** 2).sum() / total)
        return mean, max(var, 0.0) ** 0.5
