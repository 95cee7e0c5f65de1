"""The one-item mailbox: live put drops and counts, analysis handoff loses nothing."""

from __future__ import annotations

import threading
import time

from app.pipeline.slots import Slot


def test_put_keeps_only_the_newest_and_counts_drops() -> None:
    slot: Slot[int] = Slot()
    assert slot.put(1) is None
    assert slot.put(2) == 1
    assert slot.put(3) == 2
    assert slot.dropped == 2 and slot.full
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0) is None and slot.taken == 1


def test_get_waits_for_an_item_and_times_out() -> None:
    slot: Slot[str] = Slot()
    threading.Timer(0.05, slot.put, args=("late",)).start()
    assert slot.get(timeout=2.0) == "late"
    start = time.monotonic()
    assert slot.get(timeout=0.1) is None
    assert time.monotonic() - start >= 0.09


def test_handoff_returns_only_when_the_consumer_took_the_item() -> None:
    slot: Slot[int] = Slot()
    done = threading.Event()

    def produce() -> None:
        slot.handoff(7)
        done.set()

    threading.Thread(target=produce).start()
    assert not done.wait(0.15)  # nobody took it yet
    assert slot.get(timeout=1.0) == 7
    assert done.wait(1.0)


def test_handoff_loses_nothing_and_keeps_order_with_a_slow_consumer() -> None:
    slot: Slot[int] = Slot()
    items = list(range(60))
    peak = []

    def produce() -> None:
        for item in items:
            assert slot.handoff(item)

    producer = threading.Thread(target=produce)
    producer.start()
    got = []
    while len(got) < len(items):
        peak.append(int(slot.full))  # never more than the one item waiting
        item = slot.get(timeout=2.0)
        assert item is not None
        got.append(item)
        if item % 10 == 0:
            time.sleep(0.01)
    producer.join(2.0)
    assert got == items and slot.dropped == 0 and max(peak) <= 1


def test_handoff_gives_up_when_cancelled_or_closed() -> None:
    slot: Slot[int] = Slot()
    cancel = threading.Event()
    threading.Timer(0.05, lambda: (cancel.set(), slot.wake())).start()
    assert slot.handoff(1, cancelled=cancel.is_set) is False
    assert slot.peek() == 1  # placed, not taken: it stays for the consumer
    assert slot.handoff(2, timeout=0.05) is False  # the slot is still full
    threading.Timer(0.05, slot.close).start()
    assert slot.handoff(3) is False
    assert slot.get(timeout=0) == 1  # a held item can still be taken after close
    assert slot.get(timeout=None) is None  # closed and empty: returns at once
