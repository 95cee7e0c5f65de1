"""Recording from the viewer: the record button, its indicator, the session it leaves, a full
disk that stops the recording but not the live view."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import errno
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app import private_files
from app.recording import SessionReader
from app.ui.main_window import MainWindow
from app.ui.recording_control import format_elapsed
from tests.test_ui_window import WAIT_MS, _open_window, _wait_results


def test_elapsed_format() -> None:
    assert format_elapsed(0) == "00:00"
    assert format_elapsed(83.9) == "01:23"
    assert format_elapsed(3 * 3600 + 62) == "3:01:02"


def _window(qtbot: QtBot, tmp_path: Path) -> MainWindow:
    window = _open_window(tmp_path)
    window.recording.folder = tmp_path / "sessions"
    qtbot.addWidget(window)
    _wait_results(qtbot, window, 1)
    return window


def test_record_button_records_a_reviewable_session(qtbot: QtBot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path)
    control = window.recording
    assert not control.indicator.isVisible() and control.button.text() == "● Record"
    control.button.click()
    assert control.recording and control.button.isChecked()
    assert control.indicator.isVisible() and control.indicator.text().startswith("● REC 00:0")
    # a recorded frame must also have been painted: under load the writer can run ahead
    qtbot.waitUntil(
        lambda: control.recorder.frames_written >= 4 and control.recorder.displays_written >= 1,
        timeout=WAIT_MS,
    )
    window._refresh_readouts(window.pipeline, 0.0)
    assert "frames" in control.indicator.text()
    control.button.click()
    assert not control.recording and not control.indicator.isVisible()
    folder = control.last_session
    assert folder is not None and folder.parent == tmp_path / "sessions"
    assert folder.name.startswith("session-")
    session = SessionReader(folder)
    assert session.closed_cleanly and len(session) >= 4
    assert session.manifest["source"] == "video file (.mp4)"
    assert "Recording saved" in window.notices[-1].text
    shown = session.display_times()  # when each drawn frame reached the screen
    recorded = {session.frame(i)[1].frame_id for i in range(len(session))}
    assert shown and set(shown) <= recorded
    assert all(0 < ms < 60_000 for _, ms in shown.values())

    review = window.open_review(folder)  # the same session, in a review window
    assert review is not None
    qtbot.addWidget(review)
    first_shown = min(shown)
    review.show_frame(
        next(i for i in range(len(session)) if session.frame(i)[1].frame_id == first_shown)
    )
    assert review.frame_values["display"].text().endswith(" ms")
    window.close()


def test_a_full_disk_stops_recording_and_the_view_goes_on(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = _window(qtbot, tmp_path)
    control = window.recording
    window.toggle_recording()
    qtbot.waitUntil(lambda: control.recorder.frames_written >= 2, timeout=WAIT_MS)
    control.recorder.recorder.flush()

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(private_files.os, "replace", full)
    qtbot.waitUntil(lambda: not control.recording, timeout=WAIT_MS)  # refresh() stops it
    assert any("disk is full" in n.text for n in window.notices)
    shown = window.results_shown
    _wait_results(qtbot, window, 2)  # the live view continues
    assert window.results_shown >= shown + 2
    monkeypatch.undo()
    assert len(SessionReader(control.last_session)) >= 2  # what was saved stays readable
    window.close()


def test_opening_another_source_ends_the_recording(qtbot: QtBot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path)
    window.toggle_recording()
    assert window.recording.recording
    window.open_source(str(Path(window.options.source)))
    qtbot.waitUntil(lambda: not window.recording.recording, timeout=WAIT_MS)
    assert any("another source was opened" in n.text for n in window.notices)
    window.close()


def test_record_pressed_while_the_source_opens(qtbot: QtBot, tmp_path: Path) -> None:
    window = _open_window(tmp_path)
    qtbot.addWidget(window)
    window.recording.folder = tmp_path / "sessions"
    assert window.session.opening
    window.toggle_recording()
    assert "as soon as the source is open" in window.notices[-1].text
    qtbot.waitUntil(lambda: window.recording.recording, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.recording.recorder.frames_written >= 1, timeout=WAIT_MS)
    window.close()
    assert len(SessionReader(window.recording.last_session)) >= 1
