"""Outputs that cannot be written (issue 11, items 8 and 9): an ``--out`` or ``--json`` that is
a file or a folder in the wrong place, read-only or under ``/proc`` is refused before any work
with one line and status 3; a disk that fills up mid-way ends with status 3 and leaves the
previous outputs as they were."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import app.benchmarks.engine
import app.benchmarks.pipeline
import app.benchmarks.recording
import app.pipeline
from app.cli import main
from app.pipeline import headless
from models.data.phantom import render_frame
from tests.output_support import read_only
from tests.pipeline_support import phantom_video, tiny_checkpoint


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    frame = folder / "frame.png"
    cv2.imwrite(str(frame), render_frame("meningioma", seed=1).image)
    return {
        "frame": frame,
        "video": phantom_video(folder / "video.avi", frames=6),
        "checkpoint": tiny_checkpoint(folder / "tiny.pt"),
    }


def _never(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the work started although the output cannot be written")


# command -> (argv for an output path, where the work starts, checked not to run)
COMMANDS: dict[str, tuple[Callable[[dict[str, Path], str], list[str]], tuple[object, str]]] = {
    "explain": (
        lambda i, out: [
            "explain",
            str(i["frame"]),
            "--checkpoint",
            str(i["checkpoint"]),
            "--out",
            out,
        ],
        (app.pipeline, "FrameAnalyzer"),
    ),
    "process": (
        lambda i, out: [
            "process",
            str(i["video"]),
            "--checkpoint",
            str(i["checkpoint"]),
            "--out",
            out,
        ],
        (headless, "process"),
    ),
    "bench-pipeline": (
        lambda i, out: ["bench-pipeline", "--source", str(i["video"]), "--json", out],
        (app.benchmarks.pipeline, "benchmark_pipeline"),
    ),
    "bench-recording": (
        lambda i, out: [
            "bench-recording",
            "--source",
            str(i["video"]),
            "--checkpoint",
            str(i["checkpoint"]),
            "--json",
            out,
        ],
        (app.benchmarks.recording, "benchmark_recording"),
    ),
    "bench": (lambda i, out: ["bench", "--json", out], (app.benchmarks.engine, "benchmark_engine")),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("where", ["under a file", "read-only", "/proc", "a folder as the file"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    command: str,
    where: str,
    inputs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_argv, (module, work) = COMMANDS[command]
    writes_a_file = command.startswith("bench")
    name = "report.json" if writes_a_file else "out"
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"keep me")
    locked = tmp_path / "locked"
    locked.mkdir()
    if where == "a folder as the file" and not writes_a_file:
        target = blocker  # a file where the output folder should be
    elif where == "a folder as the file":
        target = locked  # a folder where the report file should be
    else:
        target = {"under a file": blocker, "read-only": locked, "/proc": Path("/proc")}[
            where
        ] / name
    monkeypatch.setattr(module, work, _never)
    if where == "read-only":
        with read_only(locked):
            status = main(make_argv(inputs, str(target)))
    else:
        status = main(make_argv(inputs, str(target)))
    err = capsys.readouterr().err
    assert status == 3, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(target) in err
    assert blocker.read_bytes() == b"keep me" and list(locked.iterdir()) == []


def full_disk(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_full_disk_while_explain_writes_keeps_the_previous_explanation(
    inputs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = COMMANDS["explain"][0](inputs, str(out))
    assert main([*argv, "--original", "--device", "cpu"]) == 0
    before = snapshot(out)
    monkeypatch.setattr(np, "savez_compressed", full_disk)  # the fourth of five files
    assert main([*argv, "--device", "cpu", "--seed", "3"]) == 3
    assert "No space left on device" in capsys.readouterr().err
    assert snapshot(out) == before  # no picture replaced, no temporary file left


def test_a_full_disk_while_process_writes_keeps_the_previous_outputs(
    inputs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = COMMANDS["process"][0](inputs, str(out))
    assert main([*argv, "--original", "--device", "cpu", "--quiet", "--max-frames", "2"]) == 0
    before = snapshot(out)
    rows = 0
    real_row = headless.csv_row

    def row_then_full(summary: object) -> dict[str, object]:
        nonlocal rows
        rows += 1
        if rows == 3:
            full_disk()
        return real_row(summary)

    monkeypatch.setattr(headless, "csv_row", row_then_full)
    assert main([*argv, "--original", "--device", "cpu", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert snapshot(out) == before
