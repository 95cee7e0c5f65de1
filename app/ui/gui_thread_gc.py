"""Python's cyclic garbage collector, run on the GUI thread only while Qt is up.

CPython runs an automatic collection on whichever thread happens to cross the allocation
threshold. When that is a worker thread (opening a source, capture, inference, the recorder)
and the collection frees a Qt wrapper held in a reference cycle (a widget, a timer, a
pyqtgraph item), Qt destroys the object off its thread and the process may segfault.

:class:`GuiThreadCollector` is the standard remedy (pyqtgraph's ``GarbageCollector``): it turns
automatic collection off and runs the collections that are due from a timer on the GUI thread,
one generation at a time, with the thresholds the interpreter had. Reference counting still
frees acyclic garbage at once, on any thread; only cycles wait for the GUI thread.
:func:`app.ui.viewer.application` installs one for the life of the ``QApplication``.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QCoreApplication, QObject, QTimer

__all__ = ["GuiThreadCollector"]


class GuiThreadCollector(QObject):
    """Runs due garbage collections on the GUI thread from a timer.

    Args:
        app: the running application; the collector is its child, so it lives as long as the
            application and its timer fires on the GUI thread.
        interval_ms: how often to check whether a collection is due.

    Call :meth:`start` on the GUI thread; :meth:`stop` restores automatic collection.
    """

    def __init__(self, app: QCoreApplication, interval_ms: int = 500) -> None:
        super().__init__(app)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._gui_thread = threading.get_ident()

    @property
    def active(self) -> bool:
        """Whether automatic collection is off and the timer collects instead."""
        return self._timer.isActive()

    def start(self) -> None:
        """Turn automatic collection off and collect from the timer instead."""
        if threading.get_ident() != self._gui_thread:
            raise RuntimeError("GuiThreadCollector.start must be called on the GUI thread")
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and give collection back to the interpreter as it was."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    def collect_due(self) -> int:
        """Collect each generation whose allocation count passed its threshold; objects freed.

        Generation 1 is only examined when generation 0 was collected, and 2 only after 1, as
        the interpreter itself does. Called by the timer, and by anything on the GUI thread
        that wants the due work done now (the test suite between tests).
        """
        if threading.get_ident() != self._gui_thread:
            return 0  # never on a worker thread: that is the whole point
        freed = 0
        due = zip(gc.get_count(), self._thresholds, strict=True)
        for generation, (count, threshold) in enumerate(due):
            if threshold <= 0 or count <= threshold:
                break
            freed += gc.collect(generation)
        return freed
