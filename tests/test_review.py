"""Reviewing recorded sessions without a model: frames, timeline, bookmarks, exports, CLI;
recording from the pipeline on a background thread."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app import private_files
from app.cli import main
from app.pipeline import Pipeline
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.recording import (
    BackgroundRecorder,
    RecordingError,
    SessionReader,
    SessionRecorder,
    Timeline,
    new_session_folder,
)
from app.review import (
    BookmarkError,
    BookmarkStore,
    ReviewSession,
    export_clip,
    export_snapshot,
    next_uncertain,
    uncertainty_threshold,
)
from tests.pipeline_support import phantom_video, tiny_checkpoint
from tests.test_recording import fake_result, fake_settings


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FrameResult]]:
    """A session recorded from a real (tiny) pipeline on a phantom video, its model deleted."""
    from app.pipeline.headless import process

    root = tmp_path_factory.mktemp("recorded")
    checkpoint = tiny_checkpoint(root / "tiny.pt")
    video = phantom_video(root / "Patient_X.avi", frames=8)
    settings = PipelineSettings(checkpoint=checkpoint, method="gradcam++", passes=4, seed=1)
    seen: list[FrameResult] = []
    with SessionRecorder(root / "session", settings=settings, source=video) as recorder:

        def on_result(result: FrameResult) -> None:
            seen.append(result)
            recorder.write(result)

        process(video, settings, root / "out", progress=False, on_result=on_result)
    checkpoint.unlink()  # review needs no model
    return root / "session", seen


def test_review_rebuilds_what_the_viewer_showed(recorded: tuple[Path, list[FrameResult]]) -> None:
    folder, seen = recorded
    session = ReviewSession(folder)
    assert len(session) == len(seen) == 8 and session.class_names == tuple(seen[0].class_names)
    assert "video file (.avi)" in session.describe() and "Patient_X" not in session.describe()
    for i, result in enumerate(seen):
        frame = session.frame(i)
        assert np.array_equal(frame.raw, result.raw)
        assert np.array_equal(frame.display, result.display)  # same preprocessing, same pixels
        assert np.array_equal(frame.fov_mask, result.fov_mask)
        mean, cv = result.maps()
        np.testing.assert_allclose(frame.mean, mean, atol=2e-3)  # float16 on disk
        assert np.array_equal(np.isnan(frame.cv), np.isnan(cv))
        np.testing.assert_allclose(frame.cv, cv, rtol=5e-3, atol=1e-3)
        assert frame.record.class_name == result.class_name and frame.record.mc
        assert frame.headers()[1] == (
            f"gradcam++ T=4: {result.class_name} {result.probability:.2f}"
        )
        panels = frame.panels(height=96)
        assert panels.dtype == np.uint8 and panels.shape[2] == 3 and panels.shape[0] % 2 == 0
    assert session.frame(-1).position == 7


def _timeline(mean_cv: list[float]) -> Timeline:
    n = len(mean_cv)
    return Timeline(
        class_idx=np.zeros(n, np.int32),
        mean_cv=np.array(mean_cv, np.float32),
        time_s=np.arange(n, dtype=np.float64) / 10,
    )


def test_uncertain_moments_are_runs() -> None:
    nan = float("nan")
    timeline = _timeline([0.1, 0.9, 0.8, 0.1, nan, 0.7, 0.1, 0.95])
    assert next_uncertain(timeline, 0, 0.5) == 1
    assert next_uncertain(timeline, 1, 0.5) == 5  # inside a run: the next run, not frame 2
    assert next_uncertain(timeline, 5, 0.5) == 7
    assert next_uncertain(timeline, 7, 0.5) is None
    assert next_uncertain(timeline, 7, 0.5, backward=True) == 5
    assert next_uncertain(timeline, 2, 0.5, backward=True) is None
    assert next_uncertain(timeline, 100, 0.5, backward=True) == 7
    assert next_uncertain(_timeline([nan, nan]), 0, 0.0) is None  # undefined never counts
    assert uncertainty_threshold(_timeline([nan, nan])) is None
    assert uncertainty_threshold(timeline, 0.5) == pytest.approx(
        np.quantile([0.1, 0.9, 0.8, 0.1, 0.7, 0.1, 0.95], 0.5)
    )
    with pytest.raises(ValueError):
        uncertainty_threshold(timeline, 1.0)


def test_bookmarks_survive_a_restart(tmp_path: Path) -> None:
    store = BookmarkStore(tmp_path)
    store.add(12, "vessel wall, high CV")
    store.add(3)
    store.set_note(3, "Ödem? — check with pathology")
    store.add(40, "x")
    store.remove(40)
    again = BookmarkStore(tmp_path)
    assert [(m.position, m.note) for m in again.all()] == [
        (3, "Ödem? — check with pathology"),
        (12, "vessel wall, high CV"),
    ]
    assert again.next_after(3).position == 12 and again.previous_before(3) is None
    assert again.get(12).created_utc and 40 not in again
    with pytest.raises(KeyError):
        again.set_note(99, "no such bookmark")


def test_an_interrupted_note_write_keeps_the_previous_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BookmarkStore(tmp_path)
    store.add(5, "first note")
    before = (tmp_path / "bookmarks.json").read_bytes()

    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(private_files.os, "replace", full_disk)
    with pytest.raises(BookmarkError, match="previous ones are kept"):
        store.set_note(5, "second note, never saved")
    with pytest.raises(BookmarkError):
        store.add(6, "new")
    monkeypatch.undo()
    assert (tmp_path / "bookmarks.json").read_bytes() == before
    assert store.get(5).note == "first note" and 6 not in store  # memory matches the disk
    (tmp_path / ".bookmarks.json.tmp").write_text('{"format": "pcle-viewer-bo')  # a kill mid-write
    assert [(m.position, m.note) for m in BookmarkStore(tmp_path).all()] == [(5, "first note")]


def test_a_foreign_bookmarks_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bookmarks.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(BookmarkError, match="not a readable bookmarks file"):
        BookmarkStore(tmp_path)
    assert path.read_text() == "[1, 2, 3]"


def test_exports_open_with_opencv(recorded: tuple[Path, list[FrameResult]], tmp_path: Path) -> None:
    folder, _ = recorded
    session = ReviewSession(folder)
    report = export_clip(session, tmp_path / "clip.mp4", start=2, stop=7, height=80)
    capture = cv2.VideoCapture(str(report.path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    expected = session.frame(2).panels(80).shape
    assert report.frames == len(frames) == 5
    assert frames[0].shape == expected and (report.height, report.width) == expected[:2]
    with pytest.raises(ValueError, match="not a span"):
        export_clip(session, tmp_path / "bad.mp4", start=5, stop=5)

    class Cancelled(Exception):
        pass

    def cancel_at_three(done: int, total: int) -> None:
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        export_clip(session, tmp_path / "cancelled.mp4", progress=cancel_at_three)
    assert not list(tmp_path.glob("cancelled*"))  # no partial video left behind

    files = export_snapshot(session, 4, tmp_path / "snaps", note="look here")
    image = cv2.imread(str(files.png))
    assert image is not None and image.shape == session.frame(4).panels().shape
    record = json.loads(files.json.read_text())
    assert record["frame"]["position"] == 4 and record["note"] == "look here"
    assert record["frame"]["class"] == session.frame(4).record.class_name
    text = files.json.read_text()
    assert str(folder) not in text and "Patient_X" not in text  # no paths, no file names
    with_paths = export_snapshot(session, 4, tmp_path / "snaps2", include_paths=True)
    assert str(folder.resolve()) in with_paths.json.read_text()


def test_review_cli_exports_headless(
    recorded: tuple[Path, list[FrameResult]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = recorded
    BookmarkStore(folder).add(3, "bookmarked in review")
    clip = tmp_path / "cli.mp4"
    snaps = ["--snapshot", "3", "--snapshot", "-1", "--out", str(tmp_path / "snaps")]
    code = main(["review", str(folder), "--info", "--export-clip", str(clip), *snaps])
    out = capsys.readouterr().out
    assert code == 0 and "8 frames" in out and "bookmark #3: bookmarked in review" in out
    assert cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == 8
    note = json.loads((tmp_path / "snaps" / "review-frame000003.json").read_text())["note"]
    assert note == "bookmarked in review"
    assert (tmp_path / "snaps" / "review-frame000007.png").exists()
    assert main(["review", str(folder), "--snapshot", "8"]) == 2
    assert "outside the session" in capsys.readouterr().err
    assert main(["review", str(tmp_path), "--info"]) == 2
    assert "not a recorded session" in capsys.readouterr().err


def test_process_records_a_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    video = phantom_video(tmp_path / "clip.avi", frames=5)
    command = ["process", str(video), "--checkpoint", str(checkpoint), "--quiet"]
    record = ["--out", str(tmp_path / "out"), "--record", str(tmp_path / "session")]
    code = main([*command, "--passes", "3", *record])
    assert code == 0 and "recorded 5 frames" in capsys.readouterr().out
    session = SessionReader(tmp_path / "session")
    assert session.closed_cleanly and len(session) == 5
    assert session.manifest["source"] == "video file (.avi)"
    assert main([*command, *record]) == 2  # never records into an existing session
    assert "not an empty folder" in capsys.readouterr().err


def test_an_empty_session_cannot_be_reviewed(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    SessionRecorder(tmp_path / "s", settings=settings).close()
    with pytest.raises(RecordingError, match="holds no frame"):
        ReviewSession(tmp_path / "s")


def test_a_corrupt_frame_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    with SessionRecorder(tmp_path / "s", settings=settings) as recorder:
        for i in range(3):
            recorder.write(fake_result(i, settings))
    image_file = SessionReader(tmp_path / "s")._chunk(0)["image_file"][1]
    (tmp_path / "s" / str(image_file)).write_bytes(b"garbage")
    session = ReviewSession(tmp_path / "s")
    assert session.frame(0).record.frame_id == 0
    with pytest.raises(RecordingError, match="frame 1"):
        session.frame(1)


def test_pipeline_tap_records_every_analysed_frame(tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    video = phantom_video(tmp_path / "clip.avi", frames=10)
    settings = PipelineSettings(checkpoint=checkpoint, method="gradcam", passes=2)
    pipeline = Pipeline(video, settings, mode="analysis")
    recorder = BackgroundRecorder(
        SessionRecorder(tmp_path / "s", settings=settings, metadata=pipeline.metadata)
    )
    pipeline.set_result_tap(recorder.submit)
    with pipeline:
        taken = list(pipeline.results(idle_timeout=30))
        pipeline.set_result_tap(None)
    assert recorder.stop() and not recorder.recording
    assert recorder.submit(taken[0]) is False  # stopped
    session = SessionReader(tmp_path / "s")
    assert session.closed_cleanly and len(session) == len(taken) == 10
    assert [session.frame(i)[1].frame_id for i in range(10)] == [r.frame_id for r in taken]


def test_background_recorder_drops_rather_than_blocks(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    session = SessionRecorder(tmp_path / "s", settings=settings)
    gate = threading.Event()
    real_write = session.write

    def slow_write(result: FrameResult) -> bool:
        gate.wait(10)
        return real_write(result)

    session.write = slow_write  # type: ignore[method-assign]
    recorder = BackgroundRecorder(session, max_pending=2)
    start = time.monotonic()
    accepted = [recorder.submit(fake_result(i, settings)) for i in range(6)]
    assert time.monotonic() - start < 1.0  # never waits for the disk
    assert accepted.count(True) <= 3 and recorder.dropped == accepted.count(False) >= 3
    gate.set()
    assert recorder.stop()
    assert len(SessionReader(tmp_path / "s")) == accepted.count(True)


def test_new_session_folders_are_unique_and_anonymous(tmp_path: Path) -> None:
    from datetime import datetime

    when = datetime(2026, 11, 29, 10, 15, 0)
    first = new_session_folder(tmp_path, when)
    assert first.name == "session-20261129-101500"
    first.mkdir()
    assert new_session_folder(tmp_path, when).name == "session-20261129-101500-2"
    first.rmdir()  # deleted: its name is still not handed out again to whoever had it
    assert new_session_folder(tmp_path, when, taken=[first]).name == "session-20261129-101500-2"


def test_review_maps_match_the_engine_upsampling(recorded: tuple[Path, list[FrameResult]]) -> None:
    from app.explain.statistics import upsample_map

    folder, _ = recorded
    frame = ReviewSession(folder).frame(0)
    stored = torch.from_numpy(frame.record.mean)
    assert np.array_equal(frame.mean, upsample_map(stored, frame.display.shape).numpy())


def test_background_recorder_stops_even_when_its_thread_died(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    session = SessionRecorder(tmp_path / "s", settings=settings)
    gate = threading.Event()

    def broken_write(result: FrameResult) -> bool:
        gate.wait(10)
        raise RuntimeError("a bug in the writer")

    session.write = broken_write  # type: ignore[method-assign]
    recorder = BackgroundRecorder(session, max_pending=1)
    for i in range(3):
        recorder.submit(fake_result(i, settings))  # the queue is full now
    gate.set()
    start = time.monotonic()
    assert recorder.stop(timeout=5)
    assert time.monotonic() - start < 5
    assert SessionReader(tmp_path / "s").manifest["ended_utc"]  # closed all the same


def test_a_model_change_mid_session_reviews_at_each_models_input_size(tmp_path: Path) -> None:
    import dataclasses

    settings = fake_settings(tmp_path)
    big = np.zeros((48, 48), bool)
    big[8:40, 8:40] = True
    with SessionRecorder(tmp_path / "s", settings=settings) as recorder:
        for i in range(4):
            result = fake_result(i, settings)
            if i >= 2:  # a model with a 48 px input from frame 2 on
                result = dataclasses.replace(
                    result, display=np.zeros((48, 48), np.float32), fov_mask=big
                )
            assert recorder.write(result)
    session = ReviewSession(tmp_path / "s")
    assert [session.frame(i).display.shape for i in range(4)] == [(32, 32)] * 2 + [(48, 48)] * 2
    assert session.frame(3).record.input_size == (48, 48)
