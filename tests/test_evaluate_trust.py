"""The trust report (:mod:`app.evaluate.trust`): known answers on synthetic probabilities, the
bootstrap over recordings, cross-fitting, bad inputs, and ``python -m app evaluate`` writing it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from app.calibration.fitting import CalibrationSettings, error_auroc, fit_mode
from app.calibration.reliability import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from app.calibration.rules import Calibration
from app.calibration.temperature import fit_temperature, scaled_probabilities
from app.cli import main
from app.evaluate import trust
from app.evaluate.tables import TRUST_FILES
from app.evaluate.trust import (
    cross_fitted,
    risk_coverage,
    trust_report,
    uncertainty_signals,
    window_signal,
)
from tests.test_evaluate_cli import _args, setup  # noqa: F401  (the phantom data and checkpoint)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _synthetic(
    recordings: int = 4, per: int = 30, passes: int = 4, classes: int = 3, seed: int = 0
) -> dict[str, np.ndarray]:
    """Noisy 3-class probabilities: deterministic, MC passes, labels, recordings, frames."""
    rng = np.random.default_rng(seed)
    n = recordings * per
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) * 2.0
    logits[np.arange(n), labels] += 1.5
    return {
        "deterministic": _softmax(logits),
        "passes": _softmax(logits[:, None, :] + rng.normal(size=(n, passes, classes)) * 0.7),
        "labels": labels,
        "recordings": np.repeat([f"rec{i}" for i in range(recordings)], per),
        "frames": np.tile(np.arange(per) * 3, recordings),
        "mean_cv": rng.random(n),
    }


def _figures(report: trust.TrustReport, predictions: str, scaling: str) -> trust.ProbabilityFigures:
    return next(
        p for p in report.probabilities if (p.predictions, p.scaling) == (predictions, scaling)
    )


def _signal(
    report: trust.TrustReport, predictions: str, signal: str, window: int = 1
) -> trust.SignalFigures:
    return next(
        s
        for s in report.signals
        if (s.predictions, s.signal, s.window) == (predictions, signal, window)
    )


def test_a_perfectly_calibrated_set_has_ece_near_zero_and_temperature_near_one() -> None:
    rng = np.random.default_rng(1)
    n = 8_000
    confidence = rng.uniform(0.5, 1.0, n)
    right = rng.random(n) < confidence  # right with probability equal to the confidence
    labels = np.where(right, 0, 1)
    p = np.stack([confidence, 1.0 - confidence], axis=1)
    recordings = np.repeat(["a", "b"], n // 2)
    report = trust_report(
        p, p[:, None, :], labels, recordings, np.tile(np.arange(n // 2), 2), bootstrap=50
    )
    raw = _figures(report, "deterministic", "none")
    assert raw.ece.value < 0.025
    assert raw.ece.low <= raw.ece.value <= raw.ece.high
    assert raw.ece.value == pytest.approx(expected_calibration_error(p, labels))
    for temperature in report.cross_fitted["deterministic"].temperatures.values():
        assert temperature == pytest.approx(1.0, abs=0.1)
    # The reliability diagram follows the diagonal.
    filled = raw.reliability.count > 400
    assert filled.sum() >= 6
    assert np.allclose(
        raw.reliability.accuracy[filled], raw.reliability.confidence[filled], atol=0.05
    )


def test_a_signal_that_ranks_errors_perfectly_has_auroc_one_and_the_ideal_aurc() -> None:
    rng = np.random.default_rng(2)
    recordings, per = 3, 40
    n = recordings * per
    labels = rng.integers(0, 2, n)
    wrong = rng.random(n) < 0.3
    top = np.where(wrong, rng.uniform(0.5, 0.6, n), rng.uniform(0.7, 0.99, n))
    predicted = np.where(wrong, 1 - labels, labels)
    p = np.zeros((n, 2))
    p[np.arange(n), predicted] = top
    p[np.arange(n), 1 - predicted] = 1.0 - top
    report = trust_report(
        p,
        np.repeat(p[:, None, :], 3, axis=1),
        labels,
        np.repeat(["a", "b", "c"], per),
        np.tile(np.arange(per), recordings),
        bootstrap=100,
    )
    for predictions in ("deterministic", "mc_mean"):
        figures = _signal(report, predictions, "max_probability")
        assert figures.errors == wrong.sum()
        assert figures.auroc.value == pytest.approx(1.0)
        assert figures.auroc.low == pytest.approx(1.0) and figures.auroc.high == pytest.approx(1.0)
        assert figures.aurc.value == pytest.approx(figures.curve.ideal_aurc)
        e, k = wrong.sum(), np.arange(1, n + 1)
        assert figures.curve.ideal_aurc == pytest.approx(np.mean(np.maximum(k - (n - e), 0) / k))
        assert figures.curve.error_rate == pytest.approx(wrong.mean())


def test_risk_coverage_known_answers() -> None:
    curve = risk_coverage([0.0, 1.0, 2.0, 3.0], [False, True, False, True])
    assert np.allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    assert np.allclose(curve.risk, [0.0, 1 / 2, 1 / 3, 2 / 4])
    assert curve.aurc == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert curve.ideal_aurc == pytest.approx((0 + 0 + 1 / 3 + 2 / 4) / 4)
    # Tied frames count in random order: the expected risk, whatever their order in the input.
    for wrong in ([True, False], [False, True]):
        assert np.allclose(risk_coverage([0.5, 0.5], wrong).risk, [0.5, 0.5])


def test_uncertainty_signals_are_oriented_as_uncertainty() -> None:
    passes = np.array([[[0.9, 0.1], [0.7, 0.3]], [[0.5, 0.5], [0.5, 0.5]]])
    p = passes.mean(axis=1)
    signals = uncertainty_signals(p, passes, np.array([0.1, np.nan]))
    assert np.allclose(signals["max_probability"], [0.2, 0.5])
    assert signals["entropy"][1] == pytest.approx(math.log(2))
    assert signals["entropy"][0] < signals["entropy"][1]
    assert signals["mutual_information"][0] > 0 and signals["mutual_information"][1] == 0
    assert np.allclose(signals["spread"], [0.1, 0.0])  # population std of p(class 0)
    assert signals["mean_cv"][0] == 0.1 and math.isnan(signals["mean_cv"][1])
    with pytest.raises(ValueError, match="unknown signal"):
        uncertainty_signals(p, passes, names=("nope",))
    with pytest.raises(ValueError, match="mean_cv is needed"):
        uncertainty_signals(p, passes, names=("mean_cv",))


def test_window_signal() -> None:
    values = np.array([1.0, 10.0, 3.0, 20.0, 5.0, np.nan])
    recordings = np.array(["a", "b", "a", "b", "a", "b"])
    frames = np.array([4, 0, 0, 5, 2, 9])  # not in frame order
    assert np.array_equal(window_signal(values, recordings, frames, 1), values, equal_nan=True)
    # a in frame order: 3 (0), 5 (2), 1 (4); b: 10 (0), 20 (5), NaN (9).
    assert np.allclose(
        window_signal(values, recordings, frames, 2), [3.0, 10.0, 3.0, 15.0, 4.0, 20.0]
    )
    assert np.allclose(
        window_signal(values, recordings, frames, 10), [3.0, 10.0, 3.0, 15.0, 4.0, 15.0]
    )
    assert math.isnan(window_signal([np.nan, 1.0], ["a", "a"], [0, 1], 1)[0])
    with pytest.raises(ValueError, match="window"):
        window_signal(values, recordings, frames, 0)
    with pytest.raises(ValueError, match="shape"):
        window_signal(values, recordings[:3], frames, 2)


def test_the_report_holds_the_frame_and_window_signals() -> None:
    data = _synthetic()
    report = trust_report(**data, window=3, bootstrap=20)
    names = {(s.predictions, s.signal, s.window) for s in report.signals}
    assert names == {
        (m, s, w) for m, signals in trust.MODE_SIGNALS.items() for s in signals for w in (1, 3)
    }
    frame, windowed = (
        _signal(report, "mc_mean", "entropy"),
        _signal(report, "mc_mean", "entropy", 3),
    )
    assert frame.auroc.value != windowed.auroc.value
    once = trust_report(**data, window=1, bootstrap=20)
    assert len(once.signals) == len(report.signals) // 2  # the window of 1 is the frame signal


def test_bootstrap_figures_are_the_point_figures_at_one_draw_per_recording() -> None:
    """A resample is integer weights on recordings: at weight 1 each, every bootstrap formula
    gives the shared function's value; at other weights, its value on the repeated frames."""
    data = _synthetic(recordings=5, per=25)
    names, rid = np.unique(data["recordings"], return_inverse=True)
    r = len(names)
    p, y = data["passes"].mean(axis=1), data["labels"]
    p[:3] = [1.0, 0.0, 0.0]  # a confidence of exactly 1 has a bin of its own in torchmetrics
    u = uncertainty_signals(p, data["passes"], names=("entropy",))["entropy"]
    wrong = p.argmax(axis=1) != y
    frames, errors = trust._grouped(u, wrong, rid, r)
    ece = trust._ece_statistic(p, y, rid, r)
    auroc, aurc = trust._auroc_statistic(frames, errors), trust._aurc_statistic(frames, errors)
    nll = trust._mean_statistic(negative_log_likelihood, p, y, rid, r)
    brier = trust._mean_statistic(brier_score, p, y, rid, r)
    rng = np.random.default_rng(3)
    for counts in [np.ones(r, dtype=int), *rng.integers(0, 3, size=(4, r))]:
        rows = np.concatenate([np.tile(np.flatnonzero(rid == i), c) for i, c in enumerate(counts)])
        c = counts[None].astype(np.float64)
        expected = expected_calibration_error(p[rows], y[rows])
        assert ece(c)[0] == pytest.approx(expected, abs=1e-6)
        assert auroc(c)[0] == pytest.approx(error_auroc(-u[rows], wrong[rows]), abs=1e-6)
        assert aurc(c)[0] == pytest.approx(risk_coverage(u[rows], wrong[rows]).aurc)
        assert nll(c)[0] == pytest.approx(negative_log_likelihood(p[rows], y[rows]))
        assert brier(c)[0] == pytest.approx(brier_score(p[rows], y[rows]))


def test_the_bootstrap_resamples_recordings_not_frames() -> None:
    # Recording a: every frame right; b: every frame wrong. Resampling recordings gives an
    # accuracy of 0, 1/2 or 1; resampling frames would give about 0.5 +- 0.1.
    n = 50
    p = np.tile([[0.8, 0.2]], (2 * n, 1))
    labels = np.repeat([0, 1], n)
    recordings = np.repeat(["a", "b"], n)
    report = trust_report(p, p[:, None, :], labels, recordings, np.tile(np.arange(n), 2))
    accuracy = _figures(report, "deterministic", "none").accuracy
    assert accuracy.value == 0.5 and (accuracy.low, accuracy.high) == (0.0, 1.0)
    # AUROC is undefined in the resamples that drew one recording twice (no error, or no
    # right frame): they are skipped and counted.
    auroc = _signal(report, "deterministic", "max_probability").auroc
    assert auroc.value == pytest.approx(0.5) and 300 < auroc.resamples < 700


def test_one_recording_collapses_the_intervals_and_cannot_be_cross_fitted() -> None:
    data = _synthetic(recordings=1, per=60)
    report = trust_report(**data, bootstrap=30)
    assert report.cross_fitting is not None and "nothing to fit on" in report.cross_fitting
    assert report.cross_fitted == {} and report.selective == ()
    assert {p.scaling for p in report.probabilities} == {"none"}
    assert any("cross-fitting not possible" in note for note in report.notes)
    for figures in report.probabilities:
        for e in (figures.accuracy, figures.ece, figures.nll, figures.brier):
            assert e.low == pytest.approx(e.value) and e.high == pytest.approx(e.value)
            assert e.resamples == 30
    for s in report.signals:
        assert s.aurc.low == pytest.approx(s.aurc.value) == pytest.approx(s.aurc.high)
    as_json = report.to_dict()
    assert not as_json["cross_fitting"]["available"]
    json.dumps(as_json, allow_nan=False)
    with pytest.raises(ValueError, match="at least two recordings"):
        cross_fitted(data["passes"], data["labels"], data["recordings"])


def test_cross_fitting_never_uses_a_recordings_own_frames() -> None:
    data = _synthetic(recordings=3, per=40)
    passes, labels, recordings = data["passes"], data["labels"], data["recordings"]
    before = cross_fitted(passes, labels, recordings)
    for name, temperature in before.temperatures.items():
        others = recordings != name
        assert temperature == pytest.approx(fit_temperature(passes[others], labels[others]))
    # Make rec0's own frames confidently wrong: its own temperature must not move, the others'
    # (fitted with rec0 among their calibration frames) must.
    changed = passes.copy()
    mine = recordings == "rec0"
    wrong_class = (labels[mine] + 1) % 3
    changed[mine] = _softmax(8.0 * np.eye(3)[wrong_class])[:, None, :]
    after = cross_fitted(changed, labels, recordings)
    assert after.temperatures["rec0"] == before.temperatures["rec0"]
    assert after.signals["rec0"] == before.signals["rec0"]
    assert after.temperatures["rec1"] != before.temperatures["rec1"]
    assert np.allclose(
        after.probabilities[mine], scaled_probabilities(changed[mine], after.temperatures["rec0"])
    )
    # The held-out rules are the ones fitted on the others, applied to the held-out frames.
    rule, _ = fit_mode(changed[~mine], labels[~mine], CalibrationSettings())
    applied = rule.apply(changed[mine])
    assert np.array_equal(after.accepted[mine], [f.accepted for f in applied])
    assert all(
        set(np.flatnonzero(row)) == set(f.prediction_set.tolist())
        for row, f in zip(after.sets[mine], applied, strict=True)
    )


def test_a_stored_calibration_fitted_on_evaluated_recordings_is_flagged() -> None:
    data = _synthetic(recordings=3, per=30)
    mine = data["recordings"] == "rec0"
    mc, _ = fit_mode(data["passes"][mine], data["labels"][mine], CalibrationSettings())
    det, _ = fit_mode(
        data["deterministic"][mine][:, None], data["labels"][mine], CalibrationSettings()
    )
    calibration = Calibration(mc, det, {"recordings": ["rec0", "elsewhere"]})
    report = trust_report(**data, calibration=calibration, bootstrap=20)
    assert report.stored is not None and report.stored.overlap == ("rec0",)
    assert report.stored.optimistic
    assert any("optimistic" in note for note in report.notes)
    stored = _figures(report, "mc_mean", "stored")
    assert stored.temperature == mc.temperature
    assert stored.ece.value == pytest.approx(
        expected_calibration_error(
            scaled_probabilities(data["passes"], mc.temperature), data["labels"]
        )
    )
    rules = {(s.rule, s.predictions) for s in report.selective}
    assert rules == {(r, m) for r in ("cross-fitted", "stored") for m in trust.MODES}
    as_json = report.to_dict()
    assert as_json["stored_calibration"]["optimistic"] is True
    json.dumps(as_json, allow_nan=False)
    apart = Calibration(mc, det, {"recordings": ["elsewhere"]})
    assert not trust_report(**data, calibration=apart, bootstrap=5).stored.optimistic


def test_bad_inputs_are_refused_with_a_clear_message() -> None:
    data = _synthetic(recordings=2, per=10)
    cases = [
        ({"labels": data["labels"][:-1]}, "labels must have shape"),
        ({"recordings": data["recordings"][:-1]}, "recordings and frames must have shape"),
        ({"frames": data["frames"].astype(float)}, "integer frame indices"),
        ({"passes": data["passes"][:-1]}, "passes must be"),
        ({"passes": data["passes"][:, 0]}, "passes must be"),
        ({"mean_cv": data["mean_cv"][:-1]}, "mean_cv must have shape"),
        ({"frames": np.zeros(20, dtype=int)}, "listed twice"),
        ({"window": 0}, "window must be"),
        ({"bootstrap": 0}, "bootstrap must be"),
        ({"deterministic": data["deterministic"] * 2}, "sum to 1"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            trust_report(**{**data, "bootstrap": 5, **change})


def test_evaluate_writes_the_trust_report(
    setup: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, checkpoint = setup
    out = tmp_path / "out"
    args = [*_args(data, checkpoint, out), "--bootstrap", "50", "--trust-window", "2"]
    args[args.index("--t-study") + 1] = ""
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{out / 'trust.md'}" in printed
    for name in TRUST_FILES:
        assert (out / name).stat().st_size > 0, name
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "trust.json").read_text())
    assert report["frames"] == 4 and report["passes"] == 3 and report["window"] == 2
    assert report["recordings"] == sorted(
        ["glioblastoma/glioblastoma_1.avi", "meningioma/meningioma_1.avi"]
    )
    assert report["bootstrap"]["resamples"] == 50 and report["cross_fitting"]["available"]
    assert {
        (s["signal"], s["window"]) for s in report["signals"] if s["predictions"] == "mc_mean"
    } >= {
        ("mean_cv", 1),
        ("mean_cv", 2),
    }
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    for record in scores:
        assert ("mean_cv" in record) == (record["mode"] == "proposed")
    markdown = (out / "trust.md").read_text()
    assert "## Probabilities" in markdown and "cross-fitted" in markdown and "AURC" in markdown

    # A rerun (every score reused) gives the same report: the probabilities are seeded.
    assert main(args) == 0
    assert json.loads((out / "trust.json").read_text()) == report
    capsys.readouterr()

    bare = tmp_path / "bare"
    no_trust = [*_args(data, checkpoint, bare), "--no-trust"]
    no_trust[no_trust.index("--t-study") + 1] = ""
    no_trust[no_trust.index("--methods") + 1] = "gradcam"
    assert main(no_trust) == 0
    assert "trust.md" not in capsys.readouterr().out
    assert not any((bare / name).exists() for name in TRUST_FILES)
