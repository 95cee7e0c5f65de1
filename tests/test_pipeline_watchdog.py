"""The stall watchdog: rules on a fake clock, then a real stalled source in a pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.pipeline import IterableSource, Pipeline, PipelineSettings, StallReason
from app.pipeline.watchdog import StallWatchdog
from tests.pipeline_support import numbered_frames, tiny_checkpoint, wait_until


def test_threshold_is_one_second_or_five_frame_intervals() -> None:
    assert StallWatchdog(1 / 24).threshold_s == 1.0
    assert StallWatchdog(0.5).threshold_s == 2.5


def test_stall_fires_after_the_threshold_and_clears_on_a_frame() -> None:
    dog = StallWatchdog(0.04)
    dog.frame_arrived(10.0)
    dog.waiting(10.0)
    assert not dog.status(now=10.9).stalled
    status = dog.status(now=11.2)
    assert status.stalled and status.reason is StallReason.STALLED
    assert status.since_last_frame_s == pytest.approx(1.2)
    dog.frame_arrived(11.3)
    assert not dog.status(now=11.4).stalled


def test_waiting_for_the_consumer_or_paused_is_not_a_stall() -> None:
    dog = StallWatchdog(0.04)
    dog.frame_arrived(0.0)  # then the capture thread waits for the worker, not the source
    assert not dog.status(now=30.0).stalled
    dog.waiting(30.0)
    dog.set_paused(True)
    status = dog.status(now=40.0)
    assert not status.stalled and status.paused


def test_end_and_loss_are_reported_at_once_with_their_reason() -> None:
    dog = StallWatchdog(0.04)
    dog.ended()
    assert dog.status().reason is StallReason.END_OF_SOURCE
    dog.resumed()
    dog.lost()
    status = dog.status()
    assert status.stalled and status.reason is StallReason.DEVICE_LOST and status.message


def test_a_stalled_source_fires_the_watchdog_and_frames_clear_it(tmp_path: Path) -> None:
    settings = PipelineSettings(tiny_checkpoint(tmp_path / "m.pt"), passes=2, device="cpu")
    source = IterableSource(numbered_frames(400), fps=50.0, self_paced=True)
    with Pipeline(source, settings, mode="live", watchdog_min_s=0.2) as pipeline:
        assert wait_until(lambda: pipeline.last_result is not None)
        assert not pipeline.watchdog().stalled
        source.hold()
        assert wait_until(lambda: pipeline.watchdog().stalled, timeout=5.0)
        status = pipeline.watchdog()
        assert status.reason is StallReason.STALLED and status.since_last_frame_s >= 0.2
        source.release()
        assert wait_until(lambda: not pipeline.watchdog().stalled, timeout=5.0)
        assert pipeline.running
