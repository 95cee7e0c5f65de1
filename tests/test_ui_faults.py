"""The viewer under faults, offscreen: a damaged video, frames that change size, channels,
bit depth or hold NaN mid-stream, a 4K frame, the checkpoint file replaced or deleted, the
session folder deleted or made unwritable mid-recording. Each time the view goes on, nothing
raises (pytest-qt fails a test on an exception inside Qt), and a message says what happened.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses
import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app import private_files
from app.pipeline import IterableSource, Mode
from app.recording import SessionReader
from app.ui.main_window import MainWindow
from app.ui.options import DEMO_CHECKPOINT
from app.ui.recent import PreferencesStore
from app.ui.viewer import application
from models.checkpoint import checkpoint_sha256
from tests.pipeline_support import phantom_video
from tests.test_pipeline_sources import damaged_copies
from tests.test_ui_window import WAIT_MS, _notices, _options, _phantom_frames, _wait_results


def _window(qtbot: QtBot, tmp_path: Path, source: object = None, **options: object) -> MainWindow:
    application()
    settings = {"checkpoint": options.pop("checkpoint")} if "checkpoint" in options else {}
    viewer_options = dataclasses.replace(_options(tmp_path, source), **options)
    if settings:
        viewer_options = dataclasses.replace(
            viewer_options, settings=viewer_options.settings.replace(**settings)
        )
    window = MainWindow(viewer_options, PreferencesStore(tmp_path / "viewer.ini"))
    window.recording.folder = tmp_path / "sessions"
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_video_is_shown_up_to_the_damage_and_a_banner_says_so(
    qtbot: QtBot, tmp_path: Path, damage: str
) -> None:
    video = phantom_video(tmp_path / "clip.avi", frames=40)
    damaged = damaged_copies(video, tmp_path)[damage]
    window = _window(qtbot, tmp_path, str(damaged), mode=Mode.ANALYSIS, loop=False)
    qtbot.waitUntil(lambda: "truncated or damaged" in _notices(window), timeout=WAIT_MS)
    assert window.banners.message.isVisible()
    assert "truncated or damaged" in window.banners.message.label.text()
    qtbot.waitUntil(lambda: window.banners.source.isVisible(), timeout=WAIT_MS)  # the end
    assert window.results_shown >= 1
    shown = window.shown_result
    assert shown is not None and 0 < shown.source_index < 39
    window.toggle_play()  # played again from the start: frames come again
    _wait_results(qtbot, window, 1)


def test_frames_that_change_size_depth_or_hold_nan_never_stop_the_viewer(
    qtbot: QtBot, tmp_path: Path
) -> None:
    good = _phantom_frames(2)
    frame = good[0]
    odd = [
        good[0],
        frame[:200, :300],  # smaller
        np.pad(frame, ((0, 60), (0, 90))),  # larger
        np.dstack([frame] * 3),  # colour
        frame[..., None],  # one channel, explicit
        frame.astype(np.uint16) * 257,  # 16-bit
        np.full(frame.shape, np.nan, np.float32),  # NaN
        np.where(frame > 100, np.inf, frame / 255).astype(np.float32),  # inf
        frame.astype(np.int64),  # an unsupported depth
        np.zeros((4, 4), np.uint8),  # too small
        np.resize(frame, (2160, 3840)),  # 4K, last
    ]
    source = IterableSource(odd, fps=25, name="odd")
    window = _window(qtbot, tmp_path, source, mode=Mode.ANALYSIS, loop=False)
    qtbot.waitUntil(lambda: window.banners.source.isVisible(), timeout=WAIT_MS)  # the end
    qtbot.waitUntil(
        lambda: window.shown_result is not None and window.shown_result.source_index == 10,
        timeout=WAIT_MS,
    )
    text = _notices(window)
    for words in ("non-finite", "unsupported dtype int64", "too small"):
        assert words in text, text
    assert window.shown_result.raw.shape == (2160, 3840)
    assert window.panels.raw.image is not None and window.panels.raw.image.size > 0
    assert window.pipeline is not None and window.pipeline.running


def test_the_checkpoint_replaced_or_deleted_in_use_keeps_the_model_and_its_identity(
    qtbot: QtBot, tmp_path: Path
) -> None:
    model = tmp_path / "model.pt"
    shutil.copyfile(DEMO_CHECKPOINT, model)
    loaded = checkpoint_sha256(model)
    window = _window(qtbot, tmp_path, checkpoint=model)
    _wait_results(qtbot, window, 1)
    model.unlink()
    window.controls.passes.setValue(3)  # a settings change keeps the model in memory
    qtbot.waitUntil(lambda: window.shown_result.settings.passes == 3, timeout=WAIT_MS)
    model.write_bytes(b"replaced by something else")
    window.toggle_recording()  # records the model in use, not what the file holds now
    qtbot.waitUntil(lambda: window.recording.recorder.frames_written >= 2, timeout=WAIT_MS)
    window.toggle_recording()
    session = SessionReader(window.recording.last_session)
    assert session.manifest["checkpoint"]["sha256"] == loaded
    assert not any(n.banner for n in window.notices), _notices(window)


def _recording(qtbot: QtBot, tmp_path: Path) -> MainWindow:
    window = _window(qtbot, tmp_path)
    _wait_results(qtbot, window, 1)
    window.toggle_recording()
    qtbot.waitUntil(lambda: window.recording.recorder.frames_written >= 2, timeout=WAIT_MS)
    return window


def test_the_session_folder_deleted_mid_recording_stops_recording_not_the_view(
    qtbot: QtBot, tmp_path: Path
) -> None:
    window = _recording(qtbot, tmp_path)
    folder = window.recording.last_session
    window.recording.recorder.recorder.flush()
    folder.rename(tmp_path / "moved")  # what deleting it does to the writer, without a race
    shutil.rmtree(tmp_path / "moved")
    qtbot.waitUntil(lambda: not window.recording.recording, timeout=WAIT_MS)
    text = _notices(window)
    assert "session folder was deleted or moved" in text and "went with it" in text, text
    assert "remain readable" not in text
    shown = window.results_shown
    _wait_results(qtbot, window, 2)  # the live view continues
    assert window.results_shown >= shown + 2
    window.toggle_recording()  # a new recording starts in a new folder
    qtbot.waitUntil(lambda: window.recording.recorder.frames_written >= 1, timeout=WAIT_MS)
    assert window.recording.last_session != folder
    window.toggle_recording()
    assert len(SessionReader(window.recording.last_session)) >= 1


def test_the_session_folder_made_unwritable_mid_recording_keeps_what_was_saved(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = _recording(qtbot, tmp_path)
    control = window.recording
    control.recorder.recorder.flush()
    saved = control.recorder.recorder.frames_saved
    assert saved >= 1

    def denied(src: object, dst: object) -> None:  # chmod cannot stop root, so the errno
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(private_files.os, "replace", denied)
    qtbot.waitUntil(lambda: not control.recording, timeout=WAIT_MS)
    monkeypatch.undo()
    text = _notices(window)
    assert "can no longer be written (permission denied)" in text and "remain readable" in text
    _wait_results(qtbot, window, 2)
    assert len(SessionReader(control.last_session)) >= saved
