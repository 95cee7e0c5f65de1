"""The viewer's entry point: build the application, the window, start the pipeline.

``python -m app`` (or ``python -m app view``) calls :func:`run_viewer` with the options the
command line resolved (:func:`app.ui.options.resolve_options`).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.ui.gui_thread_gc import GuiThreadCollector
from app.ui.main_window import MainWindow
from app.ui.options import ViewerOptions
from app.ui.recent import PreferencesStore
from app.ui.theme import apply_theme

__all__ = ["application", "exec_until_closed", "gui_thread_collector", "run_viewer"]

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
    options: ViewerOptions, store: PreferencesStore | None = None, fullscreen: bool = False
) -> int:
    """Show the viewer and run until its window closes; the exit status."""
    app = application()
    window = MainWindow(options, store)
    if fullscreen:
        window.toggle_fullscreen()
    else:
        window.showMaximized()
    return exec_until_closed(app, window)


def exec_until_closed(app: QApplication, window: QWidget) -> int:
    """Run the event loop until ``window`` closes; the exit status.

    Ctrl+C in the terminal closes the window (stopping what it runs) instead of being lost
    inside Qt's event loop: a timer lets the interpreter run its signal handlers.
    """
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        return app.exec()
    finally:
        wake.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
