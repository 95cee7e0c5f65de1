"""Each attribution method and statistic against its definition, computed independently.

The models here have a head that is a global average pool followed by a linear layer, so the
gradient at the target layer and the effect of a Recipro-CAM copy are known in closed form and
can be computed in numpy (float64) without autograd or the engine's batching.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchcam.methods import GradCAM as TorchCamGradCAM
from torchcam.methods import ScoreCAM as TorchCamScoreCAM
from torchvision.models import resnet18

from app.explain import Explainer
from app.explain.statistics import pass_statistics, predictive_uncertainty, upsample_map

GAUSSIAN = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
ONE_BY_ONE = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


# -- independent references -------------------------------------------------------------------


def gap_net(
    channels: int, classes: int, relu: bool, seed: int, flat_size: tuple[int, int] | None = None
) -> nn.Sequential:
    """conv (3 -> C, 3x3, no padding) -> [ReLU] -> global average pool -> Dropout -> linear.

    With ``flat_size`` = (h, w) of the conv output, the pool is left out and the linear layer
    reads the flattened (C, h, w) map: a head that sees where each feature is.
    """
    torch.manual_seed(seed)
    features = channels if flat_size is None else channels * flat_size[0] * flat_size[1]
    layers = OrderedDict(
        conv=nn.Conv2d(3, channels, 3),
        act=nn.ReLU() if relu else nn.Identity(),
        pool=nn.AdaptiveAvgPool2d(1) if flat_size is None else nn.Identity(),
        flat=nn.Flatten(),
        drop=nn.Dropout(0.5),
        fc=nn.Linear(features, classes),
    )
    return nn.Sequential(layers).eval()


def np_head(copy: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The model after the target layer, by hand: (C, h, w) -> logits (K,)."""
    weight = params["fc.weight"]
    pooled = copy.mean(axis=(1, 2)) if weight.shape[1] == copy.shape[0] else copy.reshape(-1)
    return weight @ pooled + params["fc.bias"]


def np_params(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The model's parameters as float64 arrays."""
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def np_activation(x: torch.Tensor, params: dict[str, np.ndarray], relu: bool) -> np.ndarray:
    """The conv (valid cross-correlation) output of one frame, (C, h, w), in float64."""
    image = x[0].double().numpy()
    weight, bias = params["conv.weight"], params["conv.bias"]
    h, w = image.shape[1] - 2, image.shape[2] - 2
    out = np.zeros((weight.shape[0], h, w)) + bias[:, None, None]
    for di in range(3):
        for dj in range(3):
            out += np.einsum(
                "oc,chw->ohw", weight[:, :, di, dj], image[:, di : di + h, dj : dj + w]
            )
    return np.maximum(out, 0) if relu else out


def np_minmax(values: np.ndarray) -> np.ndarray:
    """ReLU then min-max to [0, 1] (a flat map becomes zeros)."""
    values = np.maximum(values, 0)
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def np_softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_gradcampp(a: np.ndarray, fc_weight: np.ndarray, cls: int, eps: float = 0.0) -> np.ndarray:
    """Grad-CAM++ (eq. 19) for a GAP + linear head: dY_c/dA_kij = W[c, k] / (h w).

    alpha = g^2 / (2 g^2 + sum_ab A_kab g^3), 0 where that denominator is 0 (``eps`` adds the
    additive epsilon some implementations use, for contrast).
    """
    _, h, w = a.shape
    g = np.broadcast_to(fc_weight[cls][:, None, None] / (h * w), a.shape)
    g2, g3 = g**2, g**3
    denom = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3 + eps
    alpha = np.divide(g2, denom, out=np.zeros_like(g2), where=denom != 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    return np_minmax(np.tensordot(weights, a, axes=1))


def np_reciprocam(
    a: np.ndarray, params: dict[str, np.ndarray], cls: int, kernel: np.ndarray
) -> np.ndarray:
    """Recipro-CAM by its definition: one copy per position, the head applied by hand."""
    _, h, w = a.shape
    scores = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            copy = np.zeros_like(a)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if 0 <= i + di < h and 0 <= j + dj < w:
                        copy[:, i + di, j + dj] = a[:, i, j] * kernel[di + 1, dj + 1]
            scores[i, j] = np_softmax(np_head(copy, params))[cls]
    return np_minmax(scores)


# -- Grad-CAM++ ---------------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [False, True], ids=["signed-A", "relu-A"])
@pytest.mark.parametrize("weight_scale", [1.0, 1e-6])
def test_gradcampp_matches_eq19_by_hand(relu: bool, weight_scale: float) -> None:
    """Non-square 4x5 map; tiny head weights (tiny gradients) follow eq. 19 too, no epsilon."""
    model = gap_net(channels=6, classes=3, relu=relu, seed=0)
    with torch.no_grad():
        model.fc.weight.mul_(weight_scale)
    x = torch.randn(1, 3, 6, 7, generator=torch.Generator().manual_seed(1))
    params = np_params(model)
    a = np_activation(x, params, relu)
    cls = 1
    expected = np_gradcampp(a, params["fc.weight"], cls)
    result = Explainer(model, "gradcam++", mc=False, target_layer="act", device="cpu")(x, cls)

    assert result.class_idx == cls
    assert result.maps.shape == (1, 4, 5)
    assert expected.max() == 1.0 and expected.std() > 0.05  # a map with structure
    np.testing.assert_allclose(result.maps[0].numpy(), expected, atol=1e-5)


def _degenerate_gap_net() -> tuple[nn.Sequential, int]:
    """A 4x4 target map where one channel's eq. 19 denominator is exactly 0 and another
    channel's gradient is exactly 0 (its denominator is 0 as well)."""
    model = gap_net(channels=5, classes=3, relu=False, seed=3)
    cls = 2
    with torch.no_grad():
        # channel 3: A = -2 everywhere, g = 1/16: 2 g^2 + (-32) g^3 = 2/256 - 32/4096 = 0
        model.conv.weight[3].zero_()
        model.conv.bias[3] = -2.0
        model.fc.weight[cls, 3] = 1.0
        # channel 4: zero gradient for the explained class
        model.fc.weight[cls, 4] = 0.0
        model.fc.weight[cls, :3] = torch.tensor([0.5, -0.4, 0.7])
    return model, cls


def test_gradcampp_zero_denominator_is_guarded_not_inf() -> None:
    model, cls = _degenerate_gap_net()
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    params = np_params(model)
    a = np_activation(x, params, relu=False)
    g = params["fc.weight"][cls] / 16
    denom = 2 * g**2 + a.sum(axis=(1, 2)) * g**3
    assert denom[3] == 0.0 and denom[4] == 0.0 and np.all(denom[:3] != 0)  # the premise

    result = Explainer(model, "gradcam++", mc=False, target_layer="conv", device="cpu")(x, cls)
    assert bool(torch.isfinite(result.maps).all())
    expected = np_gradcampp(a, params["fc.weight"], cls)
    assert expected.std() > 0.05
    np.testing.assert_allclose(result.maps[0].numpy(), expected, atol=1e-5)


def test_gradcampp_invariant_to_reparametrisation_without_epsilon() -> None:
    """A -> s A with head weights W -> W / s computes the same function; eq. 19 gives the same
    map (alpha depends on g only through sum(A) g). With s = 1e4 the gradients are ~1e-6, where
    an additive epsilon of 1e-6 in the denominator would change the map completely."""
    scale = 1e4
    model = gap_net(channels=6, classes=3, relu=True, seed=5)
    scaled = gap_net(channels=6, classes=3, relu=True, seed=5)
    with torch.no_grad():
        scaled.conv.weight.mul_(scale)
        scaled.conv.bias.mul_(scale)
        scaled.fc.weight.div_(scale)
    x = torch.randn(1, 3, 7, 6, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(scaled(x), model(x), rtol=1e-4, atol=1e-5)

    cls = 0
    plain = Explainer(model, "gradcam++", mc=False, target_layer="act", device="cpu")(x, cls)
    big = Explainer(scaled, "gradcam++", mc=False, target_layer="act", device="cpu")(x, cls)
    torch.testing.assert_close(big.maps, plain.maps, rtol=0, atol=1e-4)

    # The check has teeth: an epsilon-guarded Grad-CAM++ moves this map far beyond the tolerance.
    params = np_params(scaled)
    a = np_activation(x, params, relu=True)
    exact = np_gradcampp(a, params["fc.weight"], cls)
    with_eps = np_gradcampp(a, params["fc.weight"], cls, eps=1e-6)
    np.testing.assert_allclose(big.maps[0].numpy(), exact, atol=1e-4)
    assert np.abs(with_eps - exact).max() > 0.05


# -- Recipro-CAM --------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "1x1"])
@pytest.mark.parametrize("head", ["gap", "flatten"])
@pytest.mark.parametrize("class_idx", [None, 2])
def test_reciprocam_matches_definition(kernel: str, head: str, class_idx: int | None) -> None:
    """4x5 target map (non-square, to catch row/column mix-ups), head computed by hand. The
    flatten head sees positions, so a copy placed at the wrong position shows even with 1x1."""
    flat_size = (4, 5) if head == "flatten" else None
    model = gap_net(channels=6, classes=4, relu=True, seed=7, flat_size=flat_size)
    with torch.no_grad():
        model.fc.weight.mul_(20 if head == "gap" else 2)  # scores spread beyond float32 noise
    x = torch.randn(1, 3, 6, 7, generator=torch.Generator().manual_seed(8))
    params = np_params(model)
    a = np_activation(x, params, relu=True)
    plain = np_softmax(np_head(a, params))
    cls = int(plain.argmax()) if class_idx is None else class_idx
    stamp = GAUSSIAN if kernel == "gaussian" else ONE_BY_ONE
    expected = np_reciprocam(a, params, cls, stamp)

    explainer = Explainer(
        model, "reciprocam", mc=False, target_layer="act", device="cpu", kernel=kernel
    )
    result = explainer(x, class_idx)
    assert result.class_idx == cls
    assert result.maps.shape == (1, 4, 5)
    assert expected.std() > 0.05
    np.testing.assert_allclose(result.maps[0].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(result.probs[0].numpy(), plain, atol=1e-5)


def test_reciprocam_kernels_differ() -> None:
    """The kernel option is used: Gaussian spreading and 1x1 masking give different maps."""
    model = gap_net(channels=6, classes=4, relu=True, seed=7)
    x = torch.randn(1, 3, 6, 7, generator=torch.Generator().manual_seed(8))
    maps = [
        Explainer(model, "reciprocam", mc=False, target_layer="act", device="cpu", kernel=k)(x).maps
        for k in ("gaussian", "1x1")
    ]
    assert float((maps[0] - maps[1]).abs().max()) > 1e-2


# -- Grad-CAM and Score-CAM against TorchCAM ------------------------------------------------------


def _random_resnet18(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = resnet18(num_classes=4)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def test_gradcam_original_matches_torchcam() -> None:
    model = _random_resnet18(0)
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    result = Explainer(model, "gradcam", mc=False, device="cpu")(x)  # default layer: layer4
    assert result.target_layer == "layer4"
    reference_model = _random_resnet18(0)
    with TorchCamGradCAM(reference_model, "layer4") as extractor:
        scores = reference_model(x)
        reference = extractor(class_idx=int(scores.argmax()), scores=scores)[0][0]
    assert result.class_idx == int(scores.argmax())
    assert result.maps.shape == (1, *reference.shape) == (1, 3, 3)
    assert float(reference.max()) > 0.99 and float(reference.std()) > 0.05
    torch.testing.assert_close(result.maps[0], reference, rtol=0, atol=1e-5)


def test_scorecam_original_matches_torchcam() -> None:
    model = _random_resnet18(1)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cls = 1
    result = Explainer(model, "scorecam", mc=False, target_layer="layer2", device="cpu")(x, cls)
    with TorchCamScoreCAM(model, "layer2", batch_size=32) as extractor:
        with torch.no_grad():
            model(x)
        reference = extractor(class_idx=cls)[0][0]
    assert result.maps.shape == (1, *reference.shape) == (1, 4, 4)
    assert float(reference.std()) > 0.05
    torch.testing.assert_close(result.maps[0], reference, rtol=0, atol=1e-4)


# -- statistics ---------------------------------------------------------------------------------


def test_engine_statistics_match_numpy_on_real_dropout() -> None:
    model = gap_net(channels=8, classes=3, relu=True, seed=9)
    x = torch.randn(1, 3, 10, 10, generator=torch.Generator().manual_seed(9))
    cv_min_mean = 0.15
    explainer = Explainer(
        model,
        "gradcam++",
        passes=8,
        target_layer="act",
        device="cpu",
        seed=0,
        cv_min_mean=cv_min_mean,
    )
    result = explainer(x)
    maps = result.maps.double().numpy()
    mean, std = maps.mean(axis=0), maps.std(axis=0, ddof=0)
    defined = mean > cv_min_mean
    assert defined.any() and not defined.all()  # both regimes are exercised
    cv = np.where(defined, std / np.where(defined, mean, 1.0), np.nan)

    np.testing.assert_allclose(result.mean.numpy(), mean, atol=1e-6)
    np.testing.assert_allclose(result.std.numpy(), std, atol=1e-6)
    assert std.max() > 0.01  # the passes differ
    assert not bool(torch.isinf(result.cv).any())
    np.testing.assert_array_equal(np.isnan(result.cv.numpy()), ~defined)
    np.testing.assert_allclose(result.cv.numpy()[defined], cv[defined], rtol=1e-5, atol=1e-6)


def test_cv_is_nan_never_inf_where_mean_is_about_zero() -> None:
    generator = torch.Generator().manual_seed(10)
    maps = torch.rand(6, 4, 6, generator=generator) * 0.8 + 0.1
    maps[:, :2, :2] = 0.0  # all-zero region
    maps[:, 2:, :2] = torch.rand(6, 2, 2, generator=generator) * 1e-9  # tiny values
    maps[0, 3, 1] = 2e-9
    mean, std, cv = pass_statistics(maps, 1e-3)
    assert not bool(torch.isinf(cv).any())
    assert bool(torch.isnan(cv[:, :2]).all())
    assert bool(torch.isfinite(cv[:, 2:]).all())
    torch.testing.assert_close(cv[:, 2:], std[:, 2:] / mean[:, 2:])

    # With no threshold, only the exact zeros are undefined; tiny means still give finite CV.
    _, _, cv0 = pass_statistics(maps, 0.0)
    assert not bool(torch.isinf(cv0).any())
    assert bool(torch.isnan(cv0[:2, :2]).all())
    assert bool(torch.isfinite(cv0[2:, :2]).all())
    expected = maps[:, 2:, :2].double().std(dim=0, unbiased=False) / maps[:, 2:, :2].double().mean(
        0
    )
    torch.testing.assert_close(cv0[2:, :2].double(), expected, rtol=1e-4, atol=0)


def test_std_is_numerically_stable_in_float32() -> None:
    """Nearly equal maps: a two-pass std matches float64; E[x^2] - E[x]^2 would not."""
    noise = torch.randn(10, 8, 8, generator=torch.Generator().manual_seed(11))
    maps = (0.7 + 1e-4 * noise).float()
    _, std, _ = pass_statistics(maps, 1e-3)
    reference = maps.double().numpy().std(axis=0, ddof=0)
    np.testing.assert_allclose(std.numpy(), reference, rtol=2e-3)
    # The tolerance has teeth: the one-pass formula fails it in float32.
    naive = ((maps.square().mean(0) - maps.mean(0).square()).clamp(min=0)).sqrt()
    assert np.abs(naive.numpy() - reference).max() > 2e-3 * reference.max()


def np_entropy(p: np.ndarray) -> np.ndarray:
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(-1)


@pytest.mark.parametrize("lead", [(), (3,)], ids=["frame", "batch"])
def test_predictive_uncertainty_matches_numpy(lead: tuple[int, ...]) -> None:
    logits = torch.randn(*lead, 7, 4, generator=torch.Generator().manual_seed(12)) * 3
    probs = logits.softmax(-1).double()
    probs[..., 0, :] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.double)  # 0 log 0 = 0
    mean_probs, entropy, mutual_info = predictive_uncertainty(probs)
    p = probs.numpy()
    expected_mean = p.mean(-2)
    expected_entropy = np_entropy(expected_mean)
    expected_mi = expected_entropy - np_entropy(p).mean(-1)
    np.testing.assert_allclose(mean_probs.numpy(), expected_mean, atol=1e-12)
    np.testing.assert_allclose(entropy.numpy(), expected_entropy, atol=1e-12)
    np.testing.assert_allclose(mutual_info.numpy(), expected_mi, atol=1e-12)
    assert bool((mutual_info > 0).all())


def test_mutual_information_is_zero_when_passes_agree() -> None:
    probs = torch.tensor([[0.2, 0.5, 0.3]]).expand(5, 3)
    _, entropy, mutual_info = predictive_uncertainty(probs)
    assert float(mutual_info) == 0.0
    assert float(entropy) == pytest.approx(float(np_entropy(np.array([0.2, 0.5, 0.3]))), abs=1e-6)


def test_upsample_matches_interpolate_without_nan() -> None:
    values = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(13))
    up = upsample_map(values, (16, 20))
    expected = F.interpolate(values[:, None], size=(16, 20), mode="bilinear", align_corners=False)
    assert up.shape == (2, 16, 20)
    torch.testing.assert_close(up, expected[:, 0])


def test_upsample_keeps_nan_regions_nan() -> None:
    values = torch.full((6, 6), 0.4)
    values[:3, :3] = torch.nan
    up = upsample_map(values, (24, 24))
    assert bool(torch.isnan(up[:10, :10]).all())  # inside the undefined block
    assert bool(torch.isfinite(up[14:, :]).all()) and bool(torch.isfinite(up[:, 14:]).all())
    # Normalised interpolation: defined pixels of a constant map keep the constant, also next
    # to the hole.
    defined = up[torch.isfinite(up)]
    torch.testing.assert_close(defined, torch.full_like(defined, 0.4))
    # Far from the hole it is plain bilinear interpolation.
    filled = torch.nan_to_num(values, nan=0.0)
    plain = F.interpolate(filled[None, None], size=(24, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[16:, 16:], plain[0, 0, 16:, 16:])
    assert bool(torch.isnan(upsample_map(torch.full((3, 4), torch.nan), (6, 8))).all())
