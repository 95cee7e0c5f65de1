"""The recording benchmark (``python -m app bench-recording``) runs end to end and reports its
figures (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from tests.pipeline_support import phantom_video, tiny_checkpoint


def test_bench_recording_reports_write_time_disk_and_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, checkpoint = (
        phantom_video(tmp_path / "v.avi", frames=6),
        tiny_checkpoint(tmp_path / "m.pt"),
    )
    report_path = tmp_path / "bench.json"
    argv = ["bench-recording", "--source", str(video), "--checkpoint", str(checkpoint)]
    assert main([*argv, "--frames", "4", "--passes", "2", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report == json.loads(capsys.readouterr().out)
    assert report["frames"] == 4 and report["passes"] == 2 and report["source"] == "v.avi"
    assert 0 < report["write_ms"]["median"] <= report["write_ms"]["max"]
    assert report["kib_per_frame"] > 0 and report["analysis_fps_with_recording"] > 0


def test_bench_recording_refuses_a_missing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "m.pt")
    argv = ["bench-recording", "--source", str(tmp_path / "none.avi")]
    assert main([*argv, "--checkpoint", str(checkpoint)]) == 2
    assert "error:" in capsys.readouterr().err
