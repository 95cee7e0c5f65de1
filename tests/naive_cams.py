"""The straightforward way: one pass at a time, every copy in a pass evaluated on its own
network call, written from the definitions in DESIGN.md without the engine's batching.

Used to check that the engine's batched passes give exactly the same maps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.mc_models import RowMaskDropout, set_pass


@contextlib.contextmanager
def mc_pass(model: nn.Module, pass_index: int) -> Iterator[None]:
    """DESIGN.md's MC mode: eval() first, then only the dropout modules back to train mode."""
    model.eval()
    for module in model.modules():
        if isinstance(module, RowMaskDropout):
            module.train()
    set_pass(model, pass_index)
    try:
        yield
    finally:
        set_pass(model, None)
        model.eval()


def _run(
    model: nn.Module, layer: str, x: Tensor, replace: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Logits and the layer's output; with ``replace``, the layer's output is swapped for it."""
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _a: tuple, out: Tensor) -> Tensor:
        if replace is not None:
            out = replace
        out = out.detach().requires_grad_(True)
        store["a"] = out
        return out

    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, store["a"]


def naive_probs(model: nn.Module, x: Tensor, passes: int) -> Tensor:
    """(T, K) softmax of the plain input, pass by pass."""
    rows = []
    for t in range(passes):
        with mc_pass(model, t), torch.no_grad():
            rows.append(model(x).softmax(-1)[0])
    return torch.stack(rows)


def naive_gradient_map(
    model: nn.Module,
    layer: str,
    x: Tensor,
    cls: int,
    t: int,
    method: str,
    noise: Tensor | None = None,
) -> Tensor:
    """One pass of Grad-CAM / Grad-CAM++ / SmoothGrad-CAM++ (raw map, (h, w))."""
    with mc_pass(model, t):
        logits, a = _run(model, layer, x)
        (g,) = torch.autograd.grad(logits[0, cls], a)
        a, g = a[0].detach(), g[0]
        if method == "gradcam":
            w = g.mean(dim=(1, 2))
            return torch.relu((w[:, None, None] * a).sum(0))
        if method == "gradcam++":
            g1, g2, g3 = g, g**2, g**3
        else:  # smoothgradcam++: derivatives from each noisy copy, averaged
            grads = []
            for n in range(noise.shape[0]):
                noisy_logits, noisy_a = _run(model, layer, x + noise[n : n + 1])
                grads.append(torch.autograd.grad(noisy_logits[0, cls], noisy_a)[0][0])
            stacked = torch.stack(grads)
            g1, g2, g3 = stacked.mean(0), (stacked**2).mean(0), (stacked**3).mean(0)
        weights = torch.zeros(a.shape[0])
        for k in range(a.shape[0]):
            total = a[k].sum()
            for i in range(a.shape[1]):
                for j in range(a.shape[2]):
                    den = 2 * g2[k, i, j] + total * g3[k, i, j]
                    alpha = g2[k, i, j] / den if den != 0 else 0.0
                    weights[k] += alpha * torch.relu(g1[k, i, j])
        return torch.relu((weights[:, None, None] * a).sum(0))


def naive_reciprocam_map(
    model: nn.Module, layer: str, x: Tensor, cls: int, t: int, kernel: str = "gaussian"
) -> Tensor:
    """One pass of Recipro-CAM as the authors' code builds it, one position per forward."""
    gauss = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])
    with mc_pass(model, t), torch.no_grad():
        _, a = _run(model, layer, x)
        a = a.detach()
        h, w = a.shape[-2:]
        cam = torch.zeros(h, w)
        for i in range(h):
            for j in range(w):
                copy = torch.zeros_like(a)
                if kernel == "1x1":
                    copy[0, :, i, j] = a[0, :, i, j]
                else:
                    for di in (-1, 0, 1):
                        for dj in (-1, 0, 1):
                            y, z = i + di, j + dj
                            if 0 <= y < h and 0 <= z < w:
                                copy[0, :, y, z] = a[0, :, i, j] * gauss[di + 1, dj + 1]
                logits, _ = _run(model, layer, x, replace=copy)
                cam[i, j] = logits.softmax(-1)[0, cls]
        return cam


def naive_scorecam_map(model: nn.Module, layer: str, x: Tensor, cls: int, t: int) -> Tensor:
    """One pass of Score-CAM (TorchCAM 0.5.0's formulation); the masked inputs of the pass are
    one batch, all under the pass's mask."""
    with mc_pass(model, t), torch.no_grad():
        logits, a = _run(model, layer, x)
        a = a.detach()[0]
        base = logits[0, cls]
        lo = a.flatten(1).min(1).values[:, None, None]
        hi = a.flatten(1).max(1).values[:, None, None]
        norm = torch.where(hi > lo, (a - lo) / torch.where(hi > lo, hi - lo, 1), 0)
        masks = F.interpolate(
            norm[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False
        )
        scores = model(x * masks)[:, cls] - base
        weights = scores.softmax(0)
        return torch.relu((weights[:, None, None] * a).sum(0))


def naive_maps(
    model: nn.Module,
    layer: str,
    x: Tensor,
    cls: int,
    passes: int,
    method: str,
    noise: Tensor | None = None,
) -> Tensor:
    """(T, h, w) raw per-pass maps of one frame x (1, C, H, W)."""
    maps = []
    for t in range(passes):
        if method in ("gradcam", "gradcam++", "smoothgradcam++"):
            maps.append(naive_gradient_map(model, layer, x, cls, t, method, noise))
        elif method == "reciprocam":
            maps.append(naive_reciprocam_map(model, layer, x, cls, t))
        else:
            maps.append(naive_scorecam_map(model, layer, x, cls, t))
    return torch.stack(maps)
