"""A short endurance run of the real viewer (the long one is ``python -m app soak``, figures
in docs/reliability.md): playback, then source switches and settings changes in a row, after
which the process holds the threads and open files it held before, and memory did not grow
while it played."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from typing import Any

import pytest

from app.pipeline import Mode, PipelineSettings
from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE, ViewerOptions
from app.ui.soak import soak


@pytest.mark.slow
def test_switches_and_settings_changes_leave_no_thread_file_or_memory_behind(qapp: Any) -> None:
    settings = PipelineSettings(DEMO_CHECKPOINT, method="gradcam++", passes=2, device="cpu")
    options = ViewerOptions(source=str(DEMO_SOURCE), settings=settings, mode=Mode.LIVE, loop=True)
    report = soak(options, minutes=0.5, sample_s=10, switches=8, changes=16, timeout_s=120)
    assert report.switches == 8 and report.changes == 16
    playback = [s for s in report.samples if s.phase == "playback"]
    assert len(playback) == 3 and all(s.frames_shown > 0 for s in playback)
    assert report.thread_change == 0, report.format()
    assert report.fd_change == 0, report.format()
    assert playback[-1].figures.rss_mb - playback[0].figures.rss_mb < 50, report.format()
    assert not report.notices, report.notices
