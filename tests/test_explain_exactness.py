"""The engine's batched passes give the same maps as the plain per-pass computation."""

from __future__ import annotations

import pytest
import torch

from app.explain import Explainer
from app.explain.statistics import normalize_maps
from tests.mc_models import BUILDERS, TARGETS
from tests.naive_cams import naive_maps, naive_probs

METHODS = ["gradcam", "gradcam++", "smoothgradcam++", "reciprocam", "scorecam"]
PASSES = 3
SIZES = {"resnet18": 64, "resnet18_trunk": 64, "mobilenet_v2": 64, "trunk": 12}
# Score-CAM's naive loop runs one masked input per channel: a narrower layer keeps it fast.
SCORECAM_TARGETS = {
    "resnet18": "layer2",
    "resnet18_trunk": "layer2",
    "mobilenet_v2": "features.10",
    "trunk": "head_conv",
}


@pytest.mark.parametrize("arch", ["resnet18", "resnet18_trunk", "mobilenet_v2", "trunk"])
@pytest.mark.parametrize("method", METHODS)
def test_batched_passes_equal_per_pass_loop(arch: str, method: str) -> None:
    model = BUILDERS[arch](PASSES)
    size = SIZES[arch]
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    seed = 7
    layer = SCORECAM_TARGETS[arch] if method == "scorecam" else TARGETS[arch]
    explainer = Explainer(model, method, passes=PASSES, device="cpu", seed=seed, target_layer=layer)
    result = explainer(x)

    noise = None
    if method == "smoothgradcam++":
        torch.manual_seed(seed)
        noise = torch.randn((1, 4, *x.shape[1:]))[0] * 0.3
    expected_probs = naive_probs(model, x, PASSES)
    cls = int(expected_probs.mean(0).argmax())
    expected = normalize_maps(naive_maps(model, layer, x, cls, PASSES, method, noise))

    assert result.class_idx == cls
    torch.testing.assert_close(result.probs, expected_probs, rtol=1e-4, atol=1e-5)
    assert result.maps.shape == expected.shape
    torch.testing.assert_close(result.maps, expected, rtol=1e-3, atol=2e-4)
    # The passes really differ: the comparison is not between T copies of one map.
    assert float((result.probs - result.probs[0]).abs().max()) > 1e-4


@pytest.mark.parametrize("method", ["gradcam++", "reciprocam", "scorecam"])
def test_batch_of_frames_equals_frame_by_frame(method: str) -> None:
    model = BUILDERS["trunk"](PASSES)
    frames = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    explainer = Explainer(model, method, passes=PASSES, device="cpu", target_layer="head_conv")
    batched = explainer(frames)
    assert batched.maps.shape[:2] == (3, PASSES)
    assert batched.mean.shape[0] == batched.cv.shape[0] == batched.class_idx.shape[0] == 3
    for b in range(3):
        single = explainer(frames[b : b + 1])
        torch.testing.assert_close(batched.maps[b], single.maps, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(batched.probs[b], single.probs, rtol=1e-4, atol=1e-6)
        assert int(batched.class_idx[b]) == single.class_idx


def test_cut_point_skips_residual_block_and_reaches_classifier() -> None:
    """Dropout in the trunk sits inside a residual block: the batch starts at the block's input;
    with dropout only before the classifier it starts at the target (gradient methods) or at
    the dropout (gradient-free)."""
    trunk = Explainer(
        BUILDERS["trunk"](PASSES), "gradcam", passes=PASSES, device="cpu", target_layer="head_conv"
    )
    x = torch.randn(1, 3, 12, 12)
    assert trunk._batcher.cut_point(x, True).module == "block"
    resnet = BUILDERS["resnet18"](PASSES)
    x = torch.randn(1, 3, 64, 64)
    grad = Explainer(resnet, "gradcam", passes=PASSES, device="cpu")._batcher.cut_point(x, True)
    free = Explainer(resnet, "reciprocam", passes=PASSES, device="cpu")._batcher.cut_point(x, False)
    assert (grad.module, grad.position) == ("layer4", "output")
    assert (free.module, free.position) == ("fc.0", "input")
