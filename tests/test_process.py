"""Headless processing (``python -m app process``): panel video and per-frame CSV."""

from __future__ import annotations

import csv
import math
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.explain.runtimes import APPROXIMATE, installed_runtimes
from app.pipeline import headless
from app.pipeline.sources import VideoFileSource
from app.recording import SessionReader
from app.render.panel_video import count_video_frames
from app.render.panels import render_panels
from tests.pipeline_support import (
    CLASSES,
    REAL_DATA,
    calibrated_copy,
    damaged_copies,
    mpeg1_video,
    phantom_video,
    tiny_checkpoint,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom_video(tmp_path_factory.mktemp("video") / "phantom.avi", frames=12)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as table:
        return list(csv.DictReader(table))


def outputs(out: Path) -> tuple[Path, Path]:
    videos = sorted(out.glob("*.panels.*"))
    tables = sorted(out.glob("*.frames.csv"))
    assert len(videos) == 1 and len(tables) == 1
    return videos[0], tables[0]


def test_process_writes_a_panel_video_and_a_row_per_frame(
    checkpoint: Path, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(out)]
    code = main([*args, "--passes", "3", "--device", "cpu", "--quiet"])
    assert code == 0
    panels, table = outputs(out)
    printed = capsys.readouterr().out
    assert str(panels) in printed and str(table) in printed
    assert count_video_frames(panels) == 12
    capture = cv2.VideoCapture(str(panels))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape[1] > 2 * frame.shape[0]  # three panels side by side
    rows = read_rows(table)
    assert len(rows) == 12
    assert [int(r["frame_id"]) for r in rows] == list(range(12))
    assert [int(r["source_index"]) for r in rows] == list(range(12))
    expected = {
        "capture_s",
        "result_s",
        "class",
        "entropy_nats",
        "mutual_information_nats",
        "mean_cv_in_fov",
        "latency_ms",
        "read_ms",
        "preprocess_ms",
        "explain_ms",
        "total_ms",
        *(f"p_{name}" for name in CLASSES),
    }
    assert expected <= set(rows[0])
    for row in rows:
        assert row["class"] in CLASSES
        assert sum(float(row[f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-4)
        assert float(row["result_s"]) > float(row["capture_s"])
        assert float(row["latency_ms"]) > 0


def test_max_frames_and_panel_height(checkpoint: Path, video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*args, "--max-frames", "4", "--panel-height", "100", "--quiet"]) == 0
    panels, table = outputs(out)
    assert count_video_frames(panels) == 4 and len(read_rows(table)) == 4
    capture = cv2.VideoCapture(str(panels))
    height = capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    capture.release()
    assert 100 < height < 130  # panel plus header


@pytest.mark.skipif(not installed_runtimes(), reason="no inference runtime installed")
def test_a_runtime_backend_gives_the_same_rows_as_torch(
    checkpoint: Path, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--backend auto`` converts the trunk for the installed runtimes (its cache entry shows
    it); with the same seed every probability in the CSV matches torch's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PCLE_CACHE_DIR", str(cache))
    tables = {}
    for backend in ("torch", "auto"):
        out = tmp_path / backend
        args = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(out)]
        extra = ["--backend", backend, "--max-frames", "3", "--seed", "1", "--device", "cpu"]
        assert main([*args, *extra, "--passes", "3", "--quiet"]) == 0
        tables[backend] = read_rows(outputs(out)[1])
    assert len(tables["auto"]) == len(tables["torch"]) == 3
    for ours, theirs in zip(tables["auto"], tables["torch"], strict=True):
        probabilities = [k for k in ours if k.startswith("p_")]
        assert probabilities
        for key in probabilities:
            assert float(ours[key]) == pytest.approx(float(theirs[key]), abs=1e-4)
        assert ours["class"] == theirs["class"]
    (entry,) = (cache / "prefix").iterdir()
    assert (entry / "prefix.onnx").is_file()
    checks = (entry / "checks.json").read_text()
    exact = [name for name in installed_runtimes() if name not in APPROXIMATE]
    assert exact and all(name in checks for name in exact)


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x00garbage" * 500)
    return path


ERROR_CASES = {
    # case: (arguments after "process", given tmp folder d, video v, checkpoint c; message)
    "missing-file": (lambda d, v, c: [str(d / "missing.avi"), "--checkpoint", str(c)], "no such"),
    "corrupt-video": (
        lambda d, v, c: [str(_garbage(d / "corrupt.avi")), "--checkpoint", str(c)],
        "cannot open",
    ),
    "bad-checkpoint": (lambda d, v, c: [str(v), "--checkpoint", str(_garbage(d / "b.pt"))], "b.pt"),
    "no-checkpoint": (lambda d, v, c: [str(v)], "needs a model"),
    "passes": (lambda d, v, c: [str(v), "--checkpoint", str(c), "--passes", "0"], "from 1 to 64"),
    "class": (lambda d, v, c: [str(v), "--checkpoint", str(c), "--class", "x"], "unknown class"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_exit_2_without_traceback(
    case: str,
    checkpoint: Path,
    video: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_args, message = ERROR_CASES[case]
    out = tmp_path / "out"
    argv = ["process", *make_args(tmp_path, video, checkpoint), "--out", str(out)]
    assert main([*argv, "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not list(out.glob("*.panels.*"))


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="real pCLE videos not available")
def test_process_the_first_frames_of_a_real_video(checkpoint: Path, tmp_path: Path) -> None:
    videos = sorted(REAL_DATA.glob("*/*.mpg"))
    if not videos:
        pytest.skip("no real video found")
    out = tmp_path / "real"
    argv = ["process", str(videos[0]), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--max-frames", "10", "--passes", "4", "--quiet"]) == 0
    panels, table = outputs(out)
    rows = read_rows(table)
    assert count_video_frames(panels) == 10 and len(rows) == 10
    assert [int(r["source_index"]) for r in rows] == list(range(10))
    assert all(r["mean_cv_in_fov"] != "" for r in rows)  # the disc was found: CV defined


def test_a_failed_run_leaves_the_previous_results_as_they_were(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    frame = _first_frame(tmp_path / "frame.png")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(checkpoint), "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(["process", str(frame), *argv]) == 0
    video, table = outputs(out)
    assert (video.name.split(".")[0], table.name) == ("frame", "frame.frames.csv")  # not "1 images"
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    undecodable = tmp_path / "other" / "frame.png"  # same output names, nothing to analyse
    undecodable.parent.mkdir()
    undecodable.write_bytes(np.random.default_rng(0).bytes(500))
    assert main(["process", str(undecodable), *argv]) == 2
    assert "could be analysed" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # and no partial file


def _first_frame(path: Path) -> Path:
    """A phantom frame as an image file at ``path``."""
    capture = cv2.VideoCapture(str(phantom_video(path.with_suffix(".avi"), frames=1)))
    ok, image = capture.read()
    capture.release()
    assert ok and cv2.imwrite(str(path), image)
    path.with_suffix(".avi").unlink()
    return path


@pytest.mark.parametrize("case", ["corrupt-video", "bad-checkpoint"])
def test_a_failed_record_run_leaves_no_session_to_block_the_next(
    case: str, checkpoint: Path, video: Path, tmp_path: Path
) -> None:
    make_args, _ = ERROR_CASES[case]
    session = tmp_path / "session"
    argv = ["process", *make_args(tmp_path, video, checkpoint), "--out", str(tmp_path / "out")]
    assert main([*argv, "--record", str(session), "--quiet", "--device", "cpu"]) == 2
    assert not session.exists()
    argv = ["process", str(video), "--checkpoint", str(checkpoint), "--max-frames", "2"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--record", str(session), "--quiet"]) == 0
    assert session.is_dir()


def test_a_damaged_video_keeps_its_frame_numbers_and_the_gap_is_reported(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = damaged_copies(mpeg1_video(tmp_path / "whole.mpg"), tmp_path)["overwritten"]
    with VideoFileSource(damaged) as source:  # what the decoder makes of it
        expected = [frame.source_index for frame in source]
        (first, last), *_ = source.gaps
    out = tmp_path / "out"
    argv = ["process", str(damaged), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--original", "--device", "cpu", "--quiet"]) == 0
    rows = read_rows(outputs(out)[1])
    assert [int(r["source_index"]) for r in rows] == expected
    assert expected[first] == last + 1  # the rows after the gap keep the decoder's numbers
    assert [float(r["source_time_s"]) for r in rows] == pytest.approx(
        [index / 24.0 for index in expected], abs=1e-4
    )
    assert f"frames {first} to {last} ({last - first + 1} frames) did not decode" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_process_record_like_the_end_of_the_video(
    signum: int,
    status: int,
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The signal arrives while the third frame is drawn (as ``timeout`` or Ctrl+C would):
    that frame is finished, the video, the CSV and the session are closed, the summary is
    printed and the status is 128 + the signal."""
    video = phantom_video(tmp_path / "long.avi", frames=40)
    drawn = 0

    def render_then_signal(*args: object, **kwargs: object) -> object:
        nonlocal drawn
        drawn += 1
        if drawn == 3:
            os.kill(os.getpid(), signum)
        return render_panels(*args, **kwargs)

    monkeypatch.setattr(headless, "render_panels", render_then_signal)
    before = signal.getsignal(signum)
    out, session = tmp_path / "out", tmp_path / "session"
    argv = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(out)]
    argv += ["--record", str(session), "--original", "--device", "cpu", "--quiet"]
    assert main(argv) == status
    assert signal.getsignal(signum) is before  # the command's handlers are gone again
    panels, table = outputs(out)
    assert len(read_rows(table)) == count_video_frames(panels) == 3
    recorded = SessionReader(session)
    assert recorded.closed_cleanly and recorded.manifest["frames"] == 3 == len(recorded)
    assert recorded.readable_frames == 3
    printed = capsys.readouterr()
    assert "3 frames in" in printed.out and "recorded 3 frames" in printed.out
    assert f"interrupted by {signal.Signals(signum).name}" in printed.err
    assert not list(out.glob(".*partial*"))


def test_a_signal_before_the_first_frame_keeps_the_previous_outputs(
    checkpoint: Path, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    argv = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--max-frames", "2", "--original", "--quiet"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def signal_instead_of_analysing(*args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGTERM)
        raise RuntimeError("no frame of phantom.avi could be analysed")

    monkeypatch.setattr(headless, "_write_outputs", signal_instead_of_analysing)
    assert main([*argv, "--original", "--quiet"]) == 143
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_black_frames_are_marked_in_the_table_and_reported(
    checkpoint: Path, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    capture = cv2.VideoCapture(str(video))
    for name in ("0.png", "2.png"):
        cv2.imwrite(str(frames / name), capture.read()[1])
    capture.release()
    cv2.imwrite(str(frames / "1.png"), np.zeros((96, 128), np.uint8))
    out = tmp_path / "out"
    argv = ["process", str(frames), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--original", "--device", "cpu", "--quiet"]) == 0
    rows = read_rows(outputs(out)[1])
    assert [r["field_of_view"] for r in rows] == ["detected", "no_signal", "detected"]
    assert "1 of 3 frames show no tissue" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", [0.0, math.inf])
def test_a_calibrated_checkpoint_fills_the_calibrated_columns(
    threshold: float, checkpoint: Path, video: Path, tmp_path: Path
) -> None:
    calibrated = calibrated_copy(checkpoint, tmp_path, threshold)
    out, session = tmp_path / "out", tmp_path / "session"
    argv = ["process", str(video), "--checkpoint", str(calibrated), "--out", str(out)]
    argv += ["--record", str(session), "--passes", "2", "--device", "cpu", "--quiet"]
    assert main([*argv, "--max-frames", "3"]) == 0
    rows = read_rows(outputs(out)[1])
    recorded = SessionReader(session)
    for position, row in enumerate(rows):
        assert 0.0 < float(row["calibrated_p"]) <= 1.0
        assert row["uncertain"] == ("1" if math.isinf(threshold) else "0")
        members = row["prediction_set"].split("|")
        assert row["class"] in members and set(members) <= set(CLASSES)
        again = recorded.frame(position)[1].summary()  # the recording gives the same back
        assert again.calibrated_p == pytest.approx(float(row["calibrated_p"]), abs=1e-6)
        assert again.uncertain == (row["uncertain"] == "1")
        assert "|".join(again.prediction_set) == row["prediction_set"]
        # the verdict pools the calibrated frames so far; one site, no restart after the first
        assert row["window_frames"] == str(position + 1)
        assert row["window_restart"] == ("start" if position == 0 else "")
        verdict = (
            "UNCERTAIN" if math.isinf(threshold) else again.class_names[again.verdict.class_idx]
        )
        assert row["window_class"] == verdict
        assert float(row["window_p"]) == pytest.approx(again.verdict.probability, abs=1e-6)
        assert again.verdict.calibrated and again.verdict.uncertain == math.isinf(threshold)
    plain = tmp_path / "plain"
    argv = ["process", str(video), "--checkpoint", str(checkpoint), "--out", str(plain)]
    assert main([*argv, "--original", "--device", "cpu", "--quiet", "--max-frames", "1"]) == 0
    (row,) = read_rows(outputs(plain)[1])
    assert row["calibrated_p"] == row["uncertain"] == row["prediction_set"] == ""
    assert row["window_class"] == row["class"] and row["window_frames"] == "1"  # raw MC mean


def test_the_analyzer_applies_the_calibration_of_its_mode(
    checkpoint: Path, video: Path, tmp_path: Path
) -> None:
    from app.calibration.temperature import scaled_probabilities
    from app.pipeline import FrameAnalyzer, PipelineSettings

    calibrated = calibrated_copy(checkpoint, tmp_path, threshold=0.9)
    with VideoFileSource(video) as source:
        frame = source.read()
    for mc, passes in ((True, 3), (False, 1)):
        analyzer = FrameAnalyzer(PipelineSettings(calibrated, passes=passes, mc=mc, seed=0))
        result = analyzer(frame)
        expected = scaled_probabilities(result.explanation.probs.numpy()[None], 2.0)[0]
        np.testing.assert_allclose(result.calibrated.probabilities, expected, rtol=1e-9)
        summary = result.summary(None)
        assert summary.calibrated_p == pytest.approx(expected[summary.predicted_idx])
        assert summary.uncertain == (expected.max() < 0.9)
    assert FrameAnalyzer(PipelineSettings(checkpoint, passes=2)).calibration is None
