"""The classification networks the viewer explains: ResNet-18, ResNet-50 and MobileNetV2.

Every network ends in ``Dropout(p) -> Linear`` so that Monte-Carlo Dropout (Dropout left on at
test time) samples sub-networks of the classifier head, as in Roddan et al. Everything before
that Dropout is deterministic, which the explanation engine exploits to avoid recomputation.

Optionally (``trunk_dropout > 0``) a ``Dropout2d`` also sits inside the trunk, on the input of
the target layer, so that the MC passes also vary the feature maps the explanations are made
of. It is appended to an existing ``nn.Sequential`` and has no weights, so the state-dict keys
are those of the plain network.

Weights are always randomly initialised here (``weights=None``): trained weights come from a
checkpoint (see :mod:`models.checkpoint`), never from the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torchvision import models as tvm

__all__ = [
    "ARCHITECTURES",
    "ArchitectureSpec",
    "build_model",
    "default_target_layer",
    "known_target_layer",
    "resolve_arch",
]


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to build one supported architecture and where to explain it.

    Attributes:
        name: Canonical architecture name, e.g. ``"resnet18"`` (a key of :data:`ARCHITECTURES`).
        target_layer: Name (as in ``model.named_modules()``) of the default layer whose
            activations the attribution methods use: the last convolutional block, whose output
            is a 4D map ``(N, C, h, w)`` at 1/32 of the input resolution.
        head: Name of the classifier head, an ``nn.Sequential(nn.Dropout(p), nn.Linear)``;
            ``f"{head}.0"`` is the Dropout and ``f"{head}.1"`` the final Linear.
        trunk_site: Name of the ``nn.Sequential`` whose output is the target layer's input;
            trunk dropout is appended to it.
        builder: ``builder(num_classes, dropout) -> nn.Module`` returning a randomly initialised
            network. Prefer :func:`build_model`, which validates the arguments.
        family: The torchvision class ``builder`` returns; any model of that class (another
            depth, weights from elsewhere) is explained at ``target_layer`` too.
    """

    name: str
    target_layer: str
    head: str
    trunk_site: str
    builder: Callable[[int, float], nn.Module]
    family: type[nn.Module]


def _build_resnet(factory: Callable[..., tvm.ResNet]) -> Callable[[int, float], nn.Module]:
    def build(num_classes: int, dropout: float) -> nn.Module:
        model = factory(weights=None)
        in_features = model.fc.in_features
        model.fc = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(in_features, num_classes))
        return model

    return build


def _build_mobilenet_v2(num_classes: int, dropout: float) -> nn.Module:
    # torchvision's classifier is already Sequential(Dropout, Linear(1280, num_classes)) with
    # its own Linear initialisation; only the Dropout is replaced, by a plain non-inplace one.
    model = tvm.mobilenet_v2(weights=None, num_classes=num_classes)
    model.classifier[0] = nn.Dropout(p=dropout)
    return model


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "resnet18": ArchitectureSpec(
        "resnet18", "layer4", "fc", "layer3", _build_resnet(tvm.resnet18), tvm.ResNet
    ),
    "resnet50": ArchitectureSpec(
        "resnet50", "layer4", "fc", "layer3", _build_resnet(tvm.resnet50), tvm.ResNet
    ),
    # features.17 has no residual connection, so the end of its conv stack is its output.
    "mobilenet_v2": ArchitectureSpec(
        "mobilenet_v2",
        "features.18",
        "classifier",
        "features.17.conv",
        _build_mobilenet_v2,
        tvm.MobileNetV2,
    ),
}
"""Supported architectures by canonical name."""


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_ALIASES: dict[str, str] = {_squash(canonical): canonical for canonical in ARCHITECTURES}


def resolve_arch(name: str) -> str:
    """Return the canonical architecture name for a user-supplied spelling.

    Case, ``-``, ``_``, ``.`` and spaces are ignored, so ``"ResNet-18"``, ``"resnet_18"``,
    ``"MobileNet-V2"`` and ``"mobilenetv2"`` all resolve.

    Args:
        name: An architecture name as typed by a user or stored in a checkpoint.

    Returns:
        A key of :data:`ARCHITECTURES` (``"resnet18"``, ``"resnet50"`` or ``"mobilenet_v2"``).

    Raises:
        ValueError: If ``name`` is not a string naming a known architecture; the message lists
            the known ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"architecture name must be a string, got {type(name).__name__}")
    canonical = _ALIASES.get(_squash(name))
    if canonical is None:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(ARCHITECTURES)}")
    return canonical


def default_target_layer(arch: str) -> str:
    """Return the default attribution layer of an architecture.

    Args:
        arch: Architecture name (any spelling :func:`resolve_arch` accepts).

    Returns:
        A module name in ``model.named_modules()``: ``"layer4"`` for the ResNets,
        ``"features.18"`` for MobileNetV2.
    """
    return ARCHITECTURES[resolve_arch(arch)].target_layer


def known_target_layer(model: nn.Module) -> str | None:
    """Return the default attribution layer of a model of a known architecture family.

    The single table of target layers is :data:`ARCHITECTURES`; this looks a built model up in
    it by class (:attr:`ArchitectureSpec.family`), so any torchvision ResNet gets ``"layer4"``
    and any MobileNetV2 ``"features.18"``.

    Args:
        model: A network.

    Returns:
        The module name, or None when ``model`` is of no known family.
    """
    for spec in ARCHITECTURES.values():
        if isinstance(model, spec.family):
            return spec.target_layer
    return None


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {value}")
    return float(value)


def build_model(
    arch: str, num_classes: int, dropout: float = 0.2, trunk_dropout: float = 0.0
) -> nn.Module:
    """Build a randomly initialised classifier whose last two layers are Dropout then Linear.

    ResNets get ``fc = Sequential(Dropout(dropout), Linear(in_features, num_classes))``
    (modules ``fc.0`` and ``fc.1``); MobileNetV2 gets
    ``classifier = Sequential(Dropout(dropout), Linear(1280, num_classes))``
    (``classifier.0`` and ``classifier.1``). No pretrained weights are downloaded.

    Args:
        arch: Architecture name (any spelling :func:`resolve_arch` accepts).
        num_classes: Number of output classes, an ``int >= 2``.
        dropout: Dropout probability ``p`` of the head, ``0 <= p < 1`` (paper: 0.2).
        trunk_dropout: Probability of a ``Dropout2d`` on the target layer's input (``layer3.2``
            for the ResNets, ``features.17.conv.4`` for MobileNetV2); 0 adds none.

    Returns:
        The model in ``eval()`` mode on the CPU. ``model(x)`` maps an input ``(N, 3, H, W)`` to
        logits ``(N, num_classes)``.

    Raises:
        ValueError: For an unknown architecture, a ``num_classes`` that is not an int ``>= 2``,
            or a ``dropout`` or ``trunk_dropout`` that is not a real number in ``[0, 1)``.
    """
    canonical = resolve_arch(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    dropout = _check_probability("dropout", dropout)
    trunk_dropout = _check_probability("trunk_dropout", trunk_dropout)
    spec = ARCHITECTURES[canonical]
    model = spec.builder(num_classes, dropout)
    if trunk_dropout > 0:
        site = model.get_submodule(spec.trunk_site)
        assert isinstance(site, nn.Sequential)
        site.append(nn.Dropout2d(p=trunk_dropout))
    return model.eval()
