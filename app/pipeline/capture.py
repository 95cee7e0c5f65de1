"""The capture thread: reads the source, paces files, obeys playback commands.

It is the only thread that touches the source. It reads frames, keeps the newest one for the
raw panel, and passes each to the frame slot: with ``put`` in live mode (a frame the worker
had no time for is replaced and counted as dropped) or ``handoff`` in analysis mode (it waits
until the worker has taken the frame). In live mode a file is read at its frame rate times the
speed, like a probe (:class:`~app.pipeline.pacing.FramePacer`); a device paces itself.
Playback commands (play, pause, step, seek, speed, loop, mode) are posted by other threads and
carried out between frames.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from app.pipeline.daemon import DaemonLoop
from app.pipeline.events import EventKind, EventLog
from app.pipeline.mode import Mode
from app.pipeline.pacing import FramePacer
from app.pipeline.slots import Slot
from app.pipeline.sources import FrameSource, SourceError, SourceFrame, SourceState
from app.pipeline.stats import PipelineStats
from app.pipeline.watchdog import StallWatchdog

__all__ = ["MAX_SPEED", "MIN_SPEED", "CaptureThread"]

log = logging.getLogger(__name__)

MIN_SPEED = 0.05
MAX_SPEED = 16.0
_IDLE_WAIT_S = 0.1  # how long the thread sleeps between checks when it has nothing to do
_RETRY_WAIT_S = 0.005  # a source with no frame yet is asked again after this


@dataclass(frozen=True)
class _Commands:
    """The playback commands one pass of the capture loop carries out, taken under the lock."""

    seek: int | None  # the frame to continue from, if a seek was asked for
    steps: int  # frames still to step forward while paused
    paused: bool
    mode: Mode
    loop: bool
    speed: float

    @property
    def stepping(self) -> bool:
        """Paused, with a frame to step to: it is read at once, unpaced."""
        return self.paused and self.steps > 0


class CaptureThread(DaemonLoop):
    """Reads ``source`` into ``frames`` on its own thread (see the module documentation).

    Args:
        source: the frame source (used by this thread only, once started).
        frames: the slot the inference worker takes frames from.
        stats: where frame counts, read times and drops are recorded.
        watchdog: told when the thread waits for the source and when frames arrive.
        events: where source problems are posted.
        mode: live or analysis.
        speed: playback speed factor for files in live mode.
        loop: start again at the first frame after the last (seekable sources).
        paused: start paused.
        reopen_interval_s: how often to try to reopen a lost device.
    """

    def __init__(
        self,
        source: FrameSource,
        frames: Slot[SourceFrame],
        stats: PipelineStats,
        watchdog: StallWatchdog,
        events: EventLog,
        *,
        mode: Mode = Mode.LIVE,
        speed: float = 1.0,
        loop: bool = False,
        paused: bool = False,
        reopen_interval_s: float = 1.0,
    ) -> None:
        super().__init__("pcle-capture")
        self.source = source
        self._frames = frames
        self._stats = stats
        self._watchdog = watchdog
        self._events = events
        self._reopen_interval_s = float(reopen_interval_s)
        self._cond = threading.Condition()
        self._mode = Mode(mode)
        self._speed = _clamp_speed(speed)
        self._loop = bool(loop)
        self._paused = bool(paused)
        self._pending_seek: int | None = None
        self._pending_steps = 0
        self._stopping = False
        self._ended = False
        self._lost_reported = False
        self._damage_reported = False
        self._latest: SourceFrame | None = None
        self._watchdog.set_paused(self._paused)
        self._update_watchdog_interval()

    # -- lifecycle

    def stop(self) -> None:
        """Ask the thread to finish (returns at once; see :meth:`join`)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._frames.wake()
        self.source.interrupt()

    # -- state read by other threads

    @property
    def latest_frame(self) -> SourceFrame | None:
        with self._cond:
            return self._latest

    @property
    def ended(self) -> bool:
        """The source has no more frames and playback does not loop."""
        with self._cond:
            return self._ended

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def loop(self) -> bool:
        return self._loop

    # -- commands (any thread)

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = bool(paused)
            self._watchdog.set_paused(self._paused)
            self._cond.notify_all()

    def step(self, delta: int = 1) -> bool:
        """Move ``delta`` frames (negative: back) while paused; False when not paused, or
        stepping back on a source that cannot seek."""
        delta = int(delta)
        with self._cond:
            if not self._paused or delta == 0:
                return False
            if delta > 0:
                self._pending_steps += delta
            else:
                if not self.source.seekable:
                    return False
                shown = self._latest.source_index if self._latest is not None else 0
                base = self._pending_seek if self._pending_seek is not None else shown
                self._pending_seek = max(0, base + delta)
                self._pending_steps = 0
            self._cond.notify_all()
        return True

    def seek(self, index: int) -> None:
        """Continue from frame ``index`` (shown at once when paused). A failure (not
        seekable, out of range) is posted as a SEEK_FAILED event."""
        with self._cond:
            self._pending_seek = int(index)
            self._pending_steps = 0
            self._cond.notify_all()
        self._frames.wake()

    def set_speed(self, speed: float) -> float:
        with self._cond:
            self._speed = _clamp_speed(speed)
            self._update_watchdog_interval()
            self._cond.notify_all()
            return self._speed

    def set_loop(self, loop: bool) -> None:
        with self._cond:
            self._loop = bool(loop)
            self._cond.notify_all()

    def set_mode(self, mode: Mode) -> None:
        with self._cond:
            self._mode = Mode(mode)
            self._update_watchdog_interval()
            self._cond.notify_all()
        self._frames.wake()

    def _update_watchdog_interval(self) -> None:
        paced = self._mode is Mode.LIVE and not self.source.self_paced
        interval = self.source.frame_interval_s / (self._speed if paced else 1.0)
        self._watchdog.set_frame_interval(interval)

    # -- the thread

    def _handoff_cancelled(self) -> bool:
        return self._stopping or self._mode is not Mode.ANALYSIS or self._pending_seek is not None

    def _wait(self, seconds: float) -> None:
        with self._cond:
            if not self._stopping:
                self._cond.wait(max(seconds, 0.0))

    def _run(self) -> None:
        try:
            self._loop_until_stopped()
        except Exception as exc:  # the thread must never die silently
            log.exception("capture thread failed")
            self._events.post(EventKind.FRAME_FAILED, f"capture stopped: {exc!r}")

    def _loop_until_stopped(self) -> None:
        """One pass per frame: take the commands, reconnect a lost device, wait for the
        pacer, read, and hand the frame over."""
        pacer = FramePacer()
        while (commands := self._take_commands(pacer)) is not None:
            if self.source.state is SourceState.LOST:
                self._reconnect()
                pacer.restart()
                continue
            if not self._read_due(commands, pacer):
                continue
            frame = self._read(commands.loop)
            if frame is None:
                continue
            self._arrived(frame, stepped=commands.stepping)
            self._hand_over(frame, commands.mode)

    def _take_commands(self, pacer: FramePacer) -> _Commands | None:
        """The command intake: the commands for the next pass, once there is something to do,
        with a seek carried out (it restarts ``pacer``); None once asked to stop."""
        while (commands := self._wait_for_commands()) is not None:
            if commands.seek is None:
                return commands
            pacer.restart()
            if self._seek(commands.seek):
                return self._after_seek(commands)
        return None

    def _wait_for_commands(self) -> _Commands | None:
        """Take the pending commands once there is something to do; None once asked to stop.

        While paused, or at the end without looping, only a seek or a step is something to do.
        """
        with self._cond:
            while not self._stopping:
                commands = _Commands(
                    seek=self._pending_seek,
                    steps=self._pending_steps,
                    paused=self._paused,
                    mode=self._mode,
                    loop=self._loop,
                    speed=self._speed,
                )
                self._pending_seek = None
                idle = commands.paused or (self._ended and not commands.loop)
                if commands.seek is not None or commands.steps != 0 or not idle:
                    return commands
                self._cond.wait(_IDLE_WAIT_S)
            return None

    def _after_seek(self, commands: _Commands) -> _Commands:
        """A seek while paused shows the frame sought: it counts as (at least) one step."""
        if not commands.paused:
            return commands
        with self._cond:
            self._pending_steps = max(commands.steps, 1)
            return replace(commands, steps=self._pending_steps)

    def _read_due(self, commands: _Commands, pacer: FramePacer) -> bool:
        """Whether to read now. A file in live mode waits for ``pacer`` (here, at most one idle
        wait, woken by any command; False when still not due); other reads are unpaced and
        restart it."""
        if commands.mode is Mode.LIVE and not self.source.self_paced and not commands.stepping:
            wait = pacer.wait_s(self.source.frame_interval_s, commands.speed)
            if wait > 0:
                self._wait(min(wait, _IDLE_WAIT_S))
                return False
        else:
            pacer.restart()
        return True

    def _read(self, loop: bool) -> SourceFrame | None:
        """One frame from the source; None when it gave none (a read error is reported; for
        the end, a lost device or a frame not there yet see :meth:`_no_frame`)."""
        self._watchdog.waiting()
        try:
            frame = self.source.read()
        except SourceError as exc:
            self._watchdog.idle()
            self._stats.record_frame_error()
            self._events.post(EventKind.FRAME_FAILED, str(exc))
            return None
        if frame is None:
            self._no_frame(loop)
        return frame

    def _arrived(self, frame: SourceFrame, *, stepped: bool) -> None:
        """Count ``frame`` (and the step it made) and keep it as the newest for the raw panel."""
        if stepped:
            with self._cond:
                self._pending_steps = max(0, self._pending_steps - 1)
        self._lost_reported = False
        for notice in self.source.take_notices():
            self._events.post(EventKind.SOURCE_DAMAGED, f"{self.source.name}: {notice}")
        self._watchdog.frame_arrived(frame.capture_time)
        self._stats.record_frame(frame.capture_time, frame.read_ms)
        with self._cond:
            self._latest = frame

    def _hand_over(self, frame: SourceFrame, mode: Mode) -> None:
        """Pass ``frame`` to the worker: live mode replaces an untaken frame (a drop), analysis
        mode waits until the worker took it (or a stop, mode change or seek cancels)."""
        if mode is Mode.LIVE:
            if self._frames.put(frame) is not None:
                self._stats.record_drop()
        else:
            self._frames.handoff(frame, cancelled=self._handoff_cancelled)

    def _no_frame(self, loop: bool) -> None:
        """``read()`` gave nothing: the end, a lost device, or no frame yet."""
        source = self.source
        state = source.state
        if state is not SourceState.OK:
            with self._cond:
                self._pending_steps = 0  # nothing to step to
        if state is SourceState.END:
            self._watchdog.idle()
            if source.ended_early is not None and not self._damage_reported:
                self._damage_reported = True
                self._events.post(EventKind.SOURCE_DAMAGED, f"{source.name}: {source.ended_early}")
            if loop and source.seekable:
                self._seek(0)
                return
            with self._cond:
                already = self._ended
                self._ended = True
            self._watchdog.ended()
            if not already:
                self._events.post(EventKind.SOURCE_ENDED, f"{source.name}: end of the recording")
        elif state is SourceState.LOST:
            self._reconnect()
        elif state is SourceState.OK:
            self._wait(_RETRY_WAIT_S)

    def _seek(self, index: int) -> bool:
        try:
            self.source.seek(index)
        except SourceError as exc:
            self._events.post(EventKind.SEEK_FAILED, str(exc))
            return False
        with self._cond:
            self._ended = False
        self._watchdog.resumed()
        return True

    def _reconnect(self) -> None:
        """Report a lost device once, then try to reopen it every ``reopen_interval_s``."""
        if not self._lost_reported:
            self._lost_reported = True
            self._watchdog.lost()
            self._events.post(
                EventKind.DEVICE_LOST,
                f"{self.source.name} stopped delivering frames; trying to reconnect",
            )
        self._wait(self._reopen_interval_s)
        if self._stopping:
            return
        try:
            back = self.source.reopen()
        except Exception as exc:  # a driver can raise anything here; keep trying
            log.warning("reopening %s failed: %r", self.source.name, exc)
            back = False
        if back:
            self._lost_reported = False
            self._watchdog.resumed()
            self._events.post(EventKind.DEVICE_BACK, f"{self.source.name} delivers again")


def _clamp_speed(speed: float) -> float:
    value = float(speed)
    if not value > 0:
        raise ValueError(f"speed must be positive, got {speed!r}")
    return min(max(value, MIN_SPEED), MAX_SPEED)
