"""The data set index: which pCLE recordings of which class a data set root holds.

A data set root holds one folder per class; the folder names are the class names (sorted, so
the label order is stable)::

    ROOT/<class>/<video>.mp4|.avi|.mpg|.mpeg|.mkv|.mov   one recording per video file
    ROOT/<class>/<patient>/...                           one recording per sub-folder: all the
                                                         videos and images inside it, in name
                                                         order (e.g. exported frames of a patient)
    ROOT/<class>/<image>.png|.tif|.tiff|.jpg|.jpeg|.bmp  one recording per loose image

A *recording* is one patient or acquisition: the unit a split keeps together
(:mod:`models.data.splits`). Neighbouring frames of a pCLE video are near-duplicates, so
splitting frames of one video between training and validation leaks.

Loose images directly in a class folder are each their own recording, because nothing says
which of them belong to the same patient. Put a patient's images in a sub-folder so that they
are kept together (a leak-free split needs that). Hidden files and folders (``.name``) and
files of other types (e.g. the phantom's ``.masks.npz``) are ignored.

Nothing is decoded here: :mod:`models.data.frame_cache` decodes the recordings and
:class:`models.data.frame_dataset.FrameDataset` serves their frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DatasetError",
    "DatasetIndex",
    "Recording",
    "discover",
    "is_image",
    "is_video",
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
