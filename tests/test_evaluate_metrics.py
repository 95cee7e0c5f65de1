"""Poppi et al.'s metrics: golden values, edge cases, the scoring contract and aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.evaluate import (
    FLAGS,
    ExplanationScore,
    adcc,
    aggregate,
    average_drop,
    coherency,
    complexity,
    pearson,
    score_explanation,
    score_explanations,
    score_maps,
)
from app.evaluate.metrics import adcc_case
from app.explain import Explainer


def _ramp(h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.linspace(0, 1, h * w).reshape(h, w)


# --- golden values ---------------------------------------------------------------------------


def test_coherency_of_map_with_itself_is_one_and_with_negation_zero() -> None:
    m = _ramp()
    assert coherency(m, m) == pytest.approx(1.0)
    assert coherency(m, 1 - m) == pytest.approx(0.0)
    assert coherency(m, 2 * m + 0.1) == pytest.approx(1.0)  # Pearson is affine-invariant


def test_pearson_matches_numpy_on_random_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        a, b = torch.rand(2, 16, 12, generator=gen)
        expected = np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1]
        assert pearson(a, b) == pytest.approx(expected, abs=1e-6)
        assert coherency(a, b) == pytest.approx((expected + 1) / 2, abs=1e-6)


def test_complexity_is_mean_absolute_value() -> None:
    assert complexity(torch.full((7, 5), 0.25)) == pytest.approx(0.25)
    assert complexity(torch.zeros(4, 4)) == 0.0
    m = _ramp()
    assert complexity(m) == pytest.approx(float(m.abs().sum()) / m.numel())


def test_average_drop_golden_values() -> None:
    assert average_drop(0.8, 0.6) == pytest.approx(0.25)
    assert average_drop(0.6, 0.8) == 0.0  # confidence rose: no drop
    assert average_drop(0.5, 0.0) == 1.0


def test_adcc_formula() -> None:
    expected = 3 / (1 / 0.9 + 1 / 0.8 + 1 / 0.9)
    assert adcc(average_drop=0.1, coherency=0.9, complexity=0.2) == pytest.approx(expected)
    assert adcc(0.0, 1.0, 0.0) == pytest.approx(1.0)


# --- edge cases ------------------------------------------------------------------------------


def test_flat_and_all_zero_maps_make_coherency_undefined() -> None:
    assert math.isnan(pearson(torch.full((6, 6), 0.3), _ramp(6, 6)))
    assert math.isnan(coherency(_ramp(6, 6), torch.zeros(6, 6)))
    s = score_maps(torch.zeros(4, 4), _ramp(4, 4), y=0.7, o=0.2, class_idx=1, input_size=(16, 16))
    assert math.isnan(s.coherency) and s.complexity == 0.0
    assert "flat_map" in s.flags and "adcc_undefined" in s.flags and math.isnan(s.adcc)
    s = score_maps(_ramp(4, 4), torch.full((4, 4), 0.5), 0.7, 0.2, 1, (16, 16))
    assert math.isnan(s.coherency) and s.flags == ("flat_masked_map", "adcc_undefined")


def test_zero_probability_makes_average_drop_undefined() -> None:
    assert math.isnan(average_drop(0.0, 0.1))
    s = score_maps(_ramp(4, 4), _ramp(4, 4), y=0.0, o=0.0, class_idx=0, input_size=(8, 8))
    assert math.isnan(s.average_drop) and math.isnan(s.adcc)
    assert s.flags == ("zero_y", "adcc_undefined")


def test_zero_harmonic_terms_give_adcc_zero() -> None:
    assert adcc(average_drop=0.1, coherency=0.9, complexity=1.0) == 0.0
    assert adcc(average_drop=1.0, coherency=0.9, complexity=0.2) == 0.0
    assert adcc(average_drop=0.1, coherency=0.0, complexity=0.2) == 0.0
    assert math.isnan(adcc(math.nan, 0.9, 0.2))
    assert adcc_case(0.1, 0.9, 1.0) == "adcc_zero_term" and adcc_case(0.1, 0.9, 0.2) is None
    # O == 0: the masked input lost all confidence, AD == 1.
    s = score_maps(_ramp(4, 4), _ramp(4, 4), y=0.5, o=0.0, class_idx=0, input_size=(8, 8))
    assert s.average_drop == 1.0 and s.adcc == 0.0 and s.flags == ("adcc_zero_term",)
    # A negated map: Coh ~ 0 up to rounding, and ADCC tends to 0 with it.
    s = score_maps(_ramp(4, 4), 1 - _ramp(4, 4), y=0.5, o=0.4, class_idx=0, input_size=(8, 8))
    assert s.coherency == pytest.approx(0.0, abs=1e-12) and s.adcc == pytest.approx(0, abs=1e-12)


def test_nan_map_is_flagged_and_undefined() -> None:
    m = _ramp(4, 4).clone()
    m[:, :] = math.nan
    s = score_maps(m, _ramp(4, 4), 0.5, 0.4, 0, (8, 8))
    assert "nan_map" in s.flags
    assert math.isnan(s.complexity) and math.isnan(s.coherency) and math.isnan(s.adcc)


# --- end to end on a tiny CNN ----------------------------------------------------------------


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(self.features(x)).flatten(1)))


def _explainer(mc: bool, method: str = "gradcam") -> Explainer:
    return Explainer(
        TinyNet(), method, passes=6, mc=mc, target_layer="features.3", device="cpu", seed=0
    )


def _x(seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mc", [False, True])
def test_score_explanation_follows_the_contract(mc: bool) -> None:
    ex, x = _explainer(mc), _x()
    s = score_explanation(ex, x)
    for value in (s.average_drop, s.coherency, s.complexity, s.adcc):
        assert 0.0 <= value <= 1.0
    assert s.input_size == (16, 16) and s.map_size == tuple(ex(x).mean.shape) == (8, 8)

    # Recompute by hand from the explainer's own outputs.
    r = ex(x)
    up = F.interpolate(r.mean[None, None], size=(16, 16), mode="bilinear", align_corners=False)[
        0, 0
    ]
    e = up * x
    r2 = ex(e, class_idx=r.class_idx)
    up2 = F.interpolate(r2.mean[None, None], size=(16, 16), mode="bilinear", align_corners=False)
    y, o = float(r.mean_probs[r.class_idx]), float(r2.mean_probs[r.class_idx])
    corr = np.corrcoef(up.numpy().ravel(), up2.numpy().ravel())[0, 1]

    assert s.class_idx == r.class_idx and r2.class_idx == r.class_idx
    assert s.y == pytest.approx(y) and s.o == pytest.approx(o)
    assert s.average_drop == pytest.approx(max(0.0, y - o) / y)
    assert s.coherency == pytest.approx((corr + 1) / 2, abs=1e-6)
    assert s.complexity == pytest.approx(float(up.abs().mean()), abs=1e-6)
    expected = 3 / (1 / s.coherency + 1 / (1 - s.complexity) + 1 / (1 - s.average_drop))
    assert s.adcc == pytest.approx(expected)
    if mc:  # the proposed method: Y is the MC average, not one pass or the deterministic model
        assert r.probs.shape[0] == 6
        deterministic = torch.softmax(ex.model.eval()(x).detach(), -1)[0, r.class_idx]
        assert s.y != pytest.approx(float(deterministic), abs=1e-6)
        assert s.y == pytest.approx(float(r.probs[:, r.class_idx].mean()))
    else:
        assert s.y == pytest.approx(
            float(torch.softmax(ex.model.eval()(x).detach(), -1)[0, r.class_idx])
        )


def test_score_explanation_explains_a_requested_class() -> None:
    ex, x = _explainer(False), _x()
    other = (ex(x).class_idx + 1) % 3
    s = score_explanation(ex, x, class_idx=other)
    assert s.class_idx == other
    assert s.y == pytest.approx(float(ex(x, class_idx=other).mean_probs[other]))


def test_batched_scores_match_single_images_for_the_original() -> None:
    ex, x = _explainer(False), _x(batch=2)
    batched = score_explanations(ex, x)
    singles = [score_explanation(ex, x[i : i + 1]) for i in range(2)]
    for a, b in zip(batched, singles, strict=True):
        assert a.class_idx == b.class_idx
        for name in ("average_drop", "coherency", "complexity", "adcc", "y", "o"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), abs=1e-5)
    with pytest.raises(ValueError):
        score_explanation(ex, x)


# --- aggregation -----------------------------------------------------------------------------


def _score(ad: float, coh: float, com: float, flags: tuple[str, ...] = ()) -> ExplanationScore:
    return ExplanationScore(ad, coh, com, adcc(ad, coh, com), 0, 0.5, 0.4, (4, 4), (16, 16), flags)


def test_aggregate_both_ways_with_a_nan_component() -> None:
    scores = [
        _score(0.1, 0.9, 0.2),
        _score(0.3, 0.7, 0.4),
        _score(0.2, math.nan, 0.0, ("flat_map", "adcc_undefined")),
    ]
    summary = aggregate(scores)
    assert summary["images"] == 3 and summary["adcc_images"] == 2
    assert summary["mean_average_drop"] == pytest.approx(0.2)
    assert summary["mean_coherency"] == pytest.approx(0.8)  # the NaN is left out
    assert summary["mean_complexity"] == pytest.approx(0.2)
    assert summary["mean_of_per_image_adcc"] == pytest.approx(
        (adcc(0.1, 0.9, 0.2) + adcc(0.3, 0.7, 0.4)) / 2
    )
    assert summary["adcc_of_mean_components"] == pytest.approx(3 / (1 / 0.8 + 1 / 0.8 + 1 / 0.8))
    counts = summary["flag_counts"]
    assert set(counts) == set(FLAGS)
    assert counts["flat_map"] == 1 and counts["adcc_undefined"] == 1 and counts["zero_y"] == 0


def test_aggregate_of_nothing_is_nan_not_an_error() -> None:
    summary = aggregate([])
    assert summary["images"] == 0 and math.isnan(summary["mean_of_per_image_adcc"])
    assert math.isnan(summary["adcc_of_mean_components"])


def test_paired_comparison_golden_values() -> None:
    from app.evaluate.comparison import paired_comparison, verdict

    def records(values: list[float | None], recording: str = "a") -> list[dict[str, object]]:
        return [{"recording": recording, "frame": i, "adcc": v} for i, v in enumerate(values)]

    original = records([0.5, 0.6, 0.7, None, 0.8]) + records([0.2], "b")
    proposed = records([0.6, 0.6, 0.6, 0.9, math.nan]) + records([0.5], "b")
    c = paired_comparison(original, proposed, seed=3)
    assert c["pairs"] == 4  # frame 3 (original undefined) and frame 4 (proposed NaN) drop out
    assert c["mean_difference"] == pytest.approx((0.1 + 0.0 - 0.1 + 0.3) / 4)
    assert (c["higher"], c["tied"], c["lower"]) == (2, 1, 1)
    assert c["at_least_as_good"] == pytest.approx(0.75)
    assert c["per_recording"] == pytest.approx({"a": 0.0, "b": 0.3})
    assert c["ci_low"] <= c["mean_difference"] <= c["ci_high"]
    assert c == paired_comparison(original, proposed, seed=3)  # seeded
    assert verdict(0.01, 0.2) == "proposed higher" and verdict(-0.2, -0.01) == "proposed lower"
    assert verdict(-0.1, 0.1) == "no detectable difference"
    assert paired_comparison(original, [], seed=0)["verdict"] == "no paired images"
