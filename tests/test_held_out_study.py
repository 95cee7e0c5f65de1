"""``scripts/held_out_study.py`` end to end on a tiny phantom: each held-out recording is
calibrated on the others and processed through the product's path, and the pooled report has
the figures issue 13 asks for (accepted error, conformal coverage, verdict, ECE)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from models.checkpoint import read_metadata, rewrite_metadata
from models.data.phantom import PhantomConfig, write_dataset
from tests.pipeline_support import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["glioblastoma", "meningioma"]


@pytest.fixture
def study() -> Iterator[ModuleType]:
    """The script as a module (registered while the test runs: its dataclasses need it)."""
    path = ROOT / "scripts" / "held_out_study.py"
    spec = importlib.util.spec_from_file_location("held_out_study", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_held_out_study_on_a_tiny_phantom(study: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(
        data, CLASSES, videos_per_class=2, frames_per_video=6, config=PhantomConfig(96, 128)
    )
    held = [f"{c}/{c}_{i}.avi" for c in CLASSES for i in (1, 2)]
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", classes=CLASSES)
    metadata = read_metadata(checkpoint)
    rewrite_metadata(checkpoint, dataclasses.replace(metadata, training={"val_recordings": held}))
    out = tmp_path / "out"
    argv = ["--data", str(data), "--checkpoints", str(checkpoint), "--out", str(out)]
    assert study.main([*argv, "--passes", "3", "--max-frames", "4"]) == 0

    report = json.loads((out / "held_out_study.json").read_text())
    assert sorted(report["recordings"]) == sorted(held)
    pooled = report["pooled"]
    assert pooled["frames"] == sum(r["frames"] for r in report["recordings"].values()) == 16
    for key in ("frame_accuracy", "accepted", "set_coverage", "ece_raw", "ece_calibrated"):
        assert 0.0 <= pooled[key] <= 1.0, key
    assert 1.0 <= pooled["mean_set_size"] <= len(CLASSES)
    verdict = pooled["verdict_right"] + pooled["verdict_wrong"] + pooled["verdict_none"]
    assert abs(verdict - 1.0) < 1e-9
    assert "ECE" in (out / "held_out_study.md").read_text()
    assert not list(out.rglob("*.pt")), "a calibrated copy of the weights was left behind"
