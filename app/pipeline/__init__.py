"""The frame pipeline: sources, the capture thread, the inference worker, results, statistics.

    source --> [frame slot] --> inference worker --> [result slot] --> consumer
             (capture thread)  (preprocess, T-pass engine)           (GUI timer, headless)

Plain Python threads and torch, no Qt. Start with :class:`Pipeline` and
:class:`PipelineSettings`; :func:`open_source` opens what the user typed.

A viewer drives it like this (all calls thread-safe, none blocks)::

    pipeline = Pipeline(source_spec, PipelineSettings(checkpoint, "gradcam++", passes=10))
    pipeline.start()
    # on a timer (e.g. every 15 ms):
    frame = pipeline.latest_frame()          # raw panel, at the source rate
    result = pipeline.take_result()          # newest FrameResult or None (keep the last one)
    if result is not None:
        mean, cv = result.maps()             # (H, W) at the model input size; cv NaN = undefined
        ...draw result.display / mean / cv (app.render), then:
        pipeline.mark_displayed(result)      # capture-to-display latency in stats()
    readout = pipeline.stats().readout()     # latency avg/p95/max, fps, dropped
    alarm = pipeline.watchdog()              # .stalled, .reason, .message
    for event in pipeline.events(): ...      # errors: SETTINGS_FAILED, DEVICE_LOST, ...
    # controls: play() pause() step(+1/-1) seek(i) set_speed(x) set_loop(b) set_mode("live")
    #           update_settings(method=, passes=, target_class=, device=, checkpoint=)
    pipeline.stop()
"""

from app.pipeline.analyzer import FrameAnalyzer
from app.pipeline.events import EventKind, PipelineEvent
from app.pipeline.mode import Mode
from app.pipeline.pipeline import Pipeline
from app.pipeline.results import FrameResult
from app.pipeline.settings import MAX_PASSES, PipelineSettings, SettingsError
from app.pipeline.sources import (
    CaptureDeviceSource,
    FrameSource,
    ImageFolderSource,
    IterableSource,
    MktFileSource,
    SourceError,
    SourceFrame,
    SourceState,
    VideoFileSource,
    open_source,
)
from app.pipeline.stats import StatsSnapshot, WindowSummary
from app.pipeline.watchdog import StallReason, WatchdogStatus

__all__ = [
    "MAX_PASSES",
    "CaptureDeviceSource",
    "EventKind",
    "FrameAnalyzer",
    "FrameResult",
    "FrameSource",
    "ImageFolderSource",
    "IterableSource",
    "MktFileSource",
    "Mode",
    "Pipeline",
    "PipelineEvent",
    "PipelineSettings",
    "SettingsError",
    "SourceError",
    "SourceFrame",
    "SourceState",
    "StallReason",
    "StatsSnapshot",
    "VideoFileSource",
    "WatchdogStatus",
    "WindowSummary",
    "open_source",
]
