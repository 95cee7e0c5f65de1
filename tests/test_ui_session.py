"""The viewer's pipeline session: opens off the caller's thread, keeps the old pipeline when an
open fails, discards superseded opens, and joins every thread on close."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.pipeline import IterableSource, PipelineSettings, SettingsError, SourceError
from app.ui.options import DEMO_CHECKPOINT
from app.ui.session import OpenOutcome, OpenRequest, PipelineSession, source_label
from tests.pipeline_support import numbered_frames


def _settings() -> PipelineSettings:
    return PipelineSettings(DEMO_CHECKPOINT, method="gradcam", passes=1, device="cpu")


def _wait_outcome(session: PipelineSession, timeout: float = 60.0) -> OpenOutcome:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = session.poll()
        if outcome is not None:
            return outcome
        time.sleep(0.02)
    raise AssertionError("the open did not finish")


def test_open_failures_keep_the_running_pipeline(tmp_path: Path) -> None:
    baseline = set(threading.enumerate())
    session = PipelineSession()
    try:
        session.open(OpenRequest(IterableSource(numbered_frames(4, 64, 64)), _settings()))
        assert session.opening
        first = _wait_outcome(session)
        assert first.ok and session.pipeline is not None
        running = session.pipeline

        session.open(OpenRequest(str(tmp_path / "missing.mp4"), _settings()))
        failed = _wait_outcome(session)
        assert isinstance(failed.error, SourceError) and "no such file" in str(failed.error)
        assert session.pipeline is running and running.running

        bad_model = _settings().replace(checkpoint=tmp_path / "none.pt")
        session.open(OpenRequest(IterableSource(numbered_frames(2, 64, 64)), bad_model))
        failed = _wait_outcome(session)
        assert isinstance(failed.error, SettingsError)
        assert session.pipeline is running
    finally:
        assert session.close()
    assert set(threading.enumerate()) <= baseline


def test_only_the_newest_open_counts() -> None:
    baseline = set(threading.enumerate())
    session = PipelineSession()
    first = OpenRequest(IterableSource(numbered_frames(4, 64, 64), name="first"), _settings())
    second = OpenRequest(IterableSource(numbered_frames(4, 64, 64), name="second"), _settings())
    session.open(first)
    session.open(second)
    outcome = _wait_outcome(session)
    assert outcome.request is second
    assert session.pipeline is not None and session.pipeline.source.name == "second"
    assert session.close()
    assert set(threading.enumerate()) <= baseline


def test_close_during_an_open_stops_what_it_opens() -> None:
    baseline = set(threading.enumerate())
    session = PipelineSession()
    session.open(OpenRequest(IterableSource(numbered_frames(4, 64, 64)), _settings()))
    assert session.close()
    assert session.pipeline is None
    assert set(threading.enumerate()) <= baseline
    with pytest.raises(RuntimeError):
        session.open(OpenRequest(IterableSource(numbered_frames(1, 64, 64)), _settings()))


def test_request_labels_and_remembered_sources(tmp_path: Path) -> None:
    video = tmp_path / "a.mp4"
    assert source_label(0) == "capture device 0"
    assert source_label("2") == "capture device 2"
    assert source_label(str(video)) == str(video)
    settings = _settings()
    assert OpenRequest(str(video), settings).remembered == str(video.resolve())
    assert OpenRequest(3, settings).remembered == "3"
    assert OpenRequest("/dev/video0", settings).remembered == "/dev/video0"
    assert OpenRequest(IterableSource(numbered_frames(1)), settings).remembered is None
