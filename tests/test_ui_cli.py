"""``python -m app`` opens the viewer: the ``view`` subcommand, and no subcommand at all."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

import app.ui.display
import app.ui.viewer
from app.cli import build_parser, main
from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE, ViewerOptions
from app.ui.recent import PreferencesStore

Launch = tuple[ViewerOptions, PreferencesStore, bool]
"""What the viewer was started with: options, settings store, record from the start."""


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    calls: list[Launch] = []

    def fake_run_viewer(
        options: ViewerOptions,
        store: PreferencesStore,
        fullscreen: bool = False,
        record: bool = False,
    ) -> int:
        calls.append((options, store, record))
        return 0

    monkeypatch.setattr(app.ui.viewer, "run_viewer", fake_run_viewer)
    return calls


def test_no_subcommand_opens_the_viewer_on_the_demo(launched: list[Launch], tmp_path: Path) -> None:
    assert main(["--settings", str(tmp_path / "v.ini")]) == 0
    options, store, record = launched[-1]
    assert options.source == str(DEMO_SOURCE)
    assert options.settings.checkpoint == DEMO_CHECKPOINT
    assert store.path == str(tmp_path / "v.ini")
    assert not record
    assert main(["--settings", str(tmp_path / "v.ini"), "--record"]) == 0
    assert launched[-1][2]


def test_run_with_a_display_opens_the_viewer_on_the_demo(
    launched: list[Launch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run`` on a desktop: the ``view`` command's handler, given the demo video and
    model explicitly (so remembered settings cannot replace them)."""
    monkeypatch.setattr(app.ui.display, "display_available", lambda: True)
    assert main(["run"]) == 0
    options, _, record = launched[-1]
    assert options.source == str(DEMO_SOURCE)
    assert options.settings.checkpoint == DEMO_CHECKPOINT
    assert not record


def test_view_options_override(launched: list[Launch], tmp_path: Path) -> None:
    argv = [
        "--source", "0", "--method", "reciprocam", "--passes", "3", "--mode", "analysis",
        "--device", "cpu", "--no-loop", "--snapshots", str(tmp_path), "--settings",
        str(tmp_path / "v.ini"),
    ]  # fmt: skip
    assert main(["view", *argv]) == 0
    assert main(argv) == 0
    for options, *_ in launched:
        assert options.source == "0"
        assert (options.settings.method, options.settings.passes) == ("reciprocam", 3)
        assert options.settings.device == "cpu" and options.mode.value == "analysis"
        assert options.loop is False and options.snapshot_dir == tmp_path


def test_view_refuses_bad_options(
    launched: list[Launch],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = ["--settings", str(tmp_path / "v.ini")]
    assert main(["view", "--passes", "0", *settings]) == 2
    assert main(["view", "--checkpoint", str(tmp_path / "none.pt"), *settings]) == 2
    assert main(["view", "--device", "tpu", *settings]) == 2
    assert not launched
    assert "no such checkpoint" in capsys.readouterr().err


def test_other_subcommands_are_intact() -> None:
    parser = build_parser()
    commands = ("run", "explain", "bench", "process", "bench-pipeline", "bench-recording", "view")
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
