"""The model split at the cut point: the torch.fx prefix and suffix recompose the model, the
suffix still fires the hooks the engine relies on, and a cut a skip connection spans is refused."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from app.explain.cut import ROOT, CutPoint, PassPlanError, find_dropouts
from app.explain.passes import PassBatcher
from app.explain.split import split_at, split_for_passes
from tests.mc_models import BUILDERS, TARGETS

PASSES = 3
SIZES = {"resnet18": 64, "resnet18_trunk": 64, "mobilenet_v2": 64, "trunk": 12}


def _engine_cut(arch: str, needs_grad: bool) -> tuple[nn.Module, CutPoint, torch.Tensor]:
    model = BUILDERS[arch](PASSES).eval()
    x = torch.randn(2, 3, SIZES[arch], SIZES[arch])
    batcher = PassBatcher(model, TARGETS[arch], find_dropouts(model), PASSES)
    return model, batcher.cut_point(x, needs_grad), x


@pytest.mark.parametrize("arch", list(BUILDERS))
@pytest.mark.parametrize("needs_grad", [True, False], ids=["gradient", "gradient-free"])
def test_prefix_then_suffix_is_the_model(arch: str, needs_grad: bool) -> None:
    model, cut, x = _engine_cut(arch, needs_grad)
    prefix, suffix = split_at(model, cut, TARGETS[arch])
    with torch.no_grad():
        torch.testing.assert_close(suffix(prefix(x)), model(x), rtol=1e-5, atol=1e-6)
    prefix_modules = {name for name, _ in prefix.named_modules()}
    assert not prefix_modules & set(find_dropouts(model)), "a dropout module ran in the prefix"


@pytest.mark.parametrize("arch", ["resnet18_trunk", "trunk"])
def test_suffix_fires_hooks_on_the_models_own_target_and_dropout(arch: str) -> None:
    """With dropout in the trunk the target layer runs in the suffix: its forward hook (the
    engine's activation capture) and the dropout's (the pass masks) must fire there."""
    model, cut, x = _engine_cut(arch, needs_grad=True)
    prefix, suffix = split_at(model, cut, TARGETS[arch])
    modules = dict(model.named_modules())
    fired: list[str] = []
    for name in [TARGETS[arch], *find_dropouts(model)]:
        modules[name].register_forward_hook(lambda *_args, name=name: fired.append(name))
    with torch.no_grad():
        activation = prefix(x)
        assert fired == [], "the prefix ran a hooked module"
        suffix(activation)
    assert sorted(fired) == sorted([TARGETS[arch], *find_dropouts(model)])


def test_a_cut_inside_a_residual_block_is_refused() -> None:
    model, _, _ = _engine_cut("trunk", needs_grad=True)
    with pytest.raises(PassPlanError, match=r"skip connection spans the input of block\.drop"):
        split_at(model, CutPoint("block.drop", "input"), TARGETS["trunk"])


def test_the_model_input_is_not_a_prefix() -> None:
    model, _, _ = _engine_cut("resnet18", needs_grad=True)
    with pytest.raises(PassPlanError, match="model input"):
        split_at(model, CutPoint(ROOT, "input"), TARGETS["resnet18"])


def test_an_untraceable_model_is_a_clear_error() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.drop = nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(x)
            if x.sum() > 0:  # control flow on a value: fx cannot trace it
                x = -x
            return self.drop(x.flatten(1))

    with pytest.raises(PassPlanError, match=r"torch\.fx cannot trace"):
        split_at(DataDependent(), CutPoint("drop", "input"), "conv")


@pytest.mark.parametrize(
    ("arch", "needs_grad", "boundary", "repeat_there", "target_there"),
    [
        ("resnet18", True, CutPoint("layer4", "output"), True, True),
        ("resnet18", False, CutPoint("layer4", "output"), False, True),
        ("resnet18_trunk", True, None, True, False),
        ("trunk", False, None, True, False),
    ],
    ids=["cut-at-target", "cut-after-target", "cut-before-target", "residual-dropout"],
)
def test_the_prefix_ends_at_the_earlier_of_cut_and_target(
    arch: str, needs_grad: bool, boundary: CutPoint | None, repeat_there: bool, target_there: bool
) -> None:
    """None as the expected boundary: the engine's cut itself."""
    model, cut, x = _engine_cut(arch, needs_grad)
    split = split_for_passes(model, cut, TARGETS[arch])
    assert split.boundary == (boundary or cut)
    assert (split.repeat_at_boundary, split.target_at_boundary) == (repeat_there, target_there)
    with torch.no_grad():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model(x), rtol=1e-5, atol=1e-6)
    suffix_modules = {n.target for n in split.suffix.graph.nodes if n.op == "call_module"}
    assert (TARGETS[arch] in suffix_modules) != target_there
    if not repeat_there:
        assert cut.module in suffix_modules, "the cut's hook must fire in the suffix"


def test_without_a_cut_the_prefix_is_the_whole_trunk() -> None:
    model, _, x = _engine_cut("mobilenet_v2", needs_grad=True)
    split = split_for_passes(model, CutPoint(ROOT, "input"), TARGETS["mobilenet_v2"])
    assert split.boundary == CutPoint("features.18", "output")
    assert not split.repeat_at_boundary and split.target_at_boundary
    with torch.no_grad():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model(x), rtol=1e-5, atol=1e-6)


class _Pause(nn.Module):
    """Holds the trace made on the thread that built it (not a real forward, not another
    thread's) until another thread has run its models."""

    def __init__(self) -> None:
        super().__init__()
        self.holder = threading.get_ident()
        self.tracing = threading.Event()
        self.done = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.fx.Proxy) and threading.get_ident() == self.holder:
            self.tracing.set()
            assert self.done.wait(60), "the other thread never finished"
        return x


def test_other_threads_run_their_models_while_one_traces() -> None:
    """torch.fx patches ``nn.Module.__call__`` for every thread while it traces: a model run on
    another thread (the viewer's previous pipeline, a recording replay) must run as usual, both
    another model and the very model being traced, and the trace must stay whole."""
    pause = _Pause()
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), pause, nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(64, 2)
    ).eval()
    other = BUILDERS["trunk"](PASSES).eval()
    x, y = torch.randn(1, 3, 8, 8), torch.randn(2, 3, SIZES["trunk"], SIZES["trunk"])
    with torch.no_grad():
        pause.done.set()
        expected = model(x), other(y)
        pause.done.clear()
    outcome: list[object] = []

    def run_elsewhere() -> None:
        try:
            assert pause.tracing.wait(60), "the trace never started"
            with torch.no_grad():
                outcome.extend([model(x), other(y)])
        except Exception as error:
            outcome.append(error)
        finally:
            pause.done.set()

    thread = threading.Thread(target=run_elsewhere)
    thread.start()
    try:
        prefix, suffix = split_at(model, CutPoint("3", "input"), "3")
    finally:
        pause.done.set()
        thread.join(60)
    assert not thread.is_alive()
    assert len(outcome) == 2, outcome
    for got, want in zip(outcome, expected, strict=True):
        torch.testing.assert_close(got, want)
    with torch.no_grad():
        torch.testing.assert_close(suffix(prefix(x)), expected[0])
