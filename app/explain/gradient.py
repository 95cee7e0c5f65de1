"""Gradient methods: Grad-CAM, Grad-CAM++ and SmoothGrad-CAM++, all T passes in one backward.

The batch is expanded at the target layer (or earlier, where dropout precedes it), so each
pass has its own copy of the activation A; one backward of the sum of the passes' class scores
gives every pass its own gradient, because passes never mix (BatchNorm stays in eval mode).
Scores are the pre-softmax logits of the explained class.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor

from app.explain.errors import ExplainerError
from app.explain.method import (
    CamMethod,
    PassContext,
    PassMaps,
    choose_class,
    gather_class,
    split_rows,
)


def gradcampp_weights(activation: Tensor, grad: Tensor, grad2: Tensor, grad3: Tensor) -> Tensor:
    """Channel weights of Grad-CAM++ (Chattopadhyay et al., eq. 19).

    alpha_kij = g2_kij / (2 g2_kij + sum_ab A_kab * g3_kij), weights_k = sum_ij alpha_kij
    relu(g_kij). The division is guarded only where the denominator is exactly zero (alpha = 0
    there): an additive epsilon would dominate when gradients are small.

    Args:
        activation: (..., C, h, w) target activation A.
        grad: (..., C, h, w) first derivative (or its mean over noise samples).
        grad2: (..., C, h, w) second power of the derivative (or its mean).
        grad3: (..., C, h, w) third power of the derivative (or its mean).

    Returns:
        (..., C) channel weights.
    """
    sum_a = activation.sum(dim=(-2, -1), keepdim=True)
    denom = 2 * grad2 + sum_a * grad3
    nonzero = denom != 0
    alpha = torch.where(nonzero, grad2 / torch.where(nonzero, denom, torch.ones_like(denom)), 0)
    return (alpha * grad.clamp(min=0)).sum(dim=(-2, -1))


def weighted_sum(weights: Tensor, activation: Tensor) -> Tensor:
    """sum_k weights_k A_k: (..., C) and (..., C, h, w) -> (..., h, w)."""
    return (weights[..., None, None] * activation).sum(dim=-3)


class _GradientMethod(CamMethod):
    """Template: forward with a graph from the target on, pick the class, one backward."""

    needs_grad = True

    def input_rows(self, x: Tensor) -> Tensor:
        """(B * M, C, H, W) rows ordered (frame, copy); copy 0 is the plain input."""
        return x

    def scored_copies(self, copies: int) -> slice:
        """Which copies of a pass contribute their class score to the backward."""
        return slice(None)

    @abstractmethod
    def combine(self, activation: Tensor, grad: Tensor) -> Tensor:
        """(B, T, M, C, h, w) activations and gradients -> (B, T, h, w) raw maps."""

    def compute(self, ctx: PassContext, x: Tensor, class_idx: Tensor | None) -> PassMaps:
        with ctx.timer.stage("forward"):
            logits, activation = ctx.forward(self.input_rows(x), grad_at_target=True)
            logits = split_rows(logits, ctx.frames, ctx.passes)  # (B, T, M, K)
            probs = logits[:, :, 0].detach().softmax(dim=-1)
            chosen = choose_class(probs, class_idx)
        with ctx.timer.stage("backward"):
            scores = gather_class(logits[:, :, self.scored_copies(logits.shape[2])], chosen)
            (grad,) = torch.autograd.grad(scores.sum(), activation)
        with ctx.timer.stage("maps"), torch.no_grad():
            cams = self.combine(
                split_rows(activation.detach(), ctx.frames, ctx.passes),
                split_rows(grad, ctx.frames, ctx.passes),
            )
        return PassMaps(cams, probs, chosen)


class GradCAM(_GradientMethod):
    """Grad-CAM (Selvaraju et al.): channel weights are the spatial mean of the gradient."""

    name = "gradcam"

    def combine(self, activation: Tensor, grad: Tensor) -> Tensor:
        return weighted_sum(grad.mean(dim=(-2, -1)), activation)[:, :, 0]


class GradCAMPlusPlus(_GradientMethod):
    """Grad-CAM++ with the eq. 19 denominator (see :func:`gradcampp_weights`)."""

    name = "gradcam++"

    def combine(self, activation: Tensor, grad: Tensor) -> Tensor:
        weights = gradcampp_weights(activation, grad, grad.square(), grad.pow(3))
        return weighted_sum(weights, activation)[:, :, 0]


class SmoothGradCAMPlusPlus(_GradientMethod):
    """SmoothGrad-CAM++ (Omeiza et al.): Grad-CAM++ with derivatives averaged over noisy inputs.

    Each pass evaluates the plain input (copy 0: its activation A and its probabilities) and
    ``samples`` noisy copies x + N(0, std^2) (copies 1..N: their gradients). The noise is drawn
    once per call, before any dropout mask, as ``torch.randn((B, N, C, H, W)) * std`` from the
    global RNG (seeded by the explainer's ``seed``), and is shared by all passes, so the spread
    between passes measures the model, not the noise. alpha uses the means of g^2 and g^3 over
    the samples and the weights use relu of the mean gradient (the paper's first-derivative
    term), with A from the plain input of the same pass.

    Args:
        samples: N, noisy copies per pass.
        std: standard deviation of the noise, in normalised input units.
    """

    name = "smoothgradcam++"

    def __init__(self, samples: int = 4, std: float = 0.3, **options: Any) -> None:
        super().__init__(**options)
        if int(samples) != samples or samples < 1:
            raise ExplainerError(f"smoothgradcam++ needs samples >= 1, got {samples}")
        if not std > 0:
            raise ExplainerError(f"smoothgradcam++ needs std > 0, got {std}")
        self.samples = int(samples)
        self.std = float(std)

    def input_rows(self, x: Tensor) -> Tensor:
        batch, *shape = x.shape
        noise = torch.randn((batch, self.samples, *shape), device=x.device, dtype=x.dtype)
        noisy = x.unsqueeze(1) + noise * self.std
        return torch.cat([x.unsqueeze(1), noisy], dim=1).reshape(-1, *shape)

    def scored_copies(self, copies: int) -> slice:
        return slice(1, copies)

    def combine(self, activation: Tensor, grad: Tensor) -> Tensor:
        noisy = grad[:, :, 1:]
        weights = gradcampp_weights(
            activation[:, :, 0],
            noisy.mean(dim=2),
            noisy.square().mean(dim=2),
            noisy.pow(3).mean(dim=2),
        )
        return weighted_sum(weights, activation[:, :, 0])

    def __repr__(self) -> str:
        return f"SmoothGradCAMPlusPlus(samples={self.samples}, std={self.std})"
