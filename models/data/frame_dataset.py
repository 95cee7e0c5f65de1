"""The decoded frames of some recordings as one torch Dataset, ready for batched training.

Augmentation and normalisation run batched on the training device (:mod:`models.data.augment`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from models.data.frame_cache import DecodedRecording
from models.data.index import DatasetError, Recording

__all__ = ["FrameDataset"]


class FrameDataset(Dataset[tuple[torch.Tensor, int]]):
    """The decoded frames of some recordings, as a map-style torch Dataset.

    All frames are held in one uint8 tensor, so a training step fetches a batch with one
    indexing operation (:meth:`batch`) instead of thousands of ``__getitem__`` calls; the
    single-item interface serves ordinary ``DataLoader`` use.

    Args:
        decoded: Decoded recordings (see :meth:`models.data.frame_cache.FrameCache.load`), all at
            the same input size, each with at least one frame.

    Attributes:
        frames: uint8 ``(N, 1, S, S)``: the FOV-cropped, masked, resized grey frames, the same
            pixels :class:`app.preprocess.model_input.FramePreprocessor` gives the viewer
            (quantised to 8 bits).
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
