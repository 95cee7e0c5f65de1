"""The review window, offscreen, on a small recorded session and no model file anywhere:
panels drawn from the stored results, playback, uncertain moments, bookmarks that survive a
reopen, the timeline strip, clip and snapshot exports, a damaged frame and a damaged result
chunk."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox
from pytestqt.qtbot import QtBot

from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.preprocess.field_of_view import FieldOfView
from app.recording import SessionRecorder
from app.render.layers import frame_to_gray8
from app.review import BookmarkStore, ReviewSession, next_uncertain, uncertainty_threshold
from app.ui.review_window import ReviewWindow, _ClipDialog, open_review
from app.ui.viewer import application
from models.checkpoint import CheckpointMetadata
from tests.session_support import corrupt_chunk, explanation_from
from tests.test_recording import fake_metadata

CLASSES = ("glioblastoma", "meningioma")
FRAMES = 12
FPS = 20.0
UNCERTAIN = (4, 5, 9)  # frames whose maps disagree across passes (CV 0.6, others <= 0.32)
PASSES = 4


def _metadata() -> CheckpointMetadata:
    return fake_metadata(CLASSES, intended_use="test session, not for clinical use")


def _raw(i: int) -> np.ndarray:
    """A 48×40 grey frame: a bright disc (the probe's field of view) with a moving texture."""
    yy, xx = np.mgrid[:48, :40]
    disc = (yy - 24) ** 2 + (xx - 20) ** 2 < 18**2
    texture = 100 + 60 * np.sin((xx + 2 * i) / 3.0) * np.cos(yy / 4.0)
    return np.where(disc, texture, 10).astype(np.uint8)


def _result(i: int, settings: PipelineSettings, t0: float) -> FrameResult:
    """Frame ``i``: class 0 for the first half, class 1 after; CV = spread of the passes."""
    yy, xx = np.mgrid[:5, :6]
    base = torch.from_numpy(0.2 + 0.6 * np.exp(-((yy - 2) ** 2 + (xx - 3) ** 2) / 4.0)).float()
    spread = 0.6 if i in UNCERTAIN else 0.1 + 0.02 * i
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(PASSES, 1, 1)
    maps = base * (1.0 + spread * signs)
    maps[:, 0, 0] = 0.0  # mean 0: CV undefined there
    top = 0 if i < FRAMES // 2 else 1
    p = torch.full((PASSES, 2), 0.2)
    p[:, top] = 0.8
    p += torch.tensor([0.05, -0.05, 0.03, -0.03]).view(PASSES, 1) * torch.tensor([1.0, -1.0])
    explanation = explanation_from(maps, p, mutual_information=0.01 * i)
    yy, xx = np.mgrid[:32, :32]
    return FrameResult(
        frame_id=i,
        source_index=i,
        capture_time=t0 + i / FPS,
        source_time=i / FPS,
        result_time=t0 + i / FPS + 0.04,
        raw=_raw(i),
        display=np.zeros((32, 32), np.float32),
        fov_mask=(yy - 16) ** 2 + (xx - 16) ** 2 < 15**2,
        fov=FieldOfView(20.0, 24.0, 18.0),
        explanation=explanation,
        class_names=CLASSES,
        timings_ms={"read": 0.5, "preprocess": 1.0, "explain": 2.0},
        settings=settings,
        metadata=_metadata(),
    )


def record_session(folder: Path, frames: int = FRAMES) -> Path:
    """A session recorded from fake results; the checkpoint file is deleted afterwards."""
    checkpoint = folder.parent / f"{folder.name}-model.pt"
    checkpoint.write_bytes(b"not really a checkpoint")
    settings = PipelineSettings(
        checkpoint=checkpoint, method="gradcam++", passes=PASSES, device="cpu"
    )
    t0 = time.monotonic()
    with SessionRecorder(folder, settings=settings, source="clip.avi", chunk_frames=5) as rec:
        for i in range(frames):
            assert rec.write(_result(i, settings, t0))
    checkpoint.unlink()  # review needs no model
    return folder


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    return record_session(tmp_path / "session")


def _window(qtbot: QtBot, folder: Path, tmp_path: Path) -> ReviewWindow:
    application()  # the viewer's theme on pytest-qt's QApplication
    window = ReviewWindow(ReviewSession(folder), export_dir=tmp_path / "exports")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # the one-key shortcuts need the active window
    qtbot.waitUntil(window.isActiveWindow)
    return window


def test_panels_show_the_stored_frame(qtbot: QtBot, session_dir: Path, tmp_path: Path) -> None:
    assert not list(tmp_path.rglob("*.pt"))
    window = _window(qtbot, session_dir, tmp_path)
    session = window.session
    assert window.position == 0 and len(session) == FRAMES
    assert "12 frames" in window.describe_line.text()
    assert not window.warning_line.isVisible()
    assert window.intended_use.text() == "test session, not for clinical use"

    window.show_frame(3)
    panels = window.panels
    assert window.position == 3 and window.slider.value() == 3
    assert np.array_equal(panels.raw_frame, frame_to_gray8(session.frame(3).raw))
    assert np.array_equal(panels.raw_frame, _raw(3))
    frame = session.frame(3)
    for panel in (panels.enhanced, panels.risk):
        overlay = panel.overlay_image
        assert overlay is not None and overlay.shape == (32, 32, 4)
        assert np.all(overlay[..., 3][~frame.fov_mask] == 0)  # nothing outside the FOV
        assert panel.image.shape == (32, 32)
    assert panels.enhanced.overlay_image[16, 16, 3] == 128  # opacity 0.5
    caption = panels.enhanced.caption.text
    assert CLASSES[0] in caption and "0.80" in caption and "mean CV" in caption
    assert "T = 4" in panels.enhanced.title.text
    assert window.readouts.class_name.text() == CLASSES[0]
    assert window.timeline_strip.position == 3

    window.show_frame(5)  # uncertain: amber caption
    assert "uncertain" in panels.risk.caption.text

    window.slider.setValue(8)  # the slider moves the frame
    assert window.position == 8 and window.readouts.class_name.text() == CLASSES[1]
    window.show_frame(99)  # clamped
    assert window.position == FRAMES - 1


def test_keys_step_and_play_to_the_end(qtbot: QtBot, session_dir: Path, tmp_path: Path) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.position == 2
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.position == 1
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.position == FRAMES - 1
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.position == 0

    seen: list[int] = []
    window.timeline_strip.position_requested.connect(seen.append)  # not used by playback
    window.show_frame(7)
    window.play()
    assert window.playing
    qtbot.waitUntil(lambda: not window.playing, timeout=10_000)
    assert window.position == FRAMES - 1 and not seen
    qtbot.keyClick(window, Qt.Key.Key_Space)  # at the end: plays from the start
    assert window.playing and window.position <= 1
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.playing


def test_next_uncertain(qtbot: QtBot, session_dir: Path, tmp_path: Path) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    timeline = window.session.timeline()
    threshold = uncertainty_threshold(timeline)
    assert threshold is not None and window.threshold == threshold
    assert window.timeline_strip.threshold == threshold
    visited = []
    while (expected := next_uncertain(timeline, window.position, threshold)) is not None:
        assert window.next_uncertain() == expected
        assert window.position == expected
        visited.append(expected)
    assert visited == [4, 9]
    assert window.next_uncertain() is None and window.position == 9
    qtbot.keyClick(window, Qt.Key.Key_U, Qt.KeyboardModifier.ShiftModifier)
    assert window.position == 4
    qtbot.keyClick(window, Qt.Key.Key_U)
    assert window.position == 9


def test_bookmarks_survive_a_reopen(qtbot: QtBot, session_dir: Path, tmp_path: Path) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    panel = window.bookmark_panel
    assert not panel.editor.isEnabled()
    window.show_frame(6)
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.bookmarks is not None and 6 in window.bookmarks
    assert panel.editor.isEnabled() and panel.selected_position == 6
    assert window.timeline_strip.bookmarks == [6]
    # typing reaches the note, not the window's one-letter shortcuts
    panel.editor.setFocus()
    qtbot.keyClicks(panel.editor, "vessel wall, bus")
    assert panel.editor.toPlainText() == "vessel wall, bus" and window.position == 6
    qtbot.waitUntil(lambda: window.bookmarks.get(6).note == "vessel wall, bus", timeout=5000)
    assert "vessel wall" in panel.list.item(0).text() and panel.list.item(0).text().startswith("#6")
    window.show_frame(2)
    window.add_bookmark("second")
    assert [m.position for m in window.bookmarks.all()] == [2, 6]
    window.close()

    again = _window(qtbot, session_dir, tmp_path)
    store = again.bookmarks
    assert store is not None and [(m.position, m.note) for m in store.all()] == [
        (2, "second"),
        (6, "vessel wall, bus"),
    ]
    assert again.bookmark_panel.list.count() == 2 and again.timeline_strip.bookmarks == [2, 6]
    again.bookmark_panel.list.itemClicked.emit(again.bookmark_panel.list.item(1))
    assert again.position == 6 and again.bookmark_panel.editor.toPlainText() == "vessel wall, bus"
    again.bookmark_panel.go_previous()
    assert again.position == 2
    again.bookmark_panel.remove()
    assert [m.position for m in BookmarkStore(session_dir).all()] == [6]


def test_failed_note_save_keeps_the_text(
    qtbot: QtBot, session_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    window.add_bookmark()
    panel = window.bookmark_panel

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.review.bookmarks.write_atomic", full_disk)
    panel.editor.setPlainText("do not lose me")
    assert panel.save_notes() is False
    assert panel.editor.toPlainText() == "do not lose me" and panel.unsaved == {0: "do not lose me"}
    assert panel.status.isVisibleTo(panel) and "not saved" in panel.status.text()
    monkeypatch.undo()
    assert panel.save_notes() is True and not panel.status.isVisibleTo(panel)
    assert BookmarkStore(session_dir).get(0).note == "do not lose me"


def test_timeline_strip_click_requests_a_frame(
    qtbot: QtBot, session_dir: Path, tmp_path: Path
) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    strip = window.timeline_strip
    assert strip.count == FRAMES
    with qtbot.waitSignal(strip.position_requested) as blocker:
        qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=strip.frame_to_widget(7))
    assert blocker.args == [7]
    assert window.position == 7 and strip.position == 7
    strip.request_at(-3.2)  # clamped
    assert window.position == 0
    strip.request_at(FRAMES + 5)
    assert window.position == FRAMES - 1


def test_export_clip_and_snapshot(
    qtbot: QtBot, session_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = _window(qtbot, session_dir, tmp_path)
    steps: list[tuple[int, int]] = []
    report = window.export_clip(
        tmp_path / "clips" / "clip.avi", 2, 9, progress=lambda d, t: steps.append((d, t))
    )
    assert steps[-1] == (7, 7)
    capture = cv2.VideoCapture(str(report.path))
    try:
        assert capture.isOpened()
        frames = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames += 1
            assert image.shape[:2] == (report.height, report.width)
    finally:
        capture.release()
    assert frames == report.frames == 7 and report.width > report.height > 0

    # the dialog's way: span prefilled from the frame shown to the end, a progress dialog
    window.show_frame(8)
    monkeypatch.setattr(_ClipDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    window.choose_clip()
    written = list((tmp_path / "exports").glob("session-clip.*"))
    assert len(written) == 1 and "4 frames" in window.statusBar().currentMessage()

    window.show_frame(9)
    window.add_bookmark("look here")
    snap = window.take_snapshot()
    assert snap.png.parent == tmp_path / "exports"
    image = cv2.imread(str(snap.png))
    expected = window.session.frame(9).panels()
    assert image is not None and image.shape == expected.shape
    record = json.loads(snap.json.read_text())
    assert record["frame"]["position"] == 9 and record["frame"]["class"] == CLASSES[1]
    assert record["note"] == "look here"
    assert str(snap.png) in window.statusBar().currentMessage()


def test_corrupt_frame_shows_a_message(
    qtbot: QtBot, session_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (png,) = session_dir.glob("frames/*/000003.png")
    png.write_bytes(b"garbage, not a PNG")
    window = _window(qtbot, session_dir, tmp_path)
    window.show_frame(3)
    assert window.frame is None and window.frame_error
    caption = window.panels.enhanced.caption.text
    assert "cannot be read" in caption and "#3" in caption
    assert window.panels.raw.image is None
    banner = window.banners.source
    assert banner.isVisibleTo(window) and "000003.png" in banner.text
    assert str(session_dir) not in banner.text  # the folder is in the title already
    assert "cannot be read" in window.statusBar().currentMessage()
    window.show_frame(4)  # the next frame is fine again
    assert window.frame is not None and window.panels.raw.image is not None
    assert not banner.isVisibleTo(window)
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    window.show_frame(3)
    window._snapshot_clicked()  # the S key: a message, no exception
    assert warned and "frame 3" in warned[0]
    window.show_frame(2)
    window.play()  # playing through the damaged frame goes on
    qtbot.waitUntil(lambda: not window.playing, timeout=10_000)
    assert window.position == FRAMES - 1


def test_open_review_and_an_interrupted_session(qtbot: QtBot, tmp_path: Path) -> None:
    folder = record_session(tmp_path / "session", frames=3)
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    data["closed_cleanly"] = False
    data["error"] = "disk full"
    manifest.write_text(json.dumps(data))
    application()
    window = open_review(folder, export_dir=tmp_path / "exports")
    qtbot.addWidget(window)
    assert window.isVisible() and len(window.session) == 3
    assert window.warning_line.isVisibleTo(window)
    assert "disk full" in window.warning_line.text()


def test_a_damaged_result_chunk_shows_what_it_can(
    qtbot: QtBot, session_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt_chunk(session_dir / "results" / "chunk_00001.npz")  # frames 5-9 (chunks of 5)
    window = _window(qtbot, session_dir, tmp_path)
    assert (
        len(window.session) == FRAMES and "12 frames, 5 unreadable" in window.describe_line.text()
    )
    assert window.warning_line.isVisibleTo(window)
    assert "frames 5-9 (chunk 1) are unreadable" in window.warning_line.text()
    strip = window.timeline_strip
    assert strip.count == FRAMES and list(strip.class_idx[5:10]) == [-1] * 5  # grey: unknown
    assert window.frame is not None and np.array_equal(window.panels.raw_frame, _raw(0))

    window.show_frame(7)
    assert window.frame is None and "frames 5-9 (chunk 1)" in (window.frame_error or "")
    assert "cannot be read" in window.panels.risk.caption.text
    assert "chunk 1" in window.banners.source.text
    window.show_frame(10)  # the next chunk reads again, at its own position
    assert window.frame is not None and window.frame.record.frame_id == 10
    assert np.array_equal(window.panels.raw_frame, _raw(10))

    window.show_frame(3)
    window.play()  # through the damaged frames to the end
    qtbot.waitUntil(lambda: not window.playing, timeout=10_000)
    assert window.position == FRAMES - 1 and window.frame is not None

    window.show_frame(0)
    monkeypatch.setattr(_ClipDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    window.choose_clip()  # the whole session: the damaged frames are left out, and said so
    (clip,) = (tmp_path / "exports").glob("session-clip.*")
    assert cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES - 5
    assert "5 unreadable frames left out (5-9)" in window.statusBar().currentMessage()
