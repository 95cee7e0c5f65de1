"""Remembered settings and recent sources (QSettings in a temporary INI file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE, resolve_options
from app.ui.recent import MAX_RECENT, PreferencesStore, ViewerPreferences, push_recent


def test_push_recent_moves_to_front_and_caps() -> None:
    assert push_recent(["a", "b", "c"], "b") == ["b", "a", "c"]
    assert push_recent([], "a") == ["a"]
    items = [str(i) for i in range(MAX_RECENT)]
    assert push_recent(items, "new")[:2] == ["new", "0"]
    assert len(push_recent(items, "new")) == MAX_RECENT


def test_preferences_round_trip_through_qsettings(tmp_path: Path) -> None:
    path = tmp_path / "viewer.ini"
    prefs = (
        ViewerPreferences()
        .replace(method="reciprocam", passes=7, mode="analysis", opacity=0.3, loop=False)
        .replace(backend="auto")
        .replace(checkpoint="/models/a.pt", snapshot_dir="/snaps")
        .with_recent_source("/videos/one.mp4")
        .with_recent_source("0")
    )
    PreferencesStore(path).save(prefs)
    assert path.exists()
    loaded = PreferencesStore(path).load()
    assert loaded == prefs
    assert loaded.recent_sources == ("0", "/videos/one.mp4")


def test_missing_or_broken_preferences_give_defaults(tmp_path: Path) -> None:
    assert PreferencesStore(tmp_path / "none.ini").load() == ViewerPreferences()
    broken = tmp_path / "broken.ini"
    broken.write_text("[viewer]\npreferences=not json\n")
    assert PreferencesStore(broken).load() == ViewerPreferences()
    odd = ViewerPreferences.from_dict(
        {
            "method": "nope",
            "passes": 1000,
            "mode": "sideways",
            "opacity": 7,
            "loop": "yes",
            "backend": "tensorrt",
            "recent_sources": ["a", 3, "a", "b"],
        }
    )
    assert odd.method == "gradcam++" and odd.passes == 10 and odd.mode == "live"
    assert odd.opacity == 1.0 and odd.loop is True and odd.recent_sources == ("a", "b")
    assert odd.backend == "torch"


def test_a_remembered_runtime_that_is_no_longer_installed_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.ui.recent.installed_runtimes", lambda: ["onnxruntime"])
    assert ViewerPreferences.from_dict({"backend": "onnxruntime"}).backend == "onnxruntime"
    assert ViewerPreferences.from_dict({"backend": "openvino"}).backend == "torch"


def test_start_options_prefer_command_line_then_memory_then_demo(tmp_path: Path) -> None:
    model = tmp_path / "last.pt"
    model.write_bytes(b"x")
    remembered = ViewerPreferences(method="scorecam", passes=5, mode="analysis", opacity=0.2)
    options = resolve_options(remembered.replace(checkpoint=str(model)))
    assert options.source == str(DEMO_SOURCE)
    assert options.settings.checkpoint == model
    assert (options.settings.method, options.settings.passes) == ("scorecam", 5)
    assert options.mode.value == "analysis" and options.opacity == 0.2
    options = resolve_options(
        remembered.replace(checkpoint=str(tmp_path / "gone.pt")),
        source="0",
        method="gradcam",
        passes=3,
        mode="live",
        snapshot_dir=tmp_path,
    )
    assert options.source == "0" and options.settings.checkpoint == DEMO_CHECKPOINT
    assert (options.settings.method, options.settings.passes) == ("gradcam", 3)
    assert options.mode.value == "live" and options.snapshot_dir == tmp_path
