"""The engine's behaviour: the caller's model is left alone, bad input gets a clear error, and
results have the contracted shapes, semantics and reproducibility."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from app.explain import Explainer, ExplainerError

METHODS = ["gradcam", "gradcam++", "smoothgradcam++", "scorecam", "reciprocam"]
GRADIENT_METHODS = ["gradcam", "gradcam++", "smoothgradcam++"]
CLASSES = 3
SIZE = 16


def small_cnn(seed: int = 0, dropout: bool = True) -> nn.Sequential:
    """conv-BN-ReLU, strided conv-ReLU (the target, 8x8 for a 16x16 input), GAP, Dropout(0.5),
    linear. BatchNorm has non-trivial running statistics so that train mode would show."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1),
            bn=nn.BatchNorm2d(8),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 8, 3, stride=2, padding=1),
            relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            drop=nn.Dropout(0.5) if dropout else nn.Identity(),
            fc=nn.Linear(8, CLASSES),
        )
    )
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.fc.weight.mul_(4)  # confident enough that dropout visibly moves the softmax
    return model.eval()


def frames(batch: int = 1, seed: int = 0) -> Tensor:
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def explainer(model: nn.Module, method: str, **kwargs: Any) -> Explainer:
    kwargs.setdefault("passes", 4)
    kwargs.setdefault("target_layer", "relu2")
    kwargs.setdefault("device", "cpu")
    return Explainer(model, method, **kwargs)


# -- the caller's model is left as it was -------------------------------------------------------


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything about the model that an explanation call must not change."""
    return {
        "training": {name: m.training for name, m in model.named_modules()},
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    for name, param in model.named_parameters():
        assert param.grad is None, name
    hook_dicts = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks_with_kwargs",
    )
    for name, module in model.named_modules():
        for attr in hook_dicts:
            assert not getattr(module, attr, {}), f"{name or 'model'}.{attr} left behind"


def mixed_state(model: nn.Module) -> nn.Module:
    """Train mode overall, some modules in eval, one parameter frozen."""
    model.train()
    model.bn.eval()
    model.fc.eval()
    model.conv1.bias.requires_grad_(False)
    return model


@pytest.mark.parametrize("state", ["mixed", "eval"])
@pytest.mark.parametrize("method", METHODS)
def test_model_unchanged_after_call(method: str, state: str) -> None:
    model = small_cnn()
    if state == "mixed":
        mixed_state(model)
    before = snapshot(model)
    ex = explainer(model, method)
    assert ex.model is model  # same device, no private copy: the checks below see the caller's
    ex(frames(2))
    ex(frames(1))
    assert_unchanged(model, before)


def _out_of_range(model: nn.Module, method: str) -> None:
    explainer(model, method)(frames(), class_idx=CLASSES)


def _no_spatial_size(model: nn.Module, method: str) -> None:
    explainer(model, method, target_layer="pool")(frames())


def _nan_input(model: nn.Module, method: str) -> None:
    x = frames()
    x[0, 1, 2, 3] = torch.nan
    explainer(model, method)(x)


FAILING_CALLS = {
    "class-out-of-range": (_out_of_range, "out of range"),
    "no-spatial-size": (_no_spatial_size, "no spatial size"),
    "nan-input": (_nan_input, "NaN"),
}


@pytest.mark.parametrize("failure", list(FAILING_CALLS))
@pytest.mark.parametrize("state", ["mixed", "eval"])
@pytest.mark.parametrize("method", METHODS)
def test_model_unchanged_after_failing_call(method: str, state: str, failure: str) -> None:
    model = small_cnn()
    if state == "mixed":
        mixed_state(model)
    before = snapshot(model)
    call, message = FAILING_CALLS[failure]
    with pytest.raises(ExplainerError, match=message):
        call(model, method)
    assert_unchanged(model, before)


def test_callers_own_hooks_are_kept_and_still_run() -> None:
    model = small_cnn()
    calls: list[int] = []
    handle = model.fc.register_forward_hook(lambda _m, _a, out: calls.append(out.shape[0]))
    try:
        explainer(model, "reciprocam")(frames())
        assert len(model.fc._forward_hooks) == 1
        assert calls  # the caller's hook saw the engine's forwards
        assert all(not m._forward_hooks for m in model.modules() if m is not model.fc)
    finally:
        handle.remove()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mc", [True, False])
def test_callers_train_mode_does_not_change_the_result(method: str, mc: bool) -> None:
    """BatchNorm runs in eval mode whatever mode the caller left the model in."""
    model = small_cnn()
    x = frames(2)
    in_eval = explainer(model, method, mc=mc, seed=3)(x)
    in_train = explainer(model.train(), method, mc=mc, seed=3)(x)
    torch.testing.assert_close(in_train.maps, in_eval.maps)
    torch.testing.assert_close(in_train.probs, in_eval.probs)
    assert model.training


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_frozen_parameters_do_not_change_gradient_maps(method: str) -> None:
    model = small_cnn()
    x = frames()
    reference = explainer(model, method, seed=1)(x)
    for param in model.parameters():
        param.requires_grad_(False)
    frozen = explainer(model, method, seed=1)(x)
    torch.testing.assert_close(frozen.maps, reference.maps)
    assert not any(p.requires_grad for p in model.parameters())


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.randn(1, 1, SIZE, SIZE), "1 channels but the model expects 3"),
        (torch.randn(1, 4, SIZE, SIZE), "4 channels but the model expects 3"),
        (torch.randint(0, 255, (1, 3, SIZE, SIZE), dtype=torch.uint8), "float tensor"),
        (torch.full((1, 3, SIZE, SIZE), torch.nan), "NaN or infinite"),
        (torch.randn(1, 3, SIZE, SIZE).index_fill_(2, torch.tensor([3]), torch.inf), "infinite"),
        (np.zeros((1, 3, SIZE, SIZE), dtype=np.float32), r"must be a torch\.Tensor, got ndarray"),
        (torch.randn(SIZE, SIZE), r"must be \(B, C, H, W\)"),
        (torch.randn(1, 1, 3, SIZE, SIZE), r"must be \(B, C, H, W\)"),
        (torch.randn(0, 3, SIZE, SIZE), "empty"),
    ],
    ids=["1ch", "4ch", "uint8", "nan", "inf", "numpy", "2d", "5d", "empty"],
)
def test_bad_input_raises_clear_error(x: Any, message: str) -> None:
    with pytest.raises(ExplainerError, match=message):
        explainer(small_cnn(), "gradcam++")(x)


def test_class_idx_list_of_wrong_length_raises() -> None:
    with pytest.raises(ExplainerError, match="class_idx has 3 entries for 2 frames"):
        explainer(small_cnn(), "gradcam")(frames(2), class_idx=[0, 1, 2])


@pytest.mark.parametrize("class_idx", [-1, CLASSES, [0, 7]])
def test_class_idx_out_of_range_raises(class_idx: int | list[int]) -> None:
    with pytest.raises(ExplainerError, match="out of range: the model has 3 classes"):
        explainer(small_cnn(), "reciprocam")(frames(2), class_idx=class_idx)


def test_unknown_method_lists_the_methods() -> None:
    with pytest.raises(ExplainerError, match=r"unknown method 'lime'.*available: gradcam,"):
        Explainer(small_cnn(), "lime")


def test_near_miss_method_suggests_the_right_one() -> None:
    with pytest.raises(ExplainerError, match=r"did you mean gradcam\+\+"):
        Explainer(small_cnn(), "gradcam+")


@pytest.mark.parametrize("alias", ["GradCAM++", "grad-cam++", "gradcampp", "Smooth_GradCAM++"])
def test_method_name_aliases(alias: str) -> None:
    assert Explainer(small_cnn(), alias, target_layer="relu2").method_name in METHODS


def test_unknown_target_layer_suggests_close_names() -> None:
    with pytest.raises(ExplainerError, match=r"no layer named 'layer5'; did you mean .*layer4"):
        Explainer(resnet18(num_classes=2), "gradcam", mc=False, target_layer="layer5")
    with pytest.raises(ExplainerError, match=r"no layer named 'relu3'; did you mean .*relu2"):
        Explainer(small_cnn(), "gradcam", target_layer="relu3")


def test_mc_needs_dropout_and_original_does_not() -> None:
    model = small_cnn(dropout=False)
    with pytest.raises(ExplainerError, match="mc=True needs Dropout"):
        explainer(model, "gradcam++", mc=True)
    result = explainer(model, "gradcam++", mc=False)(frames())
    assert result.maps.shape == (1, 8, 8)


@pytest.mark.parametrize("passes", [0, -3, 2.5, True, "3"])
def test_bad_passes_raise(passes: Any) -> None:
    with pytest.raises(ExplainerError, match="passes must be an integer >= 1"):
        Explainer(small_cnn(), "gradcam", passes=passes)


@pytest.mark.parametrize("passes", [None, float("nan"), float("inf")])
def test_non_numeric_passes_raise_explainer_error(passes: Any) -> None:
    with pytest.raises(ExplainerError, match="passes must be an integer >= 1"):
        Explainer(small_cnn(), "gradcam", passes=passes)


@pytest.mark.parametrize(
    ("layer", "message"), [("avgpool", "no spatial size"), ("fc", r"not a \(N, C, h, w\)")]
)
def test_scorecam_on_a_layer_without_spatial_size_raises(layer: str, message: str) -> None:
    model = resnet18(num_classes=2).eval()
    ex = Explainer(model, "scorecam", mc=False, target_layer=layer, device="cpu")
    with pytest.raises(ExplainerError, match=message):
        ex(torch.randn(1, 3, 32, 32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_raises() -> None:
    with pytest.raises(ExplainerError, match="no CUDA GPU is available"):
        Explainer(small_cnn(), "gradcam", device="cuda")


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("gradcam", {"samples": 3}, r"gradcam takes no option\(s\) \['samples'\]"),
        ("gradcam++", {"kernel": "1x1"}, "takes no option"),
        ("reciprocam", {"batch_size": 8}, "takes no option"),
        ("reciprocam", {"kernel": "5x5"}, "kernel must be 'gaussian' or '1x1'"),
        ("scorecam", {"batch_size": 0}, "batch_size must be >= 1"),
        ("smoothgradcam++", {"samples": 0}, "samples >= 1"),
        ("smoothgradcam++", {"std": 0.0}, "std > 0"),
    ],
)
def test_bad_method_options_raise(method: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ExplainerError, match=message):
        Explainer(small_cnn(), method, target_layer="relu2", **options)


def test_model_that_is_not_a_module_raises() -> None:
    with pytest.raises(ExplainerError, match=r"must be a torch\.nn\.Module"):
        Explainer(lambda x: x, "gradcam")  # type: ignore[arg-type]


# -- shapes and semantics -------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("method", METHODS)
def test_shapes_and_semantics(method: str, batch: int) -> None:
    passes = 5
    model = small_cnn()
    result = explainer(model, method, passes=passes, seed=0)(frames(batch))
    lead = () if batch == 1 else (batch,)

    assert result.maps.shape == (*lead, passes, 8, 8)
    for stat in (result.mean, result.std, result.cv):
        assert stat.shape == (*lead, 8, 8)
    assert result.probs.shape == (*lead, passes, CLASSES)
    assert result.mean_probs.shape == (*lead, CLASSES)
    assert result.batched == (batch > 1)
    assert float(result.maps.min()) >= 0.0 and float(result.maps.max()) <= 1.0
    # Each map is min-max normalised: it reaches 1 unless it is flat (all zeros).
    peaks = result.maps.flatten(-2).amax(-1)
    assert bool(((peaks == 1) | (peaks == 0)).all()) and bool((peaks == 1).any())
    torch.testing.assert_close(result.probs.sum(-1), torch.ones(*lead, passes))
    torch.testing.assert_close(result.mean_probs, result.probs.mean(-2))
    torch.testing.assert_close(result.mean, result.maps.mean(-3))
    if batch == 1:
        assert isinstance(result.class_idx, int)
        assert result.class_idx == int(result.mean_probs.argmax())
        assert isinstance(result.entropy, float) and isinstance(result.mutual_information, float)
    else:
        assert result.class_idx.shape == (batch,)
        assert torch.equal(result.class_idx, result.mean_probs.argmax(-1))
        assert result.entropy.shape == result.mutual_information.shape == (batch,)
    assert (result.method, result.passes, result.mc) == (method, passes, True)
    assert result.target_layer == "relu2"
    assert result.timings_ms["total"] > 0
    assert all(value >= 0 for value in result.timings_ms.values())
    assert result.timings_ms["total"] >= max(
        v for k, v in result.timings_ms.items() if k != "total"
    )


@pytest.mark.parametrize("method", METHODS)
def test_requested_class_is_honoured(method: str) -> None:
    model = small_cnn()
    ex = explainer(model, method, seed=0)
    default = ex(frames())
    other = (default.class_idx + 1) % CLASSES
    chosen = ex(frames(), class_idx=other)
    assert chosen.class_idx == other
    torch.testing.assert_close(chosen.probs, default.probs)  # same passes, another class
    assert float((chosen.maps - default.maps).abs().max()) > 1e-3

    batch = ex(frames(2), class_idx=[2, 0])
    assert batch.class_idx.tolist() == [2, 0]
    single = ex(frames(2), class_idx=torch.tensor(1))
    assert single.class_idx.tolist() == [1, 1]


@pytest.mark.parametrize("method", METHODS)
def test_original_mode_is_one_deterministic_pass(method: str) -> None:
    model = small_cnn()
    x = frames(2)
    ex = explainer(model, method, mc=False, passes=10)
    result = ex(x)
    assert result.maps.shape == (2, 1, 8, 8)
    assert (result.passes, result.mc) == (1, False)
    assert torch.equal(result.std, torch.zeros_like(result.std))
    assert torch.equal(result.maps[:, 0], result.mean)
    defined = result.mean > 1e-3  # the default cv_min_mean
    assert bool((result.cv[defined] == 0).all()) and bool(torch.isnan(result.cv[~defined]).all())
    with torch.no_grad():
        torch.testing.assert_close(result.probs[:, 0], model(x).softmax(-1))
    torch.testing.assert_close(ex(x).maps, result.maps, rtol=0, atol=0)
    assert result.mutual_information.abs().max() < 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_mc_passes_differ(method: str) -> None:
    model = small_cnn()
    result = explainer(model, method, passes=6, seed=2)(frames())
    assert float((result.probs - result.probs[0]).abs().max()) > 1e-3
    assert float((result.maps - result.maps[0]).abs().max()) > 1e-3
    assert float(result.std.max()) > 1e-3
    assert result.mutual_information > 0


def test_single_frame_without_batch_axis() -> None:
    ex = explainer(small_cnn(), "gradcam++", seed=4)
    x = frames()
    torch.testing.assert_close(ex(x[0]).maps, ex(x).maps, rtol=0, atol=0)


def test_double_input_is_cast_to_the_model_dtype() -> None:
    ex = explainer(small_cnn(), "gradcam++", seed=4)
    x = frames()
    result = ex(x.double())
    assert result.maps.dtype == torch.float32
    torch.testing.assert_close(result.maps, ex(x).maps)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_work_under_callers_no_grad(method: str, mode: str) -> None:
    ex = explainer(small_cnn(), method, seed=5)
    x = frames()
    reference = ex(x)
    with getattr(torch, mode)():
        result = ex(x)
    torch.testing.assert_close(result.maps, reference.maps)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("method", ["scorecam", "reciprocam"])
def test_gradient_free_methods_work_under_callers_no_grad(method: str, mode: str) -> None:
    ex = explainer(small_cnn(), method, seed=5)
    x = frames()
    reference = ex(x)
    with getattr(torch, mode)():
        result = ex(x)
    torch.testing.assert_close(result.maps, reference.maps)


# -- reproducibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_seed_reproduces_and_leaves_global_rng_alone(method: str) -> None:
    model = small_cnn()
    x = frames(2)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = explainer(model, method, passes=6, seed=11)(x)
    second = explainer(model, method, passes=6, seed=11)(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.maps, second.maps)
    assert torch.equal(first.probs, second.probs)
    other = explainer(model, method, passes=6, seed=12)(x)
    assert not torch.equal(other.probs, first.probs)


def test_without_seed_calls_differ() -> None:
    ex = explainer(small_cnn(), "gradcam++", passes=8)
    x = frames()
    torch.manual_seed(0)
    first = ex(x)
    second = ex(x)
    assert not torch.equal(first.probs, second.probs)
    assert not torch.equal(first.maps, second.maps)


# -- device ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_cpu_device_gives_cpu_results(device: str | torch.device) -> None:
    model = small_cnn()
    ex = Explainer(model, "gradcam++", passes=3, target_layer="relu2", device=device)
    assert ex.device == torch.device("cpu")
    result = ex(frames())
    for name in ("maps", "mean", "std", "cv", "probs", "mean_probs"):
        assert getattr(result, name).device.type == "cpu", name


@pytest.mark.parametrize("class_idx", [1.5, True, [0.0]])
def test_non_integer_class_idx_raises(class_idx: Any) -> None:
    with pytest.raises(ExplainerError, match="class_idx must be integer class indices"):
        explainer(small_cnn(), "gradcam")(frames(), class_idx=class_idx)


def test_trunk_dropout_alone_makes_the_passes_differ() -> None:
    """With the head's Dropout at 0, the passes of a plain model are identical; trunk dropout
    (``build_model(trunk_dropout=p)``) alone makes their maps and probabilities differ."""
    from models.architectures import build_model

    torch.manual_seed(0)
    plain = build_model("resnet18", 3, dropout=0.0)
    trunk = build_model("resnet18", 3, dropout=0.0, trunk_dropout=0.3)
    trunk.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ExplainerError):  # nothing random to sample without any dropout
        Explainer(plain, "gradcam++", passes=4, device="cpu")(x)
    result = Explainer(trunk, "gradcam++", passes=4, device="cpu", seed=3)(x)
    assert float(result.std.max()) > 0.05
    assert float((result.probs - result.probs[0]).abs().max()) > 1e-4
    original = Explainer(trunk, "gradcam++", passes=4, mc=False, device="cpu")(x)
    torch.testing.assert_close(
        original.probs[0], torch.softmax(plain(x), dim=1)[0], rtol=1e-4, atol=1e-6
    )  # in eval mode the trunk dropout is the identity


@pytest.mark.parametrize(
    ("arch", "most"),
    [("resnet18", 4), ("resnet18_trunk", 4), ("trunk", 4)],
    ids=["cut-at-target", "cut-in-trunk", "skip-across-first-candidate"],
)
def test_the_first_frame_runs_the_trunk_on_few_rows(arch: str, most: int) -> None:
    """Finding the cut on the first frame costs one traced row and the trial's two prefix
    rows; the frame itself is one more. A candidate that a skip connection spans is refused
    from the graph, without a trial (before: the whole model ran twice per candidate)."""
    from tests.mc_models import BUILDERS, TARGETS

    model = BUILDERS[arch](3).eval()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    rows: list[int] = []
    first_conv.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[0]))
    size = 12 if arch == "trunk" else 64
    explainer = Explainer(model, "gradcam++", passes=3, device="cpu", target_layer=TARGETS[arch])
    explainer(torch.randn(1, 3, size, size))
    assert sum(rows) <= most, rows
    rows.clear()
    explainer(torch.randn(1, 3, size, size))
    assert rows == [1], "a later frame runs the trunk once"
