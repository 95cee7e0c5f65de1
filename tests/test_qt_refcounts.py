"""The Qt binding keeps Python's reference counts straight.

PySide6 6.12.0 under Python 3.11 drops a reference to ``True`` on every signal emitted from
Python and to ``None`` on every timer tick; 3.11's ``None`` and ``True`` are not immortal, so
after some 100,000 ticks (a minute or two of the viewer playing) the interpreter aborts with
``Fatal Python error: none_dealloc``. pyproject.toml excludes that release; this test fails
on any release that does it again.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

ROUNDS = 500
SLACK = 50  # other work may take or drop a few references meanwhile


class _Emitter(QObject):
    changed = Signal(int)


def _references() -> dict[str, int]:
    return {name: sys.getrefcount(value) for name, value in (("None", None), ("True", True))}


def _lost(before: dict[str, int]) -> dict[str, int]:
    after = _references()
    return {name: before[name] - after[name] for name in before}


def test_emitting_a_signal_keeps_reference_counts(qapp: Any) -> None:
    emitter, seen = _Emitter(), []
    emitter.changed.connect(seen.append)
    before = _references()
    for i in range(ROUNDS):
        emitter.changed.emit(i)
    lost = _lost(before)
    assert len(seen) == ROUNDS
    assert all(n < SLACK for n in lost.values()), f"references lost over {ROUNDS} emits: {lost}"


def test_timer_ticks_keep_reference_counts(qapp: Any) -> None:
    loop, ticks = QEventLoop(), []
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.timeout.connect(loop.quit)
    before = _references()
    for _ in range(ROUNDS):
        timer.start(0)
        loop.exec()
    lost = _lost(before)
    assert len(ticks) == ROUNDS
    assert all(n < SLACK for n in lost.values()), f"references lost over {ROUNDS} ticks: {lost}"
