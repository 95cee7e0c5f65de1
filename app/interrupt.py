"""Signals that end a command: SIGINT (Ctrl+C), SIGTERM (``kill``, ``timeout``, systemd) and
SIGHUP (the terminal closed).

Outside a :func:`stop_on_signals` block a signal raises :class:`Interrupted` in the main
thread, so every ``finally`` runs (temporary outputs are removed, atomic writes are never half
done) and :func:`app.cli.main` reports it with status 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a process ended by that signal.
A command that can stop like the end of its input (``process``) runs its loop inside
:func:`stop_on_signals` instead: the signal only sets a flag, the loop finishes the frame in
hand, the command closes its outputs, prints its summary and returns :func:`exit_status`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = [
    "ENDING_SIGNALS",
    "Interrupted",
    "StopRequest",
    "deferred_signals",
    "exit_status",
    "raise_on_signals",
    "stop_on_signals",
]

ENDING_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals a command treats as "stop now, cleanly"."""


def exit_status(signum: int) -> int:
    """128 + ``signum``: the status a shell reports for a process ended by that signal."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A signal ended the command; ``signum`` says which (SIGINT arrives as this as well).

    A subclass of :class:`KeyboardInterrupt`, so code that already survives Ctrl+C (worker
    shutdown, ``finally`` clean-ups) treats SIGTERM the same way.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = int(signum)


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _handled_by(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Every signal in :data:`ENDING_SIGNALS` goes to ``handler`` within the block; the
    previous handlers are restored on exit. A no-op off the main thread (Python only runs
    signal handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in ENDING_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, every signal in :data:`ENDING_SIGNALS` raises :class:`Interrupted` in
    the main thread."""
    with _handled_by(_raise_interrupted):
        yield


class StopRequest:
    """Set by a signal inside :func:`stop_on_signals`; the loop polls :meth:`is_set`."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def is_set(self) -> bool:
        """Whether a signal asked the command to stop."""
        return self._event.is_set()

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = int(signum)
        self._event.set()

    @property
    def exit_status(self) -> int | None:
        """128 + the signal's number once one arrived, else None."""
        return None if self.signum is None else exit_status(self.signum)

    @property
    def signal_name(self) -> str | None:
        """``SIGTERM`` and so on, once one arrived."""
        return None if self.signum is None else signal_name(self.signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, an ending signal sets the yielded :class:`StopRequest` instead of
    raising; a second signal raises :class:`Interrupted` (the user insists).
    The previous handlers are restored on exit. A no-op off the main thread."""
    request = StopRequest()

    def request_stop(signum: int, _frame: object) -> None:
        if request.is_set():
            raise Interrupted(signum)
        request.set(signum)

    with _handled_by(request_stop):
        yield request


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold ending signals back while the block runs (a few renames that must happen all or
    not at all), then deliver the first one that arrived. A no-op off the main thread."""
    held: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        held.append(signum)

    try:
        with _handled_by(hold):
            yield
    finally:
        if held:  # delivered now, to the handlers of before the block
            signal.raise_signal(held[0])
