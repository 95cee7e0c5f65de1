"""A one-item mailbox between two threads: nothing ever queues behind it.

The pipeline passes frames from the capture thread to the inference worker, and results from
the worker to the consumer, through a :class:`Slot`. The producer chooses per item how to hand
it over:

- :meth:`Slot.put` (live mode) replaces whatever the slot holds and never waits; a replaced
  item was never taken, so it is counted in :attr:`Slot.dropped`. The consumer only ever sees
  the newest item.
- :meth:`Slot.handoff` (analysis mode) waits until the slot is free, places the item, and
  returns once the consumer has taken it: no item is lost and at most one waits.

Either way the slot holds at most one item, so memory cannot grow however fast the producer is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Slot"]

T = TypeVar("T")

_POLL_S = 0.1  # waiters re-check their cancel condition at least this often


class Slot(Generic[T]):
    """A thread-safe single-item mailbox (see the module documentation).

    Args:
        name: what to call the slot in ``repr`` (e.g. "frames", "results").
    """

    def __init__(self, name: str = "slot") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._placed = 0  # sequence number of the last item placed
        self._taken = 0  # sequence number of the last item taken
        self._taken_count = 0
        self._dropped = 0

    # -- producer

    def put(self, item: T) -> T | None:
        """Place ``item``, replacing the one held (which is then dropped and counted).

        Never blocks. Does nothing once the slot is closed.

        Returns:
            The replaced item, or None when the slot was empty.
        """
        with self._cond:
            if self._closed:
                return None
            replaced = self._item if self._full else None
            if self._full:
                self._dropped += 1
            self._item, self._full = item, True
            self._placed += 1
            self._cond.notify_all()
            return replaced

    def handoff(
        self,
        item: T,
        cancelled: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Place ``item`` once the slot is free and wait until the consumer has taken it.

        Args:
            item: what to hand over.
            cancelled: checked whenever the call wakes up (at least every 0.1 s, and on
                :meth:`wake`); when it returns True the call gives up.
            timeout: give up after this many seconds (None: no limit).

        Returns:
            True when the consumer took ``item``. False when the slot was closed, the call was
            cancelled or timed out: if ``item`` was already placed it stays in the slot (the
            consumer may still take it, or a later :meth:`put` replaces it).
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def give_up() -> bool:
            if self._closed or (cancelled is not None and cancelled()):
                return True
            return deadline is not None and time.monotonic() >= deadline

        def wait() -> None:
            left = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            self._cond.wait(max(left, 0.0))

        with self._cond:
            while self._full:
                if give_up():
                    return False
                wait()
            if give_up():
                return False
            self._item, self._full = item, True
            self._placed += 1
            mine = self._placed
            self._cond.notify_all()
            while self._taken < mine:
                if not self._full or self._placed != mine:
                    return False  # replaced by a put() or cleared: never taken
                if give_up():
                    return False
                wait()
            return True

    # -- consumer

    def get(self, timeout: float | None = None) -> T | None:
        """Take the item, waiting up to ``timeout`` seconds for one (None: until one comes or
        the slot is closed; 0: do not wait).

        Returns:
            The item, or None when none came in time or the slot is closed and empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait(_POLL_S)
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            item, self._item, self._full = self._item, None, False
            self._taken = self._placed
            self._taken_count += 1
            self._cond.notify_all()
            return item

    def peek(self) -> T | None:
        """The item held, without taking it (None when empty)."""
        with self._cond:
            return self._item if self._full else None

    def clear(self) -> T | None:
        """Remove the held item without counting it as dropped; return it (or None)."""
        with self._cond:
            item = self._item if self._full else None
            self._item, self._full = None, False
            self._cond.notify_all()
            return item

    # -- both

    @property
    def full(self) -> bool:
        """True while an item waits in the slot."""
        with self._cond:
            return self._full

    @property
    def taken(self) -> int:
        """Items taken by :meth:`get` so far."""
        with self._cond:
            return self._taken_count

    @property
    def dropped(self) -> int:
        """Items replaced by :meth:`put` before anyone took them."""
        with self._cond:
            return self._dropped

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def wake(self) -> None:
        """Wake every waiter so it re-checks its ``cancelled`` condition now."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new items and release every waiter; a held item can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("full" if self._full else "empty")
        return f"Slot({self.name!r}, {state}, dropped={self._dropped})"
