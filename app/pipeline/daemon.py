"""The lifecycle the pipeline's two threads share: start once, ask to stop, join with a timeout."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

__all__ = ["DaemonLoop"]


class DaemonLoop(ABC):
    """A daemon thread running :meth:`_run` (a loop that returns once :meth:`stop` asked it).

    Daemon, so that a thread stuck in a driver call never keeps the process alive.

    Args:
        name: the thread's name (shown in debuggers and tracebacks).
    """

    def __init__(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @abstractmethod
    def stop(self) -> None:
        """Ask the loop to finish (returns at once; see :meth:`join`)."""

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish; True when it has (or never started)."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @abstractmethod
    def _run(self) -> None:
        """The thread's loop."""
