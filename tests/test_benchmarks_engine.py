"""The engine benchmark (``python -m app bench``) writes its report schema (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main


def test_bench_writes_the_report_schema(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--arch",
            "resnet18",
            "--methods",
            "gradcam++,reciprocam",
            "--passes",
            "3",
            "--device",
            "cpu",
            "--input-size",
            "64",
            "--repeats",
            "1",
            "--trunk-dropout",
            "0.2",
            "--backends",
            "torch,auto",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert (report["arch"], report["device"], report["passes"]) == ("resnet18", "cpu", 3)
    assert report["trunk_dropout"] == 0.2
    assert [row["method"] for row in report["rows"]] == ["gradcam++", "reciprocam"]
    for row in report["rows"]:
        assert set(row) == {"method", "forward_ms", "original_ms", "proposed_ms", "loop_ms"}
        assert all(row[k] > 0 for k in row if k.endswith("_ms"))
    rows = [(row["method"], row["backend"]) for row in report["backends"]]
    assert rows == [(m, b) for m in ("gradcam++", "reciprocam") for b in ("torch", "auto")]
    for row in report["backends"]:
        assert set(row) == {
            "method",
            "backend",
            "ran_on",
            "original_ms",
            "convert_ms",
            "first_ms",
            "steady_ms",
            "map_error",
        }
        assert 0 <= row["map_error"] <= 1e-4, "torch and auto (exact) give torch's maps"
        assert all(row[k] > 0 for k in row if k.endswith("_ms"))
        assert row["ran_on"] == "torch" if row["backend"] == "torch" else row["ran_on"] != "auto"


def test_bench_refuses_an_unknown_backend(capsys) -> None:
    assert main(["bench", "--backends", "torch,tensorrt", "--input-size", "32"]) == 2
    assert "unknown backend(s) ['tensorrt']" in capsys.readouterr().err
