"""What the inference worker does with each frame: model, method, passes, class, device."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.calibration.window import DEFAULT_WINDOW_S, MAX_WINDOW_S
from app.explain import METHODS
from app.explain.runtimes import BACKENDS
from app.render.captions import passes_label

__all__ = ["MAX_PASSES", "PipelineSettings", "SettingsError", "canonical_method"]

MAX_PASSES = 64
"""The most MC Dropout passes the viewer offers."""

_METHOD_ALIASES = {"gradcampp": "gradcam++", "smoothgradcampp": "smoothgradcam++"}


class SettingsError(ValueError):
    """Settings that cannot work (unknown method, passes out of range, unusable checkpoint or
    device, unknown class); the message says what to change."""


def canonical_method(method: str) -> str:
    """The :data:`app.explain.METHODS` key for ``method`` ("Grad-CAM++" -> "gradcam++").

    Raises:
        SettingsError: not a known method.
    """
    key = str(method).lower().replace(" ", "").replace("-", "").replace("_", "")
    key = _METHOD_ALIASES.get(key, key)
    if key not in METHODS:
        raise SettingsError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    return key


@dataclass(frozen=True)
class PipelineSettings:
    """One complete set of inference settings; immutable, validated on construction.

    Change settings with :meth:`replace` (or ``Pipeline.update_settings``), which validates
    again. What cannot be checked without loading the checkpoint (that it is a valid file, that
    ``target_class`` names one of its classes, that the device exists) is checked when the
    worker builds the model.

    Attributes:
        checkpoint: a checkpoint file written by :func:`models.checkpoint.save_checkpoint`.
        method: an attribution method (a key of :data:`app.explain.METHODS`).
        passes: T, the MC Dropout passes, 1 to :data:`MAX_PASSES`.
        mc: Dropout on (the proposed method); False gives the original (one deterministic pass).
        target_class: the class to explain, by name or index; None explains the predicted one.
        device: "auto", "cpu", "cuda" or "cuda:N".
        backend: where the deterministic prefix runs (:data:`app.explain.runtimes.BACKENDS`:
            "torch", "onnxruntime", "openvino", or "auto", the fastest exact one installed).
        seed: seeds every frame's dropout masks (reproducible maps); None draws fresh masks.
        window_s: seconds of the source's clock the video-level verdict pools
            (:mod:`app.calibration.window`), > 0 and at most 60.
    """

    checkpoint: Path
    method: str = "gradcam++"
    passes: int = 10
    mc: bool = True
    target_class: int | str | None = None
    device: str = "auto"
    backend: str = "torch"
    seed: int | None = None
    window_s: float = DEFAULT_WINDOW_S

    def __post_init__(self) -> None:
        if not isinstance(self.checkpoint, (str, Path)) or not str(self.checkpoint):
            raise SettingsError(f"checkpoint must be a file path, got {self.checkpoint!r}")
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "method", canonical_method(self.method))
        passes = self.passes
        if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= MAX_PASSES:
            raise SettingsError(f"passes must be an integer from 1 to {MAX_PASSES}, got {passes!r}")
        object.__setattr__(self, "mc", bool(self.mc))
        target = self.target_class
        if isinstance(target, bool) or not (target is None or isinstance(target, (int, str))):
            raise SettingsError(f"target_class must be a class name, an index or None: {target!r}")
        if isinstance(target, int) and target < 0:
            raise SettingsError(f"target_class must be >= 0, got {target}")
        device = str(self.device).strip().lower()
        if device != "auto":
            try:
                torch.device(device)
            except (RuntimeError, ValueError):
                raise SettingsError(
                    f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N"
                ) from None
        object.__setattr__(self, "device", device)
        backend = str(self.backend).strip().lower()
        if backend not in BACKENDS:
            raise SettingsError(f"unknown backend {self.backend!r}; use {', '.join(BACKENDS)}")
        object.__setattr__(self, "backend", backend)
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SettingsError(f"seed must be an integer or None, got {self.seed!r}")
        window = self.window_s
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, float))
            or not 0 < window <= MAX_WINDOW_S
        ):
            raise SettingsError(
                f"the verdict window must be more than 0 and at most {MAX_WINDOW_S:g} s, "
                f"got {window!r}"
            )
        object.__setattr__(self, "window_s", float(window))

    def replace(self, **changes: Any) -> PipelineSettings:
        """A copy with ``changes`` applied and validated.

        Raises:
            SettingsError: an unknown setting name or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise SettingsError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """A short label, e.g. ``gradcam++ T=10 (predicted class) on auto``."""
        what = "predicted class" if self.target_class is None else f"class {self.target_class}"
        passes = passes_label(self.passes, self.mc, compact=True)
        backend = "" if self.backend == "torch" else f", {self.backend}"
        return f"{self.method} {passes} ({what}) on {self.device}{backend}"
