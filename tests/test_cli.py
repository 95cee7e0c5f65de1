"""The command line: explain, its error messages, and the forwarded model-side tools
(train, phantom, demo-model), end to end on small inputs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.preprocess.field_of_view import to_gray_float
from app.render.overlay import to_uint8_gray
from models.architectures import build_model
from models.checkpoint import CheckpointMetadata, save_checkpoint
from models.data.phantom import render_frame
from tests.pipeline_support import REAL_DATA, mpeg1_video

CLASSES = ["glioblastoma", "meningioma", "metastasis"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    meta = CheckpointMetadata(
        arch="resnet18",
        class_names=CLASSES,
        input_size=(64, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4",
        dropout=0.2,
        provenance="test",
    )
    save_checkpoint(path, build_model("resnet18", 3), meta)
    return path


@pytest.fixture(scope="module")
def frame_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("frames") / "frame.png"
    cv2.imwrite(str(path), render_frame("meningioma", seed=1).image)
    return path


def test_explain_writes_frame_overlays_and_maps(
    checkpoint: Path, frame_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "explain",
            str(frame_png),
            "--checkpoint",
            str(checkpoint),
            "--passes",
            "4",
            "--method",
            "gradcam++",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--seed",
            "0",
        ]
    )
    assert code == 0
    raw = cv2.imread(str(out / "raw.png"), cv2.IMREAD_UNCHANGED)
    assert raw.shape == cv2.imread(str(frame_png), cv2.IMREAD_UNCHANGED).shape[:2]
    for name in ("enhanced.png", "risk.png"):
        overlay = cv2.imread(str(out / name))
        assert overlay.shape == (64, 64, 3)
        assert overlay.std() > 0  # not blank
    maps = np.load(out / "maps.npz")
    assert maps["maps"].shape == (4, 2, 2)
    assert maps["mean"].shape == maps["cv"].shape == (2, 2)
    np.testing.assert_allclose(maps["mean"], maps["maps"].mean(0), atol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["class"] in CLASSES and summary["passes"] == 4
    assert abs(sum(summary["probabilities"].values()) - 1) < 1e-4


def test_explain_a_16bit_single_channel_image_and_a_chosen_class(
    checkpoint: Path, tmp_path: Path
) -> None:
    image = render_frame("glioblastoma", seed=2).image.astype(np.uint16) * 257
    path = tmp_path / "frame16.png"
    cv2.imwrite(str(path), image)
    out = tmp_path / "out"
    assert (
        main(
            [
                "explain",
                str(path),
                "--checkpoint",
                str(checkpoint),
                "--original",
                "--class",
                "metastasis",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["class"] == "metastasis" and summary["passes"] == 1 and not summary["mc"]


def explained_raw(video: Path, index: int, checkpoint: Path, out: Path) -> np.ndarray:
    """``explain VIDEO --frame index``'s raw.png; its summary must name that frame."""
    argv = ["explain", str(video), "--frame", str(index), "--checkpoint", str(checkpoint)]
    assert main([*argv, "--original", "--device", "cpu", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frame"] == index
    return cv2.imread(str(out / "raw.png"), cv2.IMREAD_UNCHANGED)


def sequential_frames(video: Path) -> list[np.ndarray]:
    """Every frame of ``video`` as reading it from the start decodes them, as raw.png has it."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while (read := capture.read())[0]:
        frames.append(to_uint8_gray(to_gray_float(read[1])))
    capture.release()
    return frames


def test_explain_a_video_frame_explains_exactly_that_frame(
    checkpoint: Path, tmp_path: Path
) -> None:
    video = mpeg1_video(tmp_path / "video.mpg")
    frames = sequential_frames(video)
    for index in (12, 3, 13, 100, len(frames) - 1):
        raw = explained_raw(video, index, checkpoint, tmp_path / f"out{index}")
        assert np.array_equal(raw, frames[index]), index


@pytest.mark.realdata
def test_explain_a_real_video_frame_explains_exactly_that_frame(
    checkpoint: Path, tmp_path: Path
) -> None:
    """On the Cellvizio files OpenCV's own seek to 3, 5, 11 or 12 lands on frame 13."""
    video = REAL_DATA / "glioblastoma" / "GBM_12.mpg"
    if not video.exists():
        pytest.skip(f"real data not found: {video}")
    frames = sequential_frames(video)
    for index in (3, 5, 11, 12, 0, 300):
        raw = explained_raw(video, index, checkpoint, tmp_path / f"out{index}")
        assert np.array_equal(raw, frames[index]), index


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "FRAME"], "needs a model: pass --checkpoint"),
        (["explain", "missing.png", "--checkpoint", "CKPT"], "no such file"),
        (["explain", "CORRUPT", "--checkpoint", "CKPT"], "not a video OpenCV can read"),
        (["explain", "VIDEO", "--checkpoint", "CKPT", "--frame", "100"], "outside the source"),
        (["explain", "VIDEO", "--checkpoint", "CKPT", "--frame", "12"], "ends before frame 12"),
        (["explain", "FRAME", "--checkpoint", "CKPT", "--frame", "1"], "videos only"),
        (
            ["explain", "FRAME", "--checkpoint", "CKPT", "--class", "astrocytoma"],
            "unknown class 'astrocytoma'",
        ),
        (["explain", "FRAME", "--checkpoint", "FRAME"], "not a PyTorch checkpoint"),
        (["bench", "--methods", "gradcam,lime"], "unknown method"),
    ],
)
def test_bad_input_gets_a_clear_message(
    args: list[str],
    message: str,
    checkpoint: Path,
    frame_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 10)
    video = mpeg1_video(tmp_path / "short.mpg", frames=12)  # declares 11, holds 12
    replace = {
        "FRAME": str(frame_png),
        "CKPT": str(checkpoint),
        "CORRUPT": str(corrupt),
        "VIDEO": str(video),
    }
    assert (
        main(
            [replace.get(a, a) for a in args] + ["--out", str(tmp_path / "o")]
            if args[0] == "explain"
            else args
        )
        == 2
    )
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("train", "python -m models.train"),
        ("phantom", "python -m models.phantom"),
        ("demo-model", "python -m models.demo"),
    ],
)
def test_forwarded_commands_show_their_modules_help(
    command: str, usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {usage}")


def test_phantom_command_passes_every_argument_on(tmp_path: Path) -> None:
    video = tmp_path / "one.avi"
    argv = ["phantom", "--single-video", str(video), "--class", "meningioma", "--frames", "2"]
    assert main([*argv, "--size", "64x80", "--seed", "3"]) == 0
    capture = cv2.VideoCapture(str(video))
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    finally:
        capture.release()


def test_forwarded_argument_errors_are_the_modules_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["phantom"])
    assert exit_info.value.code == 2
    assert "--out --single-video is required" in capsys.readouterr().err


def test_other_commands_still_refuse_unknown_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--bogus"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_sigterm_during_explain_exits_143_and_keeps_the_previous_outputs(
    checkpoint: Path,
    frame_png: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = ["explain", str(frame_png), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--original", "--device", "cpu"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    encode = cv2.imencode

    def encode_then_signal(*args: object) -> object:  # mid-way through writing the pictures
        os.kill(os.getpid(), signal.SIGTERM)
        return encode(*args)

    monkeypatch.setattr(cv2, "imencode", encode_then_signal)
    previous = signal.getsignal(signal.SIGTERM)
    assert main([*argv, "--device", "cpu", "--seed", "1"]) == 143
    assert signal.getsignal(signal.SIGTERM) is previous
    assert "interrupted by SIGTERM" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_explain_a_black_frame_says_there_is_no_tissue(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((96, 128), np.uint8))
    out = tmp_path / "out"
    argv = ["explain", str(black), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--original", "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["field_of_view"] == "no_signal"
    assert summary["warning"].startswith("no signal: the frame is black")
    assert f"warning: {summary['warning']}" in capsys.readouterr().err
