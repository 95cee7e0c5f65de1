"""The windows' entry points: build the application, open the viewer or the review window,
run until it closes.

``python -m app`` (or ``python -m app view``) calls :func:`run_viewer` with the options the
command line resolved (:func:`app.ui.options.resolve_options`); ``python -m app review
SESSION`` calls :func:`run_review`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.recording import RecordingError
from app.review import ReviewSession
from app.ui.gui_thread_gc import GuiThreadCollector
from app.ui.main_window import MainWindow
from app.ui.options import ViewerOptions
from app.ui.recent import PreferencesStore
from app.ui.review_window import ReviewWindow
from app.ui.theme import apply_theme

__all__ = ["application", "exec_until_closed", "gui_thread_collector", "run_review", "run_viewer"]

_THEMED = "pcle_viewer_themed"
_COLLECTED = "pcle_viewer_gui_thread_gc"
_collector: GuiThreadCollector | None = None


def application(argv: Sequence[str] | None = None) -> QApplication:
    """The running ``QApplication`` (created when there is none), with the viewer's theme.

    From here on, Python's cyclic garbage collector runs on the GUI thread only
    (:class:`~app.ui.gui_thread_gc.GuiThreadCollector`): a collection on a worker thread that
    frees a Qt object crashes the process.
    """
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        app.setApplicationName("pCLE Explainability Viewer")
        app.setOrganizationName("pcle-viewer")
    assert isinstance(app, QApplication)
    if not app.property(_THEMED):
        apply_theme(app)
        app.setProperty(_THEMED, True)
    if not app.property(_COLLECTED):
        global _collector
        _collector = GuiThreadCollector(app)
        _collector.start()
        app.setProperty(_COLLECTED, True)
    return app


def gui_thread_collector() -> GuiThreadCollector | None:
    """The collector :func:`application` installed for the running application, if any."""
    app = QApplication.instance()
    return _collector if app is not None and app.property(_COLLECTED) else None


def run_viewer(
    options: ViewerOptions,
    store: PreferencesStore | None = None,
    fullscreen: bool = False,
    record: bool = False,
) -> int:
    """Show the viewer and run until its window closes; the exit status (see
    :func:`exec_until_closed`). With ``record``, recording starts once the source is open."""
    app = application()
    window = MainWindow(options, store)
    if fullscreen:
        window.toggle_fullscreen()
    else:
        window.showMaximized()
    if record:
        window.toggle_recording()
    return exec_until_closed(app, window)


def run_review(folder: Path, export_dir: Path | None = None) -> int:
    """Review a session until its window closes; the exit status (1: it cannot be opened)."""
    app = application()
    try:
        session = ReviewSession(folder)
    except RecordingError as exc:
        print(f"review: {exc}", file=sys.stderr)
        QMessageBox.critical(None, "Cannot review this session", str(exc))
        return 1
    window = ReviewWindow(session, export_dir=export_dir)
    window.showMaximized()
    return exec_until_closed(app, window)


CLOSING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that close the viewer cleanly (recording finished, threads joined)."""


def exec_until_closed(app: QApplication, window: QWidget) -> int:
    """Run the event loop until ``window`` closes; the exit status.

    SIGINT (Ctrl+C), SIGTERM (``kill``, a shutdown) and SIGHUP (the terminal closed) close
    every window the way the close button does, so a recording is finished and its manifest
    says it was closed cleanly; the exit status is then 128 + the signal's number (130, 143,
    129), as a shell reports a process ended by that signal. A timer lets the interpreter run
    its signal handlers, which it cannot do inside Qt's event loop.
    """
    received: list[int] = []

    def close_on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        app.closeAllWindows()
        window.close()

    previous = {sig: signal.signal(sig, close_on_signal) for sig in CLOSING_SIGNALS}
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        code = app.exec()
    finally:
        wake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received else code
