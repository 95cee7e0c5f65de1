"""What a training run is asked to do: its settings, the optimiser recipes and its file names.

:class:`TrainConfig` holds everything a run needs (the command line fills it,
:mod:`models.training.cli`); :data:`RECIPES` are the paper's optimiser and learning-rate
schedules per architecture (Roddan et al.): AdamW (lr 1e-3, weight decay 0.01) for ResNet-18
and MobileNetV2, SGD (lr 0.1, momentum 0.9, weight decay 1e-4, the torchvision ImageNet value;
the recipe leaves it open) with the rate divided by 10 every 30 epochs for ResNet-50.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from models.architectures import resolve_arch
from models.data.augment import AugmentConfig
from models.training.distributed import DistributedContext

__all__ = [
    "DEFAULT_INTENDED_USE",
    "RECIPES",
    "Recipe",
    "TrainConfig",
    "TrainingError",
    "TrainingOutputError",
    "last_checkpoint_path",
    "resume_file_path",
]

DEFAULT_INTENDED_USE = "research use only, not for clinical use"


class TrainingError(Exception):
    """Training cannot go on; the message says why and what is left on disk."""


class TrainingOutputError(TrainingError):
    """An output of training (checkpoint, resume file, report) cannot be written: a full disk,
    a read-only folder; the message names the file and what is left on disk."""


@dataclass(frozen=True)
class Recipe:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: ``"adamw"`` or ``"sgd"`` (SGD with momentum).
        lr: Initial learning rate.
        weight_decay: Weight decay (decoupled for AdamW).
        momentum: SGD momentum (unused by AdamW).
        lr_step: Multiply the rate by ``lr_gamma`` every ``lr_step`` epochs; 0: constant rate.
        lr_gamma: The factor of each step.
    """

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float = 0.9
    lr_step: int = 0
    lr_gamma: float = 0.1


RECIPES: dict[str, Recipe] = {
    "resnet18": Recipe("adamw", 1e-3, 0.01),
    "mobilenet_v2": Recipe("adamw", 1e-3, 0.01),
    "resnet50": Recipe("sgd", 0.1, 1e-4, momentum=0.9, lr_step=30, lr_gamma=0.1),
}
"""The default recipe of each architecture (Roddan et al.; see the module docstring)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the command line fills it (see ``--help``).

    ``None`` in a recipe field (``optimizer`` ... ``lr_gamma``) means the architecture's
    default from :data:`RECIPES`. ``batch_size`` is the total over all processes; on CUDA it
    is halved until a training step fits in memory. ``augment=None`` switches augmentation
    off. ``weights_digest`` (a testing aid) names a folder where every process writes a hash
    of its final weights.
    """

    data: Path
    out: Path
    arch: str = "resnet18"
    epochs: int = 30
    input_size: int = 224
    batch_size: int = 256
    every_k: int = 1
    dedup_threshold: float = 0.005
    val_fraction: float = 0.2
    val_videos: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    max_steps: int | None = None
    resume: Path | None = None
    dropout: float = 0.2
    trunk_dropout: float = 0.0
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    lr_step: int | None = None
    lr_gamma: float | None = None
    normalization: str = "dataset"
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    intended_use: str = DEFAULT_INTENDED_USE
    cache_dir: Path | None = None
    progress: bool = True
    weights_digest: Path | None = None

    def recipe(self) -> Recipe:
        """The architecture's recipe with this config's overrides applied."""
        base = RECIPES[resolve_arch(self.arch)]
        overrides = {
            name: getattr(self, name)
            for name in ("optimizer", "lr", "weight_decay", "momentum", "lr_step", "lr_gamma")
            if getattr(self, name) is not None
        }
        return replace(base, **overrides)

    def shows_progress(self, ctx: DistributedContext) -> bool:
        """Whether this process draws progress bars: asked for, rank 0, and on a terminal."""
        return self.progress and ctx.is_main and sys.stderr.isatty()


def last_checkpoint_path(out: str | os.PathLike[str]) -> Path:
    """``model.pt`` -> ``model.last.pt``: the checkpoint of the last finished epoch."""
    return Path(out).with_suffix(".last.pt")


def resume_file_path(out: str | os.PathLike[str]) -> Path:
    """``model.pt`` -> ``model.resume.pt``: the resume file of a run."""
    return Path(out).with_suffix(".resume.pt")
