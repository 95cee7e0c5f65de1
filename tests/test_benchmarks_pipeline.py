"""The pipeline benchmark runs end to end and reports its figures (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.benchmarks.pipeline import resident_mb
from app.cli import main
from tests.pipeline_support import phantom_video, tiny_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bench")
    return phantom_video(folder / "v.avi", frames=6), tiny_checkpoint(folder / "m.pt")


@pytest.mark.parametrize("mode", ["analysis", "live"])
def test_bench_pipeline_reports_throughput_latency_and_memory(
    mode: str, files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, checkpoint = files
    report_path = tmp_path / "bench.json"
    argv = ["bench-pipeline", "--source", str(video), "--checkpoint", str(checkpoint)]
    argv += ["--mode", mode, "--passes", "2", "--frames", "15", "--warmup", "2"]
    assert main([*argv, "--rss-every", "5", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["mode"] == mode and report["frames_measured"] >= 15
    assert report["processed_fps"] > 0 and report["latency_ms"]["count"] == report["results"]
    assert report["rss_mb"][0][1] > 0 and len(report["rss_mb"]) >= 3
    if mode == "live":
        assert 15 <= report["input_fps"] <= 35  # the 24 fps video, looped, at its own rate
        assert "latency_p95_drift_ms" in report and report["latency_windows_ms"]
    assert "processed frames/s" in capsys.readouterr().out


def test_resident_memory_is_read() -> None:
    assert 10 < resident_mb() < 100_000
