"""Tiny models and a deterministic test dropout for the engine's tests (random weights)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2, resnet18


class RowMaskDropout(nn.Dropout):
    """Dropout with fixed masks, so that a pass can be replayed exactly.

    In train mode, row r of a batch gets ``table[r % T]``; with ``pass_index`` set, every row
    gets ``table[pass_index]`` (one pass run on its own, the straightforward way). The engine
    draws a pass's mask by calling ``forward`` on ones with one row per (frame, pass), so pass
    t of every frame gets ``table[t]``.
    """

    def __init__(self, p: float, features: tuple[int, ...], passes: int, seed: int) -> None:
        super().__init__(p)
        generator = torch.Generator().manual_seed(seed)
        keep = torch.rand((passes, *features), generator=generator) >= p
        self.register_buffer("table", keep.float() / (1 - p))
        self.pass_index: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if self.pass_index is not None:
            return x * self.table[self.pass_index]
        rows = torch.arange(x.shape[0]) % self.table.shape[0]
        return x * self.table[rows]


def _randomise_batchnorm(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial running statistics, so that BatchNorm in train mode would show."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def resnet18_rowmask(passes: int, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = resnet18(num_classes=classes)
    model.fc = nn.Sequential(RowMaskDropout(0.5, (512,), passes, seed), nn.Linear(512, classes))
    return _randomise_batchnorm(model, seed)


def mobilenet_rowmask(passes: int, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = mobilenet_v2(num_classes=classes)
    model.classifier[0] = RowMaskDropout(0.5, (1280,), passes, seed)
    return _randomise_batchnorm(model, seed)


def resnet18_trunk_rowmask(passes: int, classes: int = 3, seed: int = 0) -> nn.Module:
    """ResNet-18 with channel dropout on layer4's input, where
    ``models.architectures.build_model(trunk_dropout=p)`` puts its Dropout2d."""
    model = resnet18_rowmask(passes, classes, seed)
    model.layer3.append(RowMaskDropout(0.3, (256, 1, 1), passes, seed + 3))
    return model


class DropoutBlock(nn.Module):
    """A residual block with dropout on its main path: the skip spans the dropout."""

    def __init__(self, channels: int, passes: int, seed: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.drop = RowMaskDropout(0.3, (channels, 1, 1), passes, seed + 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.drop(torch.relu(self.conv1(x))))


class TrunkDropoutNet(nn.Module):
    """Dropout inside the trunk (in a residual block, before the target layer) and before the
    classifier."""

    def __init__(self, passes: int, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = DropoutBlock(8, passes, seed)
        self.head_conv = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = RowMaskDropout(0.5, (12,), passes, seed + 2)
        self.fc = nn.Linear(12, classes)
        _randomise_batchnorm(self, seed)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_conv(self.block(self.stem(x)))
        return self.fc(self.drop(self.pool(x).flatten(1)))


TARGETS = {
    "resnet18": "layer4",
    "resnet18_trunk": "layer4",
    "mobilenet_v2": "features.18",
    "trunk": "head_conv",
}
BUILDERS = {
    "resnet18": resnet18_rowmask,
    "resnet18_trunk": resnet18_trunk_rowmask,
    "mobilenet_v2": mobilenet_rowmask,
    "trunk": TrunkDropoutNet,
}


def set_pass(model: nn.Module, pass_index: int | None) -> None:
    """Make every RowMaskDropout use one pass's mask for all rows (None: per-row masks)."""
    for module in model.modules():
        if isinstance(module, RowMaskDropout):
            module.pass_index = pass_index
