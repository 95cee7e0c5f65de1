"""The network side: architectures with Dropout heads and the checkpoint format, with the
training data (:mod:`models.data`), training (:mod:`models.training`) and the shipped demo
(:mod:`models.demo`) in their own modules.

Names are imported lazily (PEP 562) so that ``import models`` stays cheap: torch and
torchvision are only imported when one of the names below is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ARCHITECTURES": "models.architectures",
    "ArchitectureSpec": "models.architectures",
    "build_model": "models.architectures",
    "default_target_layer": "models.architectures",
    "resolve_arch": "models.architectures",
    "CheckpointError": "models.checkpoint",
    "CheckpointMetadata": "models.checkpoint",
    "LoadedCheckpoint": "models.checkpoint",
    "checkpoint_sha256": "models.checkpoint",
    "load_checkpoint": "models.checkpoint",
    "read_metadata": "models.checkpoint",
    "save_checkpoint": "models.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
