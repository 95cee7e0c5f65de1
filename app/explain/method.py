"""What every attribution method shares: the per-call context and the template it fills in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from app.explain.cut import CutPoint
from app.explain.errors import ExplainerError
from app.explain.passes import PassBatcher
from app.explain.split import PrefixSplit
from app.explain.timing import StageTimer


@dataclass
class PassContext:
    """What a method needs for one call: the batched forward, the layout and the stage timer.

    Attributes:
        batcher: runs the model on rows laid out (frame, pass, copy).
        cut: where rows are repeated for the passes, for this input shape.
        frames: B, frames in this call.
        passes: T, passes per frame.
        timer: accumulates per-stage wall time.
        split: where the deterministic prefix runs off torch, or None (all in torch).
    """

    batcher: PassBatcher
    cut: CutPoint
    frames: int
    passes: int
    timer: StageTimer
    split: PrefixSplit | None = None

    def forward(
        self,
        rows: Tensor,
        *,
        expand: bool = True,
        grad_at_target: bool = False,
        transform_target: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """See :meth:`app.explain.passes.PassBatcher.forward`."""
        return self.batcher.forward(
            rows,
            frames=self.frames,
            cut=self.cut,
            expand=expand,
            grad_at_target=grad_at_target,
            transform_target=transform_target,
            split=self.split,
        )


@dataclass
class PassMaps:
    """A method's raw output for B frames and T passes.

    Attributes:
        cams: (B, T, h, w) raw maps at the target layer's resolution (not yet normalised).
        probs: (B, T, K) per-pass softmax of the plain (unperturbed) input.
        class_idx: (B,) the class explained for each frame.
    """

    cams: Tensor
    probs: Tensor
    class_idx: Tensor


def choose_class(probs: Tensor, requested: Tensor | None) -> Tensor:
    """The class to explain per frame: the caller's, or the argmax of the MC-mean softmax.

    Args:
        probs: (B, T, K) per-pass softmax.
        requested: (B,) class indices, or None.

    Returns:
        (B,) long tensor on ``probs.device``.
    """
    num_classes = probs.shape[-1]
    if requested is None:
        return probs.mean(dim=1).argmax(dim=-1)
    requested = requested.to(probs.device)
    bad = (requested < 0) | (requested >= num_classes)
    if bool(bad.any()):
        raise ExplainerError(
            f"class_idx {requested.tolist()} out of range: the model has {num_classes} classes"
        )
    return requested


def gather_class(values: Tensor, class_idx: Tensor) -> Tensor:
    """``values[b, ..., class_idx[b]]`` for (B, ..., K) values: the explained class's entry."""
    index = class_idx.view(-1, *([1] * (values.ndim - 1))).expand(*values.shape[:-1], 1)
    return values.gather(-1, index).squeeze(-1)


class CamMethod(ABC):
    """An attribution method run as T batched passes.

    Subclasses implement :meth:`compute`, which turns B frames into T raw maps each, using
    ``ctx.forward`` for every model evaluation so that all work inside pass t shares pass t's
    dropout masks and nothing upstream of the first dropout runs more than once.
    """

    name: ClassVar[str]
    needs_grad: ClassVar[bool]

    def __init__(self, **options: Any) -> None:
        if options:
            raise ExplainerError(f"{self.name} takes no option(s) {sorted(options)}")

    @abstractmethod
    def compute(self, ctx: PassContext, x: Tensor, class_idx: Tensor | None) -> PassMaps:
        """Raw per-pass maps for a batch.

        Args:
            ctx: the call's context.
            x: (B, C, H, W) normalised input on the engine's device.
            class_idx: (B,) requested classes, or None for the MC-mean argmax.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def split_rows(tensor: Tensor, frames: int, passes: int) -> Tensor:
    """(B * T * M, ...) rows -> (B, T, M, ...)."""
    return tensor.reshape(frames, passes, -1, *tensor.shape[1:])
