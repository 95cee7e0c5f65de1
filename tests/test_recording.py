"""Session recording: round trip, a killed recorder, a full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from app import private_files
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from app.preprocess.field_of_view import FieldOfView
from app.recording import RecordingError, SessionReader, SessionRecorder, describe_source
from models.checkpoint import CheckpointMetadata, checkpoint_sha256
from tests.session_support import explanation_from

CLASSES = ("glioblastoma", "meningioma", "metastasis")
ROOT = Path(__file__).resolve().parents[1]


def fake_metadata(classes: tuple[str, ...] = CLASSES, **more: Any) -> CheckpointMetadata:
    """Metadata of a ResNet-18 with 32 px input; ``more`` adds fields (e.g. ``intended_use``)."""
    return CheckpointMetadata(
        arch="resnet18",
        class_names=list(classes),
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4",
        dropout=0.2,
        provenance="test",
        **more,
    )


def fake_settings(folder: Path) -> PipelineSettings:
    checkpoint = folder / "model.pt"
    if not checkpoint.exists():
        checkpoint.write_bytes(b"not really a checkpoint")
    return PipelineSettings(checkpoint=checkpoint, method="gradcam++", passes=4, device="cpu")


def fake_image(i: int, kind: str = "grey8") -> np.ndarray:
    rng = np.random.default_rng(i)
    if kind == "grey16":
        return rng.integers(0, 65535, (24, 20), dtype=np.uint16)
    if kind == "bgr8":
        return rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)
    if kind == "grey3":  # grey video as OpenCV decodes it: three equal channels
        return np.repeat(rng.integers(0, 255, (24, 20, 1), dtype=np.uint8), 3, axis=2)
    if kind == "float":
        return rng.random((24, 20), dtype=np.float32)
    return np.full((24, 20), i % 256, dtype=np.uint8)


def fake_result(i: int, settings: PipelineSettings, kind: str = "grey8") -> FrameResult:
    """A FrameResult built from small arrays; maps and probabilities depend on ``i``."""
    g = torch.Generator().manual_seed(i)
    maps = torch.rand((4, 5, 6), generator=g)
    maps[:, 0, 0] = 0.0  # mean 0: CV undefined (NaN)
    probs = torch.softmax(torch.randn((4, 3), generator=g), dim=1)
    explanation = explanation_from(maps, probs, mutual_information=0.01 * i)
    yy, xx = np.mgrid[:32, :32]
    now = time.monotonic()
    return FrameResult(
        frame_id=i,
        source_index=i,
        capture_time=now - 0.05,
        source_time=i / 24,
        result_time=now,
        raw=fake_image(i, kind),
        display=np.zeros((32, 32), np.float32),
        fov_mask=(yy - 16) ** 2 + (xx - 16) ** 2 < 15**2,
        fov=FieldOfView(10.0, 12.0, 9.0),
        explanation=explanation,
        class_names=CLASSES,
        timings_ms={"read": 0.5, "preprocess": 1.0, "explain": 2.0, "explain.forward": 1.0},
        settings=settings,
        metadata=fake_metadata(),
    )


def test_round_trip(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    kinds = ["grey8", "grey16", "bgr8", "float", "grey3"]
    results = [fake_result(i, settings, kinds[i % 5]) for i in range(10)]
    video = tmp_path / "secret-patient" / "clip.avi"
    with SessionRecorder(
        tmp_path / "session", settings=settings, source=video, chunk_frames=4
    ) as recorder:
        assert all(recorder.write(r) for r in results)
    assert not recorder.recording and recorder.error is None

    session = SessionReader(tmp_path / "session")
    m = session.manifest
    assert session.closed_cleanly and m["frames"] == 10 and m["ended_utc"]
    assert m["source"] == "video file (.avi)" and "secret-patient" not in json.dumps(m)
    assert "clip" not in json.dumps(m)  # a file name can name a patient too
    assert m["checkpoint"]["sha256"] == checkpoint_sha256(settings.checkpoint)
    assert m["checkpoint"]["metadata"]["class_names"] == list(CLASSES)
    assert (m["method"], m["passes"]) == ("gradcam++", 4)
    assert "lossless" in m["storage"]["frames"] and m["software"]["version"]
    assert len(session) == 10
    assert not list((tmp_path / "session" / "results").glob("*.partial.npz"))

    for i, r in enumerate(results):
        image, rec = session.frame(i)
        assert image.dtype == r.raw.dtype and np.array_equal(image, r.raw)
        ex = r.explanation
        cv = ex.cv.numpy()
        assert np.array_equal(np.isnan(rec.cv), np.isnan(cv)) and np.isnan(rec.cv[0, 0])
        np.testing.assert_allclose(rec.mean, ex.mean.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(rec.cv, cv, rtol=1e-3, atol=1e-4)  # NaN == NaN here
        np.testing.assert_allclose(rec.probs, ex.mean_probs.numpy(), rtol=1e-6)
        assert rec.pass_probs is not None and rec.pass_probs.shape == (4, 3)
        assert (rec.frame_id, rec.class_idx, rec.class_name) == (i, r.class_idx, r.class_name)
        assert rec.entropy == pytest.approx(r.entropy, rel=1e-6)
        assert rec.mean_cv_in_fov == pytest.approx(r.mean_cv_in_fov(), rel=1e-5)
        assert rec.latency_ms == pytest.approx(50, abs=1) and rec.timings_ms["read"] == 0.5
        assert rec.fov == (10.0, 12.0, 9.0)

    files = sorted(p.name for p in (tmp_path / "session" / "frames").rglob("00000[0-4]*"))
    assert files == ["000000.png", "000001.png", "000002.png", "000003.npy", "000004.g3.png"]
    grey3 = next((tmp_path / "session").rglob("000004.g3.png"))
    assert cv2.imread(str(grey3), cv2.IMREAD_UNCHANGED).shape == (24, 20)  # one channel on disk

    timeline = session.timeline()
    assert timeline.class_idx.tolist() == [r.class_idx for r in results]
    assert timeline.mean_cv.shape == (10,) and np.all(np.diff(timeline.time_s) >= 0)
    rows = session.table()
    assert [int(row["frame_id"]) for row in rows] == list(range(10))
    assert session.display_times() == {}  # headless: nothing was shown
    assert rows[0]["class"] == results[0].class_name and rows[0]["explain_forward_ms"] == "1.00"


def test_source_descriptions(tmp_path: Path) -> None:
    video = tmp_path / "Jane_Doe_1962.avi"
    video.write_bytes(b"")
    assert describe_source(video) == "video file (.avi)"
    assert describe_source(video, include_paths=True) == str(video.resolve())
    assert describe_source(0) == "capture device 0"
    assert describe_source("/dev/video2") == "capture device /dev/video2"
    assert describe_source(tmp_path) == "image folder"
    assert describe_source([tmp_path / "a.png", tmp_path / "b.png"]) == "2 images"
    assert describe_source("theatre 3 endomicroscope") == "theatre 3 endomicroscope"
    settings = fake_settings(tmp_path)
    with SessionRecorder(
        tmp_path / "s", settings=settings, source=video, include_paths=True
    ) as recorder:
        pass
    manifest = SessionReader(tmp_path / "s").manifest
    assert manifest["source"] == str(video.resolve()) and manifest["frames"] == 0
    with pytest.raises(RecordingError, match="not an empty folder"):
        SessionRecorder(tmp_path / "s", settings=settings)
    assert recorder.write(fake_result(0, settings)) is False  # closed


def test_real_pipeline(tmp_path: Path) -> None:
    from app.pipeline.headless import process
    from tests.pipeline_support import phantom_video, tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    video = phantom_video(tmp_path / "clip.avi", frames=5)
    settings = PipelineSettings(checkpoint=checkpoint, method="gradcam", passes=3, device="cpu")
    seen: list[FrameResult] = []
    with SessionRecorder(tmp_path / "session", settings=settings, source=video) as recorder:

        def on_result(result: FrameResult) -> None:
            seen.append(result)
            assert recorder.write(result)

        process(video, settings, tmp_path / "out", progress=False, on_result=on_result)
    session = SessionReader(tmp_path / "session")
    assert len(session) == len(seen) == 5
    assert session.manifest["checkpoint"]["metadata"]["input_size"] == [64, 64]
    for i, result in enumerate(seen):
        image, rec = session.frame(i)
        assert np.array_equal(image, result.raw)
        assert rec.mean.shape == tuple(result.explanation.mean.shape) == (2, 2)
        np.testing.assert_allclose(rec.mean, result.explanation.mean.numpy(), atol=1e-3)


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from tests.test_recording import fake_result, fake_settings
from app.recording import SessionRecorder
folder = Path(sys.argv[1])
settings = fake_settings(folder.parent)
rec = SessionRecorder(folder, settings=settings, chunk_frames=64, flush_interval_s=0.5)
i = 0
while True:
    assert rec.write(fake_result(i, settings))
    i += 1
    print(i, flush=True)
    time.sleep(0.01)
"""


def test_killed_recorder_leaves_a_readable_session(tmp_path: Path) -> None:
    folder = tmp_path / "session"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    progress: list[tuple[float, int]] = []  # (when the parent saw it, frames written)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress.append((time.monotonic(), int(line)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120  # a cap on waiting for the event, not a timing

    def enough() -> bool:  # two seconds, and more than a chunk even on a busy machine
        return (
            bool(progress)
            and time.monotonic() - progress[0][0] >= 2.0
            and (max((n for t, n in progress if t <= time.monotonic() - 1.0), default=0) > 64)
        )

    while not enough() and time.monotonic() < deadline:
        assert proc.poll() is None, "the recorder process died"
        time.sleep(0.05)
    killed_at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(5)
    assert progress, "the recorder never wrote a frame"
    written_1s_before = max((n for t, n in progress if t <= killed_at - 1.0), default=0)
    assert written_1s_before > 64  # at least one complete chunk and a partial one

    session = SessionReader(folder)
    assert not session.closed_cleanly and session.manifest["frames"] is None
    assert session.manifest["checkpoint"]["metadata"]["input_size"] == [32, 32]  # from frame 0
    assert len(session) >= written_1s_before
    for i in range(len(session)):
        image, rec = session.frame(i)
        assert rec.position == rec.frame_id == i
        assert np.array_equal(image, fake_image(i))
    rows = len(session.table())
    assert rows >= len(session)
    (folder / "display.csv").write_text(
        "frame_id,display_s,capture_to_display_ms\n3,0.5,40.0\n4,0."
    )
    assert session.display_times() == {3: (0.5, 40.0)}  # the row cut short is dropped
    with open(folder / "frames.csv", "a") as fh:  # a row cut short by the kill
        fh.write("123,45,0.1")
    assert len(session.table()) == rows

    from app.review import ReviewSession  # the killed session reviews without a model

    (tmp_path / "model.pt").unlink()
    review = ReviewSession(folder)
    last = review.frame(len(review) - 1)
    assert last.panels().ndim == 3 and last.record.frame_id == len(review) - 1


def test_disk_full_stops_recording_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fake_settings(tmp_path)
    folder = tmp_path / "session"
    disk_full = False
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if disk_full and str(dst).startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(private_files.os, "replace", replace)
    recorder = SessionRecorder(folder, settings=settings, chunk_frames=4, flush_interval_s=60)
    assert all(recorder.write(fake_result(i, settings)) for i in range(6))
    assert recorder.flush() and recorder.frames_saved == 6
    disk_full = True
    assert recorder.write(fake_result(6, settings)) is False
    assert recorder.error is not None and "disk is full" in recorder.error
    assert "6 frames" in recorder.error and not recorder.recording
    assert recorder.write(fake_result(7, settings)) is False
    recorder.close()  # the manifest update fails too: no exception
    assert not list(folder.rglob(".*.tmp"))

    session = SessionReader(folder)
    assert not session.closed_cleanly and len(session) == 6
    for i in range(6):
        image, rec = session.frame(i)
        assert rec.frame_id == i and np.array_equal(image, fake_image(i))
    assert len(session.table()) == 6


def test_two_recorders_started_on_one_new_folder_at_once_only_one_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.recording import writer

    settings, folder = fake_settings(tmp_path), tmp_path / "session"
    first: list[SessionRecorder] = []
    real_make_dirs = writer.make_private_dirs
    other_started = threading.Event()

    def the_other_starts_meanwhile(path: Path, **kwargs: Any) -> Path:
        made = real_make_dirs(path, **kwargs)
        if Path(path) == folder and not other_started.is_set():  # between check and claim
            other_started.set()
            first.append(SessionRecorder(folder, settings=settings, source=None))
        return made

    monkeypatch.setattr(writer, "make_private_dirs", the_other_starts_meanwhile)
    with pytest.raises(RecordingError, match="already being recorded into"):
        SessionRecorder(folder, settings=settings, source=None)
    monkeypatch.undo()
    with first[0] as recorder:
        assert recorder.write(fake_result(0, settings))
    assert len(SessionReader(folder)) == 1  # the first recording, whole


def test_a_recorder_that_recorded_nothing_can_remove_its_session(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    new = SessionRecorder(tmp_path / "new", settings=settings, source=None)
    assert new.close_or_remove() and not (tmp_path / "new").exists()
    given = tmp_path / "given"
    given.mkdir()
    assert SessionRecorder(given, settings=settings, source=None).close_or_remove()
    assert given.is_dir() and not any(given.iterdir())  # the user's folder stays, empty
    kept = SessionRecorder(tmp_path / "kept", settings=settings, source=None)
    kept.write(fake_result(0, settings))
    assert not kept.close_or_remove() and len(SessionReader(tmp_path / "kept")) == 1
