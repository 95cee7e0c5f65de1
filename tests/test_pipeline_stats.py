"""Latency statistics, frame rates and counters."""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.stats import PipelineStats, RateMeter, SlidingWindow, WindowSummary


def test_latency_avg_p95_max_match_numpy() -> None:
    rng = np.random.default_rng(0)
    latencies_ms = rng.gamma(4.0, 12.0, size=500)
    stats = PipelineStats(window=200)
    for i, ms in enumerate(latencies_ms):
        capture = 100.0 + i * 0.04
        stats.record_result(capture, capture + ms / 1e3, {"explain": ms / 2, "total": ms})
    snap = stats.snapshot(now=100.0 + 500 * 0.04)
    window = latencies_ms[-200:]  # only the last 200 count
    assert snap.latency_ms.count == 200
    assert snap.latency_ms.avg == pytest.approx(window.mean(), rel=1e-9)
    assert snap.latency_ms.p95 == pytest.approx(np.percentile(window, 95), rel=1e-9)
    assert snap.latency_ms.max == pytest.approx(window.max(), rel=1e-9)
    assert snap.stages_ms["explain"].avg == pytest.approx(window.mean() / 2, rel=1e-9)
    assert snap.frames_processed == 500
    assert snap.output_fps == pytest.approx(25.0, rel=0.02)
    np.testing.assert_allclose(stats.latencies_ms(), window)


def test_display_latency_counts_from_capture_to_display() -> None:
    stats = PipelineStats()
    assert stats.snapshot().display_latency_ms.count == 0
    for i in range(10):
        stats.record_display(capture_time=float(i), displayed_at=i + 0.05 + 0.01 * i)
    summary = stats.snapshot(now=10.0).display_latency_ms
    expected = 50 + 10 * np.arange(10)
    assert summary.avg == pytest.approx(expected.mean())
    assert summary.max == pytest.approx(expected.max())
    assert "display latency" in stats.snapshot(now=10.0).readout()


def test_counters_and_input_rate() -> None:
    stats = PipelineStats()
    for i in range(48):
        stats.record_frame(capture_time=50.0 + i / 24.0, read_ms=1.5)
    stats.record_drop(3)
    stats.record_result_not_taken()
    stats.record_frame_error()
    snap = stats.snapshot(now=50.0 + 48 / 24.0)
    assert (snap.frames_read, snap.dropped_frames) == (48, 3)
    assert (snap.results_not_taken, snap.frame_errors) == (1, 1)
    assert snap.input_fps == pytest.approx(24.0, rel=0.03)
    assert snap.stages_ms["read"].avg == pytest.approx(1.5)
    stats.reset()
    assert stats.snapshot().frames_read == 0


def test_rate_meter_decays_when_events_stop() -> None:
    meter = RateMeter(window_s=1.0)
    for i in range(30):
        meter.tick(i * 0.1)  # 10 Hz for 3 s
    assert meter.rate(now=2.95) == pytest.approx(10.0, rel=0.11)
    assert meter.rate(now=10.0) == 0.0


def test_window_summary_of_nothing_is_nan() -> None:
    summary = SlidingWindow(5).summary()
    assert summary.count == 0 and np.isnan(summary.avg) and str(summary) == "-"
    assert WindowSummary.of([1.0, 2.0, 3.0]).max == 3.0
