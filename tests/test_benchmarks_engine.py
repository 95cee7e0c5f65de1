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
