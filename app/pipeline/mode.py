"""The pipeline's two ways of running."""

from __future__ import annotations

import enum

__all__ = ["Mode"]


class Mode(str, enum.Enum):
    """How frames travel through the pipeline.

    ``LIVE``: the probe's pace rules. A file is read at its frame rate (times the speed);
    the worker always analyses the newest frame and stale ones are dropped and counted; the
    consumer always gets the newest result. Nothing waits for anything.

    ``ANALYSIS``: every frame is analysed and every result delivered, in order (review of a
    recording, headless processing). The source is read as fast as the worker and the
    consumer take frames; each stage waits for the next, and at most one item waits between
    two stages. The consumer must keep taking results, or the pipeline waits for it. Meant
    for files and folders: a live device does not wait, so in this mode its driver drops
    the frames the pipeline had no time for, uncounted (use live mode for a probe).
    """

    LIVE = "live"
    ANALYSIS = "analysis"
