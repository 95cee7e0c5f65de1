"""Shared helpers for the recording and review tests: an Explanation from hand-made maps, a
result chunk damaged inside."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from app.explain import Explanation


def explanation_from(
    maps: torch.Tensor, probs: torch.Tensor, *, mutual_information: float = 0.0
) -> Explanation:
    """A Grad-CAM++ MC explanation with the statistics of ``maps`` (T, h, w) and per-pass
    probabilities ``probs`` (T, K); CV is NaN where the mean map is 0."""
    mean, std = maps.mean(0), maps.std(0, unbiased=False)
    cv = torch.where(mean > 1e-6, std / mean.clamp_min(1e-12), torch.nan)
    mean_probs = probs.mean(0)
    return Explanation(
        maps=maps,
        mean=mean,
        std=std,
        cv=cv,
        probs=probs,
        mean_probs=mean_probs,
        class_idx=int(mean_probs.argmax()),
        entropy=float(-(mean_probs * mean_probs.log()).sum()),
        mutual_information=mutual_information,
        method="gradcam++",
        passes=maps.shape[0],
        mc=True,
        target_layer="layer4",
        timings_ms={"forward": 1.0, "total": 2.0},
    )


def corrupt_chunk(path: Path) -> None:
    """Flip bytes inside the compressed ``mean`` array of a result chunk: the zip's directory
    and the other arrays (``position`` among them) still read, as after a bad sector."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("mean.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the data
    for i in range(start + 8, start + 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
