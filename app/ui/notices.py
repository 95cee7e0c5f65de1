"""What the viewer tells the user about the source and the pipeline, as :class:`Notice` objects.

Plain functions of the pipeline's :class:`~app.pipeline.WatchdogStatus` and
:class:`~app.pipeline.PipelineEvent` objects, no Qt: the window shows a notice in the status
bar and, when it matters, in a banner over the panels.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from app.pipeline import EventKind, PipelineEvent, StallReason, WatchdogStatus

__all__ = ["Level", "Notice", "event_notice", "failure_notice", "stall_notice"]

_FRAME_FAILED = re.compile(r"^frame \d+ could not be analysed: (.*)$", re.DOTALL)


class Level(str, enum.Enum):
    """How loud a notice is (the banner's colour)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    """One message for the user.

    Attributes:
        text: a sentence or two, saying what happened and what the viewer does about it.
        level: how loud.
        banner: show it in a banner over the panels (else the status bar only).
    """

    text: str
    level: Level = Level.INFO
    banner: bool = False


def stall_notice(status: WatchdogStatus) -> Notice | None:
    """The banner while the watchdog reports a stall; None while frames arrive (or paused)."""
    if not status.stalled:
        return None
    if status.reason is StallReason.END_OF_SOURCE:
        return Notice("End of the recording. Press Space to play it again.", Level.INFO, True)
    if status.reason is StallReason.DEVICE_LOST:
        text = (
            "Capture device lost: it stopped delivering frames. Reconnecting; the maps show "
            "the last analysed frame."
        )
        return Notice(text, Level.ERROR, True)
    text = f"Source stalled: {status.message}. The maps show the last analysed frame."
    return Notice(text, Level.WARNING, True)


def event_notice(event: PipelineEvent) -> Notice | None:
    """What to say about a pipeline event (None: nothing worth saying)."""
    kind = event.kind
    text = _sentence(event.message)
    if kind is EventKind.FRAME_FAILED:
        # one banner for a run of failing frames (it counts repeats), not one per frame number
        match = _FRAME_FAILED.match(event.message)
        if match is not None:
            text = f"Frames could not be analysed: {match.group(1)}"
    if kind is EventKind.SETTINGS_FAILED:
        return Notice(text, Level.ERROR, True)
    if kind in (EventKind.FRAME_FAILED, EventKind.SEEK_FAILED):
        return Notice(text, Level.WARNING, True)
    if kind is EventKind.SOURCE_DAMAGED:
        return Notice(f"{text}. Every frame before the damage was shown.", Level.WARNING, True)
    if kind is EventKind.DEVICE_LOST:
        return Notice(text, Level.ERROR)  # the stall banner says it on screen
    return Notice(text)


def failure_notice(what: str, error: BaseException | str, fallback: str | None = None) -> Notice:
    """A failed open: ``Cannot open <what>: <reason>. <fallback>``.

    Args:
        what: what the user tried to open ("video demo.mp4", "capture device 3").
        error: why it failed (the exception's message is written for users).
        fallback: what the viewer does instead ("Still showing demo_video.mp4.").
    """
    text = f"Cannot open {what}: {str(error).rstrip('.')}."
    if fallback:
        text += f" {fallback}"
    return Notice(text, Level.ERROR, True)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text
