"""The result of one explanation call."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import Tensor

from app.explain.statistics import upsample_map


@dataclass(frozen=True)
class Explanation:
    """T attribution maps of one frame (or a batch) and what the viewer shows from them.

    For a single frame (input batch of 1) the tensors have the shapes below; for a batch of B
    frames every tensor gets a leading B, ``class_idx`` is a (B,) tensor and ``entropy`` /
    ``mutual_information`` are (B,) tensors. Tensors stay on the engine's device until the
    caller asks for host copies (:meth:`cpu`, :meth:`to_numpy`).

    Attributes:
        maps: (T, h, w) per-pass maps at the target layer's resolution, ReLU'd and min-max
            normalised to [0, 1]. T = 1 in original mode.
        mean: (h, w) enhanced attribution map, the mean over passes.
        std: (h, w) population standard deviation over passes.
        cv: (h, w) risk map, std / mean; NaN where the mean is ~0 (undefined), never inf.
        probs: (T, K) per-pass softmax.
        mean_probs: (K,) MC-averaged softmax.
        class_idx: the class explained (argmax of ``mean_probs`` unless the caller chose one).
        entropy: predictive entropy of ``mean_probs`` in nats.
        mutual_information: entropy minus the mean per-pass entropy (epistemic part), nats.
        timings_ms: wall time per stage of this call, in milliseconds ("total" included).
        method, passes, mc, target_layer: how the maps were made.
        backend: what ran the deterministic prefix ("torch", "onnxruntime", "openvino").
    """

    maps: Tensor
    mean: Tensor
    std: Tensor
    cv: Tensor
    probs: Tensor
    mean_probs: Tensor
    class_idx: int | Tensor
    entropy: float | Tensor
    mutual_information: float | Tensor
    method: str
    passes: int
    mc: bool
    target_layer: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    backend: str = "torch"

    def _tensor_fields(self) -> dict[str, Tensor]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }

    def cpu(self) -> Explanation:
        """A copy whose tensors live in host memory."""
        return replace(self, **{k: v.cpu() for k, v in self._tensor_fields().items()})

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Every tensor field (and the scalars) as numpy arrays, e.g. for ``np.savez``."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self._tensor_fields().items()}
        for name in ("class_idx", "entropy", "mutual_information"):
            arrays.setdefault(name, np.asarray(getattr(self, name)))
        return arrays

    def upsampled(self, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The enhanced map and the risk map resized (bilinear) to ``size`` = (H, W) for display.

        Undefined CV stays NaN (see :func:`app.explain.statistics.upsample_map`).
        """
        return upsample_map(self.mean, size), upsample_map(self.cv, size)

    @property
    def batched(self) -> bool:
        """True when this result holds a batch of frames (leading B axis)."""
        return self.maps.ndim == 4

    def __post_init__(self) -> None:
        if not isinstance(self.timings_ms, dict):
            raise TypeError("timings_ms must be a dict")
        if self.maps.ndim not in (3, 4):
            raise ValueError(
                f"maps must be (T, h, w) or (B, T, h, w), got {tuple(self.maps.shape)}"
            )
        if torch.is_tensor(self.class_idx) and self.class_idx.ndim != 1:
            raise ValueError("a batched class_idx must be a (B,) tensor")
