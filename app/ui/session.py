"""The viewer's pipeline, opened and replaced without blocking the GUI thread.

Opening a source means building a :class:`~app.pipeline.Pipeline` (opening the source, loading
the checkpoint: a second or more), and replacing one means stopping the old (finishing the
frame being analysed). :class:`PipelineSession` does both on short-lived background threads;
the GUI asks :meth:`PipelineSession.poll` on its timer whether an open has finished. A failed
open leaves the running pipeline alone, so the viewer goes on showing the previous source.
Plain Python, no Qt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.pipeline import FrameSource, Mode, Pipeline, PipelineSettings

__all__ = ["OpenOutcome", "OpenRequest", "PipelineSession", "source_label"]


def source_label(source: FrameSource | str | int | Path) -> str:
    """How to name a source to open in messages: ``capture device 0``, ``video.mp4``, ..."""
    if isinstance(source, FrameSource):
        return f"{source.kind} {source.name}"
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return f"capture device {str(source).strip()}"
    return str(source)


@dataclass(frozen=True)
class OpenRequest:
    """What to open and how.

    Attributes:
        source: a :class:`FrameSource`, or what :func:`app.pipeline.open_source` accepts.
        settings: the inference settings (the checkpoint is loaded when opening).
        mode: live or analysis.
        loop: replay a file from its start after its end.
        speed: playback speed of files in live mode.
        paused: open paused.
    """

    source: FrameSource | str | int | Path
    settings: PipelineSettings
    mode: Mode = Mode.LIVE
    loop: bool = False
    speed: float = 1.0
    paused: bool = False

    @property
    def label(self) -> str:
        return source_label(self.source)

    @property
    def remembered(self) -> str | None:
        """The source as the recent-sources list keeps it (None for an in-memory source)."""
        if isinstance(self.source, FrameSource):
            return None
        if isinstance(self.source, Path):
            return str(self.source.expanduser().resolve())
        if isinstance(self.source, str) and not self.source.strip().isdigit():
            path = Path(self.source).expanduser()
            return str(path.resolve()) if not str(path).startswith("/dev/") else str(path)
        return str(self.source).strip()


@dataclass(frozen=True)
class OpenOutcome:
    """How an open ended: ``error`` is None when the new pipeline runs."""

    request: OpenRequest
    error: BaseException | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Attempt:
    token: int
    request: OpenRequest
    thread: threading.Thread
    started: float
    pipeline: Pipeline | None = None
    error: BaseException | None = None
    done: bool = False


class PipelineSession:
    """Owns the viewer's current :class:`Pipeline` and replaces it off the caller's thread.

    Example::

        session = PipelineSession()
        session.open(OpenRequest("recording.mp4", settings))
        # on the GUI timer:
        outcome = session.poll()      # None, or how the newest open ended
        if session.pipeline is not None:
            result = session.pipeline.take_result()
        # on close:
        session.close()

    Only the newest :meth:`open` counts: an older one still in progress is discarded when it
    finishes (its pipeline stopped). Call every method from one thread (the GUI's).

    Args:
        pipeline_options: passed to every :class:`Pipeline` (e.g. ``watchdog_min_s``).
    """

    def __init__(self, **pipeline_options: Any) -> None:
        self._options = pipeline_options
        self._lock = threading.Lock()
        self._attempts: list[_Attempt] = []
        self._retiring: list[threading.Thread] = []
        self._token = 0
        self._closed = False
        self.pipeline: Pipeline | None = None
        """The running pipeline (None before the first successful open)."""
        self.request: OpenRequest | None = None
        """What :attr:`pipeline` was opened from."""

    @property
    def retiring(self) -> int:
        """Replaced pipelines still stopping on their threads."""
        return sum(t.is_alive() for t in self._retiring)

    @property
    def opening(self) -> bool:
        """An open is in progress."""
        with self._lock:
            return any(a.token == self._token and not a.done for a in self._attempts)

    def open(self, request: OpenRequest) -> None:
        """Start opening ``request`` on a background thread; :meth:`poll` tells how it ended."""
        if self._closed:
            raise RuntimeError("the session is closed")
        self._token += 1
        attempt = _Attempt(self._token, request, threading.Thread(), time.monotonic())
        attempt.thread = threading.Thread(
            target=self._build, args=(attempt,), name="pcle-open", daemon=True
        )
        with self._lock:
            self._attempts.append(attempt)
        attempt.thread.start()

    def _build(self, attempt: _Attempt) -> None:
        request = attempt.request
        pipeline: Pipeline | None = None
        error: BaseException | None = None
        try:
            pipeline = Pipeline(
                request.source,
                request.settings,
                mode=request.mode,
                speed=request.speed,
                loop=request.loop,
                paused=request.paused,
                **self._options,
            )
            pipeline.start()
        except Exception as exc:  # SourceError, SettingsError, or a surprise: report, never die
            error = exc
            if pipeline is not None:
                pipeline.stop()
                pipeline = None
        with self._lock:
            closed = self._closed
            attempt.pipeline, attempt.error, attempt.done = (
                (None, error, True) if closed else (pipeline, error, True)
            )
        if closed and pipeline is not None:  # the session closed while this was opening
            pipeline.stop()

    def poll(self) -> OpenOutcome | None:
        """Swap in a newly opened pipeline; how the newest open ended, once (None otherwise)."""
        with self._lock:
            finished = [a for a in self._attempts if a.done]
            self._attempts = [a for a in self._attempts if not a.done]
        outcome = None
        for attempt in finished:
            attempt.thread.join()
            if self._closed or attempt.token != self._token:
                if attempt.pipeline is not None:
                    self._retire(attempt.pipeline)
                continue
            if attempt.pipeline is not None:
                if self.pipeline is not None:
                    self._retire(self.pipeline)
                self.pipeline, self.request = attempt.pipeline, attempt.request
            seconds = time.monotonic() - attempt.started
            outcome = OpenOutcome(attempt.request, attempt.error, seconds)
        self._retiring = [t for t in self._retiring if t.is_alive()]
        return outcome

    def _retire(self, pipeline: Pipeline) -> None:
        thread = threading.Thread(target=pipeline.stop, name="pcle-retire", daemon=True)
        thread.start()
        self._retiring.append(thread)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop everything: the running pipeline, opens in progress, pipelines being stopped.

        Returns:
            True when every thread has ended within ``timeout`` seconds.
        """
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + timeout
        joined = True
        if self.pipeline is not None:
            joined = self.pipeline.stop(timeout)
            self.pipeline = None
        with self._lock:
            attempts = list(self._attempts)
        for attempt in attempts:
            attempt.thread.join(max(0.0, deadline - time.monotonic()))
            joined &= not attempt.thread.is_alive()
        self.poll()  # stops (on retire threads) whatever those attempts opened
        for thread in self._retiring:
            thread.join(max(0.0, deadline - time.monotonic()))
            joined &= not thread.is_alive()
        self._retiring = [t for t in self._retiring if t.is_alive()]
        return joined
