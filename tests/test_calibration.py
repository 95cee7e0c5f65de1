"""The calibration mathematics on synthetic data from known models (app/calibration/)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from app.calibration.abstention import AbstentionRule, clopper_pearson_upper, fit_abstention
from app.calibration.conformal import conformal_rank, fit_conformal
from app.calibration.inputs import PROBABILITY_FLOOR
from app.calibration.reliability import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)
from app.calibration.temperature import TEMPERATURE_BOUNDS, fit_temperature, scaled_probabilities

ROOT = Path(__file__).resolve().parents[1]
OVERCONFIDENCE = 3.0


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample_labels(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One label per row of ``p`` drawn from that row: ``p`` is then calibrated by design."""
    drawn = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return np.minimum(drawn, p.shape[1] - 1)


def known_model(seed: int, n: int, k: int = 3, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Logits z, the true (calibrated) probabilities softmax(z) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, scale, (n, k))
    p = softmax(z)
    return z, p, sample_labels(rng, p)


@pytest.fixture(scope="module")
def overconfident() -> dict[str, object]:
    """A known model made overconfident by multiplying its logits by 3, and its fitted tau."""
    z, p_true, y = known_model(seed=0, n=4000)
    p_over = softmax(OVERCONFIDENCE * z)
    return {"z": z, "true": p_true, "over": p_over, "y": y, "tau": fit_temperature(p_over, y)}


# --- temperature scaling ---------------------------------------------------------------------


def test_scaling_the_log_probabilities_is_scaling_the_logits(overconfident) -> None:
    z, p_over = overconfident["z"], overconfident["over"]
    assert np.allclose(scaled_probabilities(p_over, OVERCONFIDENCE), softmax(z), atol=1e-12)
    assert np.allclose(scaled_probabilities(p_over, 1.0), p_over, atol=1e-12)


def test_fit_temperature_recovers_the_overconfidence_and_lowers_the_ece(overconfident) -> None:
    y, tau = overconfident["y"], overconfident["tau"]
    assert tau == pytest.approx(OVERCONFIDENCE, rel=0.10)
    before = expected_calibration_error(overconfident["over"], y)
    after = expected_calibration_error(scaled_probabilities(overconfident["over"], tau), y)
    true = expected_calibration_error(overconfident["true"], y)
    assert after < before / 4
    assert abs(after - true) < 0.01
    scaled_nll = negative_log_likelihood(scaled_probabilities(overconfident["over"], tau), y)
    assert scaled_nll < negative_log_likelihood(overconfident["over"], y)


def test_mc_passes_are_scaled_one_by_one_then_averaged() -> None:
    rng = np.random.default_rng(1)
    z, _, y = known_model(seed=1, n=2000)
    passes = softmax(OVERCONFIDENCE * (z[:, None, :] + rng.normal(0.0, 0.3, (2000, 8, 3))))
    tau = fit_temperature(passes, y)
    per_pass = np.stack([scaled_probabilities(passes[:, t], tau) for t in range(8)], axis=1)
    assert np.allclose(scaled_probabilities(passes, tau), per_pass.mean(axis=1), atol=1e-12)
    assert 1.5 < tau < 5.0
    before = expected_calibration_error(passes.mean(axis=1), y)
    assert expected_calibration_error(scaled_probabilities(passes, tau), y) < before / 2


def test_frames_without_passes_are_one_pass(overconfident) -> None:
    p, y = overconfident["over"][:500], overconfident["y"][:500]
    assert np.array_equal(scaled_probabilities(p, 2.0), scaled_probabilities(p[:, None, :], 2.0))
    assert fit_temperature(p, y) == fit_temperature(p[:, None, :], y)


def test_a_temperature_at_the_bound_means_the_optimum_lies_beyond_it() -> None:
    p = np.array([[0.9, 0.1], [0.2, 0.8]] * 10)
    y = np.array([0, 1] * 10)  # every frame right: sharpening lowers the NLL without end
    assert fit_temperature(p, y) == pytest.approx(TEMPERATURE_BOUNDS[0])


def test_a_probability_of_zero_is_floored_not_infinite() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert np.isfinite(scaled_probabilities(p, 2.0)).all()
    assert fit_temperature(p, np.array([1, 0])) > 1.0
    assert negative_log_likelihood(p, np.array([1, 0])) == pytest.approx(
        (-math.log(PROBABILITY_FLOOR) - math.log(0.5)) / 2
    )


GOOD = np.array([[0.7, 0.3], [0.4, 0.6]])
BAD_INPUTS = {
    "empty": (np.zeros((0, 2)), np.zeros(0, dtype=int), "empty"),
    "one class": (np.ones((2, 1)), np.array([0, 0]), "at least 2 classes"),
    "1-D": (np.array([0.5, 0.5]), np.array([0]), "must be"),
    "NaN": (np.array([[np.nan, 0.5], [0.4, 0.6]]), np.array([0, 1]), "NaN"),
    "negative": (np.array([[1.2, -0.2], [0.4, 0.6]]), np.array([0, 1]), "negative"),
    "sum": (np.array([[0.7, 0.2], [0.4, 0.6]]), np.array([0, 1]), "sum to 1"),
    "label range": (GOOD, np.array([0, 2]), r"in \[0, 2\)"),
    "negative label": (GOOD, np.array([-1, 0]), r"in \[0, 2\)"),
    "float labels": (GOOD, np.array([0.0, 1.0]), "integer"),
    "label count": (GOOD, np.array([0, 1, 1]), "shape"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize(
    "fit",
    [
        fit_temperature,
        expected_calibration_error,
        negative_log_likelihood,
        brier_score,
        reliability_diagram,
        lambda p, y: fit_conformal(p, y, coverage=0.9),
    ],
    ids=["temperature", "ece", "nll", "brier", "diagram", "conformal"],
)
def test_bad_probabilities_or_labels_are_refused(case: str, fit) -> None:
    probabilities, labels, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        fit(probabilities, labels)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf])
def test_a_temperature_must_be_finite_and_positive(temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        scaled_probabilities(GOOD, temperature)


def test_mc_passes_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        scaled_probabilities(np.zeros((2, 0, 3)), 1.0)


# --- reliability -----------------------------------------------------------------------------


def test_ece_matches_torchmetrics_documented_example() -> None:
    p = np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    assert expected_calibration_error(p, np.array([0, 1, 2, 0]), n_bins=3) == pytest.approx(0.2)


def test_the_reliability_diagram_adds_up_to_the_ece(overconfident) -> None:
    p, y = overconfident["over"], overconfident["y"]
    table = reliability_diagram(p, y)
    assert len(table.count) == 15 and table.count.sum() == len(y)
    full = table.count > 0
    gaps = np.abs(table.accuracy[full] - table.confidence[full]) * table.count[full]
    assert gaps.sum() / len(y) == pytest.approx(expected_calibration_error(p, y), abs=1e-6)
    assert np.isnan(table.confidence[~full]).all()  # a top probability is at least 1/3


def test_a_certain_frame_falls_in_the_last_bin() -> None:
    table = reliability_diagram(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0, 1]), n_bins=4)
    assert table.count.tolist() == [0, 0, 1, 1]
    assert table.accuracy[-1] == 1.0 and table.accuracy[2] == 0.0  # the tie goes to class 0


def test_nll_and_brier_on_a_hand_made_example() -> None:
    p, y = np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([0, 0])
    assert negative_log_likelihood(p, y) == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2)
    assert brier_score(p, y) == pytest.approx((0.08 + 0.72) / 2)


# --- abstention ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 10, 100, 1000])
@pytest.mark.parametrize("delta", [0.01, 0.05, 0.2])
def test_clopper_pearson_with_no_error_is_the_closed_form(n: int, delta: float) -> None:
    assert clopper_pearson_upper(0, n, delta) == pytest.approx(1 - delta ** (1 / n), rel=1e-9)


def test_clopper_pearson_known_values() -> None:
    assert clopper_pearson_upper(0, 100, 0.05) == pytest.approx(0.0295, abs=5e-5)
    for k, n in [(1, 10), (5, 100), (30, 1000)]:
        upper = clopper_pearson_upper(k, n, 0.05)
        assert binom.cdf(k, n, upper) == pytest.approx(0.05, rel=1e-6)  # P(<= k errors) = delta
    assert clopper_pearson_upper(7, 7, 0.05) == 1.0
    assert clopper_pearson_upper(0, 0, 0.05) == 1.0
    both = clopper_pearson_upper(np.array([0, 3]), np.array([100, 3]), 0.05)
    assert both.shape == (2,) and both[1] == 1.0


def test_clopper_pearson_is_monotone() -> None:
    in_errors = clopper_pearson_upper(np.arange(101), 100, 0.05)
    in_trials = clopper_pearson_upper(5, np.arange(5, 500), 0.05)
    in_delta = [clopper_pearson_upper(5, 100, d) for d in (0.01, 0.05, 0.1, 0.5)]
    assert (np.diff(in_errors) > 0).all()
    assert (np.diff(in_trials) < 0).all()
    assert (np.diff(in_delta) < 0).all()


ERROR_SCALE = 0.5


def errors_at_low_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1], a frame wrong with probability 0.5 (1 - score)^4."""
    scores = rng.random(n)
    return scores, rng.random(n) < ERROR_SCALE * (1 - scores) ** 4


def true_accepted_error(threshold: float) -> float:
    """E[error | score >= threshold] of :func:`errors_at_low_scores`, in closed form."""
    return ERROR_SCALE * (1 - threshold) ** 4 / 5


def test_abstention_keeps_the_error_among_accepted_frames_on_fresh_data() -> None:
    rng = np.random.default_rng(3)
    rule = fit_abstention(*errors_at_low_scores(rng, 5000), target_error=0.02, delta=0.05)
    assert rule.accepted_error <= rule.error_bound <= 0.02
    assert rule.n == 5000 and rule.accepted_fraction > 0.5
    scores, wrong = errors_at_low_scores(rng, 200_000)
    accepted = rule.accepts(scores)
    assert wrong[accepted].mean() <= 0.02
    assert accepted.mean() == pytest.approx(rule.accepted_fraction, abs=0.02)
    assert "accepts scores >= " in rule.describe()


def test_abstention_guarantee_holds_over_repeated_calibration_samples() -> None:
    rng = np.random.default_rng(4)
    rules = [
        fit_abstention(*errors_at_low_scores(rng, 1000), target_error=0.02, delta=0.1)
        for _ in range(200)
    ]
    violated = [true_accepted_error(r.threshold) > 0.02 for r in rules]
    assert np.mean(violated) <= 0.1
    assert np.mean([r.accepted_fraction for r in rules]) > 0.4


def test_the_sequence_stops_at_the_first_failure() -> None:
    # 100 right, then 50 wrong, then 5000 right frames, by decreasing score: accepting all of
    # them would pass (50 errors of 5150), but the sequence must not step over the wrong ones.
    wrong = np.r_[np.zeros(100, bool), np.ones(50, bool), np.zeros(5000, bool)]
    scores = np.linspace(1.0, 0.0, len(wrong))
    assert clopper_pearson_upper(50, 5150, 0.05) <= 0.05
    rule = fit_abstention(scores, wrong, target_error=0.05, delta=0.05)
    accepted = int(rule.accepts(scores).sum())
    assert 100 <= accepted < 150
    assert clopper_pearson_upper(int(wrong[: accepted + 1].sum()), accepted + 1, 0.05) > 0.05


def test_tied_scores_are_accepted_or_abstained_together() -> None:
    scores = np.r_[np.full(500, 0.9), np.full(500, 0.6)]
    wrong = np.r_[np.zeros(500, bool), np.ones(500, bool)]
    rule = fit_abstention(scores, wrong, target_error=0.05, delta=0.05)
    assert rule.threshold == 0.9 and rule.accepted_fraction == 0.5 and rule.accepted_error == 0


@pytest.mark.parametrize(
    ("n", "error_scale", "target"), [(200, 0.0, 0.001), (5000, 1.0, 0.01)], ids=["few", "noisy"]
)
def test_an_unreachable_target_abstains_on_everything(n: int, error_scale: float, target) -> None:
    rng = np.random.default_rng(5)
    scores = rng.random(n)
    rule = fit_abstention(scores, rng.random(n) < error_scale, target_error=target, delta=0.05)
    assert rule.abstains_on_everything and rule.threshold == math.inf
    assert rule.accepted_fraction == 0.0 and math.isnan(rule.accepted_error)
    assert not rule.accepts(scores).any() and rule.accepts(1e9) is False
    assert rule.describe().startswith("abstains on every frame")


def test_accepts_takes_a_score_or_an_array() -> None:
    rule = AbstentionRule(0.5, 0.01, 0.05, 0.9, 0.005, 0.009, 1000)
    assert rule.accepts(0.5) is True and rule.accepts(0.49) is False
    assert rule.accepts(math.nan) is False
    assert rule.accepts(np.array([0.2, 0.7])).tolist() == [False, True]


@pytest.mark.parametrize(
    ("scores", "wrong", "message"),
    [
        (np.zeros(0), np.zeros(0, bool), "non-empty"),
        (np.array([0.5, np.nan]), np.array([False, True]), "NaN"),
        (np.array([0.5, 0.6]), np.array([False]), "shape"),
        (np.array([0.5, 0.6]), np.array([0, 2]), "booleans"),
        (np.array([0.5, 0.6]), np.array([0.0, 1.0]), "booleans"),
    ],
    ids=["empty", "nan", "length", "not 0/1", "float"],
)
def test_bad_abstention_inputs_are_refused(scores, wrong, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_abstention(scores, wrong, target_error=0.01, delta=0.05)


@pytest.mark.parametrize("level", ["target_error", "delta"])
@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, math.nan])
def test_abstention_levels_must_be_in_the_open_unit_interval(level: str, value: float) -> None:
    levels = {"target_error": 0.01, "delta": 0.05, level: value}
    with pytest.raises(ValueError, match=level):
        fit_abstention(np.array([0.5]), np.array([False]), **levels)


@pytest.mark.parametrize(
    ("errors", "n", "delta", "message"),
    [(5, 4, 0.05, "errors <= n"), (-1, 4, 0.05, "0 <= errors"), (1.0, 4, 0.05, "integers")],
)
def test_bad_clopper_pearson_inputs_are_refused(errors, n, delta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clopper_pearson_upper(errors, n, delta)


# --- conformal prediction sets ---------------------------------------------------------------


def test_conformal_sets_reach_the_coverage_on_exchangeable_frames() -> None:
    _, p, y = known_model(seed=6, n=2000, k=4, scale=2.0)
    rule = fit_conformal(p, y, coverage=0.95)
    _, p_test, y_test = known_model(seed=7, n=100_000, k=4, scale=2.0)
    sets = rule.sets(p_test)
    covered = sets[np.arange(len(y_test)), y_test].mean()
    assert 0.95 - 0.02 <= covered <= 0.95 + 0.02
    assert sets.sum(axis=1).mean() < 4


def test_the_finite_sample_quantile_on_a_hand_made_example() -> None:
    p_true = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55])  # scores 0.05 .. 0.45
    p, y = np.stack([p_true, 1 - p_true], axis=1), np.zeros(9, dtype=int)
    rule = fit_conformal(p, y, coverage=0.8)  # rank ceil(10 * 0.8) = 8: the 8th smallest score
    assert rule.threshold == pytest.approx(0.40) and not rule.includes_every_class
    assert rule.sets(np.array([[0.61, 0.39], [0.5, 0.5]])).tolist() == [[True, False], [True, True]]
    assert conformal_rank(19, 0.95) == 19 and conformal_rank(18, 0.95) == 19
    too_few = fit_conformal(p, y, coverage=0.95)  # rank 10 of 9 frames
    assert too_few.includes_every_class and too_few.threshold == math.inf
    assert too_few.sets(p).all()


def test_a_set_always_holds_the_top_class() -> None:
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]] * 10)
    rule = fit_conformal(p, np.zeros(30, dtype=int), coverage=0.5)  # threshold 0.2
    assert rule.sets(np.array([[0.4, 0.35, 0.25]])).tolist() == [[True, False, False]]


@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 6),
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
)
def test_sets_are_never_empty_and_grow_with_the_coverage(seed, k, a, b) -> None:
    rng = np.random.default_rng(seed)
    p = softmax(rng.normal(0.0, 2.0, (60, k)))
    y = rng.integers(0, k, 60)
    low, high = fit_conformal(p, y, coverage=min(a, b)), fit_conformal(p, y, coverage=max(a, b))
    test = softmax(rng.normal(0.0, 2.0, (40, k)))
    small, large = low.sets(test), high.sets(test)
    assert small.any(axis=1).all()
    assert (large | ~small).all()


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, math.nan])
def test_conformal_coverage_must_be_in_the_open_unit_interval(coverage: float) -> None:
    with pytest.raises(ValueError, match="coverage"):
        fit_conformal(GOOD, np.array([0, 1]), coverage=coverage)


# --- the package -----------------------------------------------------------------------------


def test_applying_a_fitted_rule_imports_neither_scipy_nor_torchmetrics() -> None:
    code = (
        "import sys\n"
        "import app.calibration.abstention, app.calibration.conformal, "
        "app.calibration.reliability, app.calibration.temperature\n"
        "print(sorted(m for m in ('scipy', 'torchmetrics', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
