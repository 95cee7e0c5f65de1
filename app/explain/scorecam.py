"""Score-CAM (Wang et al.), following TorchCAM 0.5.0's formulation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from app.explain.errors import ExplainerError
from app.explain.gradient import weighted_sum
from app.explain.method import (
    CamMethod,
    PassContext,
    PassMaps,
    choose_class,
    gather_class,
    split_rows,
)
from app.explain.statistics import minmax_normalize


class ScoreCAM(CamMethod):
    """Score-CAM: each channel, min-max normalised and upsampled, masks the input; its weight is
    the softmax over channels of the class logit's increase over the unmasked input.

    Per pass t: A_t is the target activation, base_t the class logit of the plain input,
    s_tk the class logit of x * upsample(norm(A_tk)), w_t = softmax_k(s_tk - base_t) and the map
    is relu(sum_k w_tk A_tk). All of it uses pass t's dropout masks. When dropout comes after
    the target layer, A (and so every masked input) is the same for all passes: the masked
    inputs go through the trunk once and only the layers after the first dropout run T times.

    Args:
        batch_size: masked inputs per forward before the repetition for passes (memory bound).
    """

    name = "scorecam"
    needs_grad = False

    def __init__(self, batch_size: int = 32, **options: Any) -> None:
        super().__init__(**options)
        if int(batch_size) != batch_size or batch_size < 1:
            raise ExplainerError(f"scorecam batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)

    def compute(self, ctx: PassContext, x: Tensor, class_idx: Tensor | None) -> PassMaps:
        frames, passes = ctx.frames, ctx.passes
        with ctx.timer.stage("forward"):
            logits, activation = ctx.forward(x)
            logits = split_rows(logits, frames, passes)[:, :, 0]  # (B, T, K)
            probs = logits.softmax(dim=-1)
            chosen = choose_class(probs, class_idx)
            baseline = gather_class(logits, chosen)  # (B, T)
        # (B, P, C, h, w): P = T when the activation differs per pass, else 1.
        activation = activation.reshape(frames, -1, *activation.shape[1:])
        per_pass = activation.shape[1]
        channels = activation.shape[2]
        masks = minmax_normalize(activation)  # per channel, [0, 1]
        chunk = max(1, self.batch_size // (frames * per_pass))
        gains = torch.empty(frames, passes, channels, device=x.device, dtype=logits.dtype)
        with ctx.timer.stage("scoring"):
            for start in range(0, channels, chunk):
                stop = min(start + chunk, channels)
                up = F.interpolate(
                    masks[:, :, start:stop].flatten(0, 2).unsqueeze(1),
                    size=x.shape[-2:],
                    mode="bilinear",
                    align_corners=False,
                )
                up = up.reshape(frames, per_pass, stop - start, 1, *x.shape[-2:])
                masked = (x[:, None, None] * up).flatten(0, 2)
                scored, _ = ctx.forward(masked, expand=per_pass == 1)
                scored = split_rows(scored, frames, passes)  # (B, T, S, K)
                gains[:, :, start:stop] = gather_class(scored, chosen) - baseline.unsqueeze(-1)
        with ctx.timer.stage("maps"):
            weights = gains.softmax(dim=-1)
            cams = weighted_sum(weights, activation.expand(frames, passes, *activation.shape[2:]))
        return PassMaps(cams, probs, chosen)

    def __repr__(self) -> str:
        return f"ScoreCAM(batch_size={self.batch_size})"
