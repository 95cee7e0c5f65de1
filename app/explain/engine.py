"""The explanation engine: one call turns frames into T MC Dropout attribution maps and their
statistics (the enhanced map and the risk map)."""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from app.explain.cut import ROOT, CutPoint, PassPlanError, find_dropouts
from app.explain.errors import ExplainerError
from app.explain.gradient import GradCAM, GradCAMPlusPlus, SmoothGradCAMPlusPlus
from app.explain.method import CamMethod, PassContext
from app.explain.passes import PassBatcher
from app.explain.reciprocam import ReciproCAM
from app.explain.result import Explanation
from app.explain.runtimes import attach_runtime, check_backend
from app.explain.scorecam import ScoreCAM
from app.explain.split import PrefixSplit, split_for_passes
from app.explain.statistics import normalize_maps, pass_statistics, predictive_uncertainty
from app.explain.timing import StageTimer

METHODS: dict[str, type[CamMethod]] = {
    cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, SmoothGradCAMPlusPlus, ScoreCAM, ReciproCAM)
}
"""Attribution methods by the name the engine, the CLI and the UI use."""


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ExplainerError("device 'cuda' was requested but no CUDA GPU is available")
    return resolved


def default_target_layer(model: nn.Module) -> str:
    """The layer explained when none is named.

    Known architectures get their usual layer (ResNet: ``layer4``; MobileNetV2: ``features.18``,
    its last convolutional block; :func:`models.architectures.known_target_layer`); any other
    model gets its last ``nn.Conv2d`` in definition order.
    """
    from models.architectures import known_target_layer  # torchvision is slow to import

    known = known_target_layer(model)
    if known is not None:
        return known
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ExplainerError("the model has no Conv2d layer; name a target_layer explicitly")
    return convs[-1]


def _is_whole_number(value: Any) -> bool:
    """An int, or a float with an integral value; not a bool, None, NaN or a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and int(value) == value


@contextlib.contextmanager
def preserved_modes(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode for the block and restore each module's own flag after,
    also when the block raises.

    A model already in eval mode (the viewer's) is left alone: setting an attribute of every
    ``nn.Module`` costs milliseconds per frame (4.5 ms for MobileNetV2 on this CPU); otherwise
    only the modules that were in training mode are set back.
    """
    training = [module for module in model.modules() if module.training]
    try:
        if training:
            model.eval()
        yield
    finally:
        for module in training:
            module.training = True


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run the block on a forked global RNG seeded with ``seed`` (no-op when None)."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Explainer:
    """MC Dropout attribution maps (Roddan et al.) for one frame or a batch.

    ``Explainer(model, "gradcam++", passes=10)(x)`` runs T = 10 passes with Dropout on, as
    one batch that starts where randomness starts (see :mod:`app.explain.passes`), and returns
    the per-pass maps with their mean (enhanced map) and coefficient of variation (risk map).
    ``mc=False`` is the paper's "original": Dropout off, one pass.

    The caller's model is left exactly as it was: every module's train/eval flag is restored and
    every hook removed after each call, also when the call raises. When the model's parameters
    are not on ``device``, the explainer works on its own copy moved there. One explainer
    serves one thread at a time.

    Args:
        model: a CNN classifier returning (N, K) class scores; for ``mc=True`` it must contain
            at least one multiplicative dropout module (nn.Dropout, Dropout1d/2d/3d).
        method: one of :data:`METHODS`: "gradcam", "gradcam++", "smoothgradcam++",
            "scorecam", "reciprocam".
        passes: T, the number of MC passes (ignored, i.e. 1, when ``mc=False``).
        mc: Dropout on (the proposed method) or off (the original).
        target_layer: qualified module name whose output is explained; None picks the
            architecture's default (:func:`default_target_layer`).
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:1", or a torch.device.
        seed: when set, each call draws its dropout masks (and SmoothGrad noise) from a global
            RNG forked and seeded with it, so calls are reproducible and the caller's RNG is
            untouched; None draws from the global RNG.
        cv_min_mean: the risk map is undefined (NaN) where the mean map is at or below this
            (maps are in [0, 1]).
        backend: where the deterministic prefix runs (everything before the pass cut and the
            target layer's output; the rest and every gradient stay in torch): "torch",
            "onnxruntime", "openvino" (CPU, fp32, checked against torch on the first frame
            of each input shape; :mod:`app.explain.runtimes`), "openvino-bf16" (reduced
            precision: approximate maps), or "auto": the fastest installed exact runtime that
            passes the check, else torch. The runtime copies the weights on that first frame:
            make a new explainer after changing them.
        cache_dir: where converted prefixes are kept between runs (e.g.
            :func:`app.explain.runtimes.default_cache_dir`); None converts on every start.
        **method_options: passed to the method, e.g. ``samples``/``std`` (smoothgradcam++),
            ``batch_size`` (scorecam), ``kernel`` ("gaussian" or "1x1", reciprocam).

    Raises:
        ExplainerError: unknown method or target layer (with close names), passes < 1,
            ``mc=True`` on a model without dropout, unsupported method options, an unknown
            or uninstalled backend, or a runtime on a GPU.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str = "gradcam++",
        passes: int = 10,
        mc: bool = True,
        target_layer: str | None = None,
        device: str | torch.device = "auto",
        *,
        seed: int | None = None,
        cv_min_mean: float = 1e-3,
        backend: str = "torch",
        cache_dir: str | Path | None = None,
        **method_options: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ExplainerError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        key = str(method).lower().replace(" ", "").replace("-", "").replace("_", "")
        aliases = {"gradcampp": "gradcam++", "smoothgradcampp": "smoothgradcam++"}
        key = aliases.get(key, key)
        if key not in METHODS:
            close = difflib.get_close_matches(str(method).lower(), list(METHODS), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ExplainerError(
                f"unknown method {method!r}{hint} (available: {', '.join(METHODS)})"
            )
        if not _is_whole_number(passes) or passes < 1:
            raise ExplainerError(f"passes must be an integer >= 1, got {passes!r}")

        self.device = resolve_device(device)
        check_backend(backend, self.device)
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.backend_note = "the prefix runs in torch"
        """What the last new input shape's prefix runs on, and why (for logs and the UI)."""
        self._splits: dict[tuple[tuple[int, ...], bool], PrefixSplit | None] = {}
        self.model = self._on_device(model)
        self.method = METHODS[key](**method_options)
        self.mc = bool(mc)
        self.passes = int(passes) if self.mc else 1
        self.seed = seed
        self.cv_min_mean = float(cv_min_mean)

        names = dict(self.model.named_modules())
        self.target_layer = (
            default_target_layer(self.model) if target_layer is None else target_layer
        )
        if self.target_layer not in names or self.target_layer == "":
            close = difflib.get_close_matches(self.target_layer, [n for n in names if n], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ExplainerError(f"the model has no layer named {self.target_layer!r}{hint}")

        dropouts = find_dropouts(self.model) if self.mc else {}
        if self.mc and not dropouts:
            raise ExplainerError(
                "mc=True needs Dropout in the model and this model has none; use mc=False for "
                "the original (deterministic) explanation, or a model trained with Dropout"
            )
        self.in_channels = next(
            (m.in_channels for m in self.model.modules() if isinstance(m, nn.Conv2d)), None
        )
        self._batcher = PassBatcher(self.model, self.target_layer, dropouts, self.passes)

    def _prefix_split(self, cut: CutPoint, x: Tensor) -> PrefixSplit | None:
        """The split whose prefix runs on the backend, for x's shape (None: all in torch).

        Built on the first frame of each shape: a model torch.fx cannot split, a float64 model
        or no exact runtime falls back to torch under ``auto`` and raises for a named runtime.
        """
        key = (tuple(x.shape[1:]), self.method.needs_grad)
        if self.backend == "torch":
            return None
        if key in self._splits:
            return self._splits[key]
        split = None
        try:
            if cut.module == ROOT and self._batcher.passes > 1 and self._batcher.dropouts:
                raise PassPlanError("every layer differs per pass: there is no prefix to move")
            if x.dtype != torch.float32:
                raise PassPlanError(f"the runtimes run float32 models, this one is {x.dtype}")
            split = split_for_passes(self.model, cut, self.target_layer)
            split, self.backend_note = attach_runtime(split, x, self.backend, self.cache_dir)
        except PassPlanError as error:
            if self.backend != "auto":
                raise ExplainerError(
                    f"backend {self.backend!r} cannot run this model: {error}"
                ) from error
            self.backend_note = f"the prefix runs in torch: {error}"
        if split is not None and split.backend == "torch":
            split = None  # auto found no exact runtime: the plain forward is the cheaper one
        self._splits[key] = split
        return split

    def _on_device(self, model: nn.Module) -> nn.Module:
        tensors = [*model.parameters(), *model.buffers()]
        if all(t.device == self.device for t in tensors):
            return model
        return copy.deepcopy(model).to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str, **kwargs: Any) -> Explainer:
        """An explainer for a checkpoint file, on the checkpoint's own target layer by default."""
        from models.checkpoint import load_checkpoint

        device = resolve_device(kwargs.pop("device", "auto"))
        model, metadata = load_checkpoint(path, device=device)
        kwargs.setdefault("target_layer", metadata.target_layer)
        return cls(model, device=device, **kwargs)

    @property
    def method_name(self) -> str:
        return self.method.name

    def _validate(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            raise ExplainerError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4:
            raise ExplainerError(
                f"x must be (B, C, H, W) (or (C, H, W)), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ExplainerError(
                f"x must be a float tensor, already normalised; got {x.dtype} (convert the frame "
                "with app.preprocess.model_input.FramePreprocessor first)"
            )
        if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
            raise ExplainerError(f"x is empty: shape {tuple(x.shape)}")
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ExplainerError(
                f"x has {x.shape[1]} channels but the model expects {self.in_channels} "
                "(grey frames are replicated to 3 channels by the preprocessing)"
            )
        if not bool(torch.isfinite(x).all()):
            raise ExplainerError("x contains NaN or infinite values")
        dtype = next((p.dtype for p in self.model.parameters()), x.dtype)
        x = x.to(device=self.device, dtype=dtype)
        if x.is_inference():  # made under the caller's inference_mode: autograd can't use it
            with torch.inference_mode(False):
                x = x.clone()
        return x

    def _requested_classes(
        self, class_idx: int | Sequence[int] | Tensor | None, frames: int
    ) -> Tensor | None:
        if class_idx is None:
            return None
        values = torch.as_tensor(class_idx).reshape(-1)
        if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
            raise ExplainerError(f"class_idx must be integer class indices, got {class_idx!r}")
        requested = values.long()
        if requested.numel() == 1:
            requested = requested.expand(frames)
        if requested.numel() != frames:
            raise ExplainerError(f"class_idx has {requested.numel()} entries for {frames} frames")
        return requested

    def __call__(
        self, x: Tensor, class_idx: int | Sequence[int] | Tensor | None = None
    ) -> Explanation:
        """Explain a frame or a batch.

        Args:
            x: (1, C, H, W) or (C, H, W) for one frame, (B, C, H, W) for a batch; float,
                normalised as the model expects, finite.
            class_idx: the class to explain (one int for all frames, or one per frame); None
                explains the argmax of the MC-averaged softmax.

        Returns:
            An :class:`Explanation`; a batch of B > 1 frames gets a leading B on every tensor.

        Raises:
            ExplainerError: bad input (type, shape, dtype, channels, NaN), class out of range,
                a target layer that is not a spatial feature map.
        """
        start = time.perf_counter()
        x = self._validate(x)
        frames = x.shape[0]
        requested = self._requested_classes(class_idx, frames)
        timer = StageTimer(self.device)
        # Gradient methods need autograd whatever the caller's mode (no_grad, inference_mode).
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            preserved_modes(self.model),
            seeded(self.seed, self.device),
        ):
            cut = self._batcher.cut_point(x, self.method.needs_grad)
            split = self._prefix_split(cut, x)
            ctx = PassContext(self._batcher, cut, frames, self.passes, timer, split)
            with self._batcher.session(frames):
                raw = self.method.compute(ctx, x, requested)
        with timer.stage("stats"), torch.no_grad():
            maps = normalize_maps(raw.cams.detach())
            mean, std, cv = pass_statistics(maps, self.cv_min_mean)
            mean_probs, entropy, mutual_info = predictive_uncertainty(raw.probs.detach())
        timer.ms["total"] = (time.perf_counter() - start) * 1e3
        single = frames == 1
        return Explanation(
            maps=maps[0] if single else maps,
            mean=mean[0] if single else mean,
            std=std[0] if single else std,
            cv=cv[0] if single else cv,
            probs=raw.probs[0].detach() if single else raw.probs.detach(),
            mean_probs=mean_probs[0] if single else mean_probs,
            class_idx=int(raw.class_idx[0]) if single else raw.class_idx,
            entropy=float(entropy[0]) if single else entropy,
            mutual_information=float(mutual_info[0]) if single else mutual_info,
            method=self.method.name,
            passes=self.passes,
            mc=self.mc,
            target_layer=self.target_layer,
            timings_ms=dict(timer.ms),
            backend=split.backend if split is not None else "torch",
        )

    def __repr__(self) -> str:
        return (
            f"Explainer(method={self.method!r}, passes={self.passes}, mc={self.mc}, "
            f"target_layer={self.target_layer!r}, device={self.device}, backend={self.backend!r})"
        )
