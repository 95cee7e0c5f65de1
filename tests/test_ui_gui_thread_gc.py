"""Garbage collection runs on the GUI thread only while the viewer's QApplication exists.

A cyclic collection on a worker thread that frees a Qt wrapper crashes the process
(``Fatal Python error: Segmentation fault ... Garbage-collecting`` on the open thread). Every
collection is recorded with the thread it ran on while the viewer plays the demo, opens and
replaces sources (on its open and retire threads) and a worker thread churns out reference
cycles: all of them must run on the main thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.pipeline import PipelineSettings
from app.ui.main_window import MainWindow
from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE, ViewerOptions
from app.ui.recent import PreferencesStore
from app.ui.viewer import application, gui_thread_collector

WAIT_MS = 60_000


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _make_cycles(count: int) -> None:
    for _ in range(count):
        _Cycle()


@pytest.fixture
def collections() -> Iterator[list[tuple[int, int]]]:
    """(thread id, generation) of every garbage collection while the test runs."""
    seen: list[tuple[int, int]] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append((threading.get_ident(), info["generation"]))

    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


def test_the_application_moves_collection_to_the_gui_thread(qapp: Any) -> None:
    application()
    collector = gui_thread_collector()
    assert collector is not None and collector.active
    assert not gc.isenabled()  # automatic collection is off: only the timer collects


def test_every_collection_runs_on_the_gui_thread_while_the_viewer_works(
    qtbot: QtBot, tmp_path: Path, collections: list[tuple[int, int]]
) -> None:
    application()
    main = threading.get_ident()
    options = ViewerOptions(
        source=str(DEMO_SOURCE),
        settings=PipelineSettings(DEMO_CHECKPOINT, method="gradcam++", passes=2, device="cpu"),
        snapshot_dir=tmp_path / "snapshots",
    )
    window = MainWindow(options, PreferencesStore(tmp_path / "viewer.ini"))
    window.show()
    try:
        churn = threading.Thread(target=_make_cycles, args=(200_000,), name="cycle-churn")
        churn.start()
        for _ in range(3):  # open (pcle-open thread) and replace (pcle-retire thread) sources
            shown = window.results_shown
            qtbot.waitUntil(lambda s=shown: window.results_shown >= s + 2, timeout=WAIT_MS)
            window.open_source(str(DEMO_SOURCE))
            qtbot.waitUntil(lambda: not window.session.opening, timeout=WAIT_MS)
        churn.join()
        qtbot.waitUntil(lambda: len(collections) >= 3, timeout=WAIT_MS)  # the timer collected
    finally:
        window.close()
    elsewhere = [generation for thread, generation in collections if thread != main]
    assert not elsewhere, f"{len(elsewhere)} of {len(collections)} collections off the GUI thread"


def test_the_collector_does_the_due_work_and_gives_collection_back(
    qapp: Any, collections: list[tuple[int, int]]
) -> None:
    from PySide6.QtWidgets import QApplication

    from app.ui.gui_thread_gc import GuiThreadCollector

    app = QApplication.instance()
    assert app is not None
    outer = gc.isenabled()
    gc.enable()
    collector = GuiThreadCollector(app, interval_ms=10_000)
    try:
        collector.start()
        assert not gc.isenabled()
        _make_cycles(5_000)  # past generation 0's threshold, and nothing collected it
        assert collections == []
        assert collector.collect_due() >= 1
        assert collections and collections[0][1] == 0
        worker: list[int] = []
        thread = threading.Thread(target=lambda: worker.append(collector.collect_due()))
        _make_cycles(5_000)
        thread.start()
        thread.join()
        assert worker == [0]  # asked from a worker thread, it does nothing
    finally:
        collector.stop()
        assert gc.isenabled()
        collector.setParent(None)
        collector.deleteLater()
        if not outer:
            gc.disable()
