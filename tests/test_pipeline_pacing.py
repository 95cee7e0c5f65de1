"""The frame pacer on a fake clock: when a file played in live mode reads its next frame."""

from __future__ import annotations

import pytest

from app.pipeline.pacing import FramePacer

INTERVAL = 0.04  # 25 fps


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _reads(pacer: FramePacer, clock: FakeClock, until: float, speed: float) -> list[float]:
    """The times (relative to the start) at which a reader polling every millisecond reads."""
    start, reads = clock.now, []
    while clock.now - start < until:
        if pacer.wait_s(INTERVAL, speed) == 0.0:
            reads.append(round(clock.now - start, 6))
        clock.now += 0.001
    return reads


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_reads_are_one_interval_over_the_speed_apart(speed: float) -> None:
    clock = FakeClock()
    pacer = FramePacer(clock)
    reads = _reads(pacer, clock, until=0.19, speed=speed)
    step = INTERVAL / speed
    assert reads == pytest.approx([i * step for i in range(int(0.19 / step) + 1)], abs=1.5e-3)


def test_the_first_read_is_due_at_once_and_the_next_one_interval_later() -> None:
    clock = FakeClock()
    pacer = FramePacer(clock)
    assert pacer.due is None
    assert pacer.wait_s(INTERVAL, 1.0) == 0.0
    assert pacer.due == pytest.approx(clock.now + INTERVAL)
    clock.now += 0.01
    assert pacer.wait_s(INTERVAL, 1.0) == pytest.approx(INTERVAL - 0.01)
    assert pacer.due == pytest.approx(clock.now + INTERVAL - 0.01)  # asking reads nothing
    assert pacer.wait_s(INTERVAL, 2.0) == pytest.approx(INTERVAL - 0.01)  # speed: next time


def test_a_late_read_keeps_the_schedule_within_one_interval() -> None:
    clock = FakeClock()
    pacer = FramePacer(clock)
    start = clock.now
    pacer.wait_s(INTERVAL, 1.0)
    clock.now = start + INTERVAL + 0.01  # read 10 ms late: the next stays on the grid
    assert pacer.wait_s(INTERVAL, 1.0) == 0.0
    assert pacer.due == pytest.approx(start + 2 * INTERVAL)


def test_a_pause_keeps_the_schedule_and_a_long_one_resumes_without_a_burst() -> None:
    clock = FakeClock()
    pacer = FramePacer(clock)
    start = clock.now
    pacer.wait_s(INTERVAL, 1.0)
    due = pacer.due
    clock.now = start + 0.01  # paused for less than an interval: nothing is read meanwhile
    assert pacer.wait_s(INTERVAL, 1.0) == pytest.approx(due - clock.now)
    assert pacer.due == due

    clock.now = start + 10 * INTERVAL  # resumed after many intervals: one read now, not ten
    assert pacer.wait_s(INTERVAL, 1.0) == 0.0
    assert pacer.wait_s(INTERVAL, 1.0) == pytest.approx(INTERVAL)
    assert pacer.due == pytest.approx(clock.now + INTERVAL)


def test_a_restart_makes_the_next_read_due_at_once() -> None:
    clock = FakeClock()
    pacer = FramePacer(clock)
    pacer.wait_s(INTERVAL, 1.0)
    clock.now += 0.001
    assert pacer.wait_s(INTERVAL, 1.0) > 0.0
    pacer.restart()  # a seek, a step or a reconnect
    assert pacer.due is None
    assert pacer.wait_s(INTERVAL, 1.0) == 0.0
    assert pacer.due == pytest.approx(clock.now + INTERVAL)
