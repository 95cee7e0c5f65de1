"""Tests for models.architectures: shapes, the Dropout -> Linear head, target layers, names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.architectures import (
    ARCHITECTURES,
    ArchitectureSpec,
    build_model,
    default_target_layer,
    resolve_arch,
)

FAST_ARCHS = ["resnet18", "mobilenet_v2"]


def _last_two_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    return leaves[-2:]


def test_registry_has_the_three_architectures() -> None:
    assert set(ARCHITECTURES) == {"resnet18", "resnet50", "mobilenet_v2"}
    for name, spec in ARCHITECTURES.items():
        assert isinstance(spec, ArchitectureSpec)
        assert spec.name == name
    with pytest.raises(AttributeError):
        ARCHITECTURES["resnet18"].target_layer = "layer3"  # type: ignore[misc]


@pytest.mark.parametrize("arch", FAST_ARCHS)
def test_forward_shape_and_eval_mode(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=3)
    assert not model.training
    assert all(not m.training for m in model.modules())
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_resnet50_builds_and_runs() -> None:
    model = build_model("resnet50", num_classes=3, dropout=0.3)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    (drop_name, drop), (lin_name, lin) = _last_two_leaves(model)
    assert (drop_name, lin_name) == ("fc.0", "fc.1")
    assert isinstance(drop, nn.Dropout) and drop.p == 0.3
    assert isinstance(lin, nn.Linear) and (lin.in_features, lin.out_features) == (2048, 3)


@pytest.mark.parametrize(
    ("arch", "head", "in_features"),
    [("resnet18", "fc", 512), ("mobilenet_v2", "classifier", 1280)],
)
def test_dropout_sits_right_before_the_final_linear(arch: str, head: str, in_features: int) -> None:
    model = build_model(arch, num_classes=4, dropout=0.35)
    (drop_name, drop), (lin_name, lin) = _last_two_leaves(model)
    assert (drop_name, lin_name) == (f"{head}.0", f"{head}.1")
    assert ARCHITECTURES[arch].head == head
    assert type(drop) is nn.Dropout
    assert drop.p == pytest.approx(0.35)
    assert drop.inplace is False
    assert isinstance(lin, nn.Linear)
    assert (lin.in_features, lin.out_features) == (in_features, 4)
    # Exactly one Dropout in the network: MC sampling happens only in the head.
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 1


def test_dropout_is_active_only_in_train_mode() -> None:
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", num_classes=3, dropout=0.5)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval: deterministic
        model.classifier[0].train()
        outs = [model(x) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_zero_dropout_is_allowed() -> None:
    model = build_model("resnet18", num_classes=2, dropout=0.0)
    assert model.fc[0].p == 0.0


@pytest.mark.parametrize(
    ("arch", "layer", "size", "channels", "spatial"),
    [
        ("resnet18", "layer4", 224, 512, 7),
        ("mobilenet_v2", "features.18", 128, 1280, 4),
    ],
)
def test_default_target_layer_gives_a_spatial_map(
    arch: str, layer: str, size: int, channels: int, spatial: int
) -> None:
    assert default_target_layer(arch) == layer
    model = build_model(arch, num_classes=3)
    modules = dict(model.named_modules())
    assert layer in modules
    captured: list[torch.Tensor] = []
    handle = modules[layer].register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    handle.remove()
    assert len(captured) == 1
    assert captured[0].shape == (1, channels, spatial, spatial)


def test_resnet50_default_target_layer_exists() -> None:
    assert default_target_layer("ResNet-50") == "layer4"
    with torch.device("meta"):
        model = build_model("resnet50", num_classes=3)
    assert "layer4" in dict(model.named_modules())


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("resnet18", "resnet18"),
        ("ResNet-18", "resnet18"),
        ("resnet_18", "resnet18"),
        ("RESNET18", "resnet18"),
        ("resnet-50", "resnet50"),
        ("ResNet50", "resnet50"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("mobilenetv2", "mobilenet_v2"),
        ("MobileNet-V2", "mobilenet_v2"),
        (" MobileNet V2 ", "mobilenet_v2"),
    ],
)
def test_aliases_resolve(alias: str, canonical: str) -> None:
    assert resolve_arch(alias) == canonical


def test_build_model_accepts_aliases() -> None:
    model = build_model("MobileNet-V2", num_classes=2)
    assert isinstance(model.classifier[1], nn.Linear)


@pytest.mark.parametrize("name", ["vgg16", "resnet", "resnet34", "", "mobilenet_v3"])
def test_unknown_architecture_lists_available(name: str) -> None:
    with pytest.raises(ValueError, match="unknown architecture") as info:
        resolve_arch(name)
    for known in ARCHITECTURES:
        assert known in str(info.value)
    with pytest.raises(ValueError, match="available"):
        build_model(name, num_classes=3)


def test_non_string_architecture_is_rejected() -> None:
    with pytest.raises(ValueError, match="string"):
        resolve_arch(18)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 1}, "at least 2"),
        ({"num_classes": 0}, "at least 2"),
        ({"num_classes": 2.0}, "int"),
        ({"num_classes": True}, "int"),
        ({"num_classes": 3, "dropout": 1.0}, "dropout"),
        ({"num_classes": 3, "dropout": -0.1}, "dropout"),
        ({"num_classes": 3, "dropout": float("nan")}, "dropout"),
        ({"num_classes": 3, "dropout": "0.2"}, "dropout"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model("resnet18", **kwargs)


@pytest.mark.parametrize(
    ("arch", "site", "target"),
    [("resnet18", "layer3.2", "layer4"), ("mobilenet_v2", "features.17.conv.4", "features.18")],
)
def test_trunk_dropout_feeds_the_target_layer_and_keeps_the_keys(
    arch: str, site: str, target: str
) -> None:
    plain = build_model(arch, 3)
    model = build_model(arch, 3, trunk_dropout=0.3)
    dropout = model.get_submodule(site)
    assert isinstance(dropout, nn.Dropout2d) and dropout.p == 0.3
    assert model.state_dict().keys() == plain.state_dict().keys()  # no new weights
    model.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model(x), plain(x))  # eval mode: Dropout2d is the identity
    seen: list[torch.Tensor] = []
    handles = [
        model.get_submodule(site).register_forward_hook(lambda m, i, o: seen.append(o)),
        model.get_submodule(target).register_forward_pre_hook(lambda m, i: seen.append(i[0])),
    ]
    model.train()
    model(x)
    for handle in handles:
        handle.remove()
    assert seen[0] is seen[1]  # the dropout's output is the target layer's input
    assert bool((seen[0] == 0).flatten(2).all(-1).any())  # whole channels dropped


def test_bad_trunk_dropout_raises() -> None:
    with pytest.raises(ValueError, match="trunk_dropout"):
        build_model("resnet18", 3, trunk_dropout=1.0)
