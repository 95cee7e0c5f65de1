"""Where the engine's passes start: the cut point, the dropout modules it samples, and the
error for a model whose structure does not allow the requested explanation.

Shared by the pass batcher (:mod:`app.explain.passes`) and the model split
(:mod:`app.explain.split`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from app.explain.errors import ExplainerError

ROOT = ""
"""The name of the model itself in ``named_modules()``."""

_ALPHA_DROPOUT = (nn.AlphaDropout, nn.FeatureAlphaDropout)


class PassPlanError(ExplainerError):
    """The model's structure does not allow the requested explanation."""


class SkipConnectionError(PassPlanError):
    """A skip connection spans the cut: something after it reads a tensor from before it."""


def find_dropouts(model: nn.Module) -> dict[str, nn.Module]:
    """The model's multiplicative dropout modules with p > 0, by qualified name.

    Raises:
        PassPlanError: for alpha dropout, whose output is not a mask times the input and so
            cannot share one mask across the copies of a pass.
    """
    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, _ALPHA_DROPOUT):
            raise PassPlanError(
                f"{name} is {type(module).__name__}, which is not a multiplicative mask; "
                "MC Dropout explanations support nn.Dropout, Dropout1d, Dropout2d, Dropout3d"
            )
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            found[name] = module
    return found


@dataclass(frozen=True)
class CutPoint:
    """Where rows are repeated for the passes: the input or output of a named module."""

    module: str
    position: Literal["input", "output"]

    def describe(self) -> str:
        return f"{self.position} of {self.module or 'the model'}"
