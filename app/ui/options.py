"""How the viewer starts: :class:`ViewerOptions`, resolved from the command line, what was
remembered, and the defaults (the shipped phantom demo), in that order of precedence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.assets import DEMO_CHECKPOINT, DEMO_SOURCE
from app.pipeline import FrameSource, Mode, PipelineSettings
from app.recording import DEFAULT_SESSIONS_DIR
from app.ui.recent import ViewerPreferences
from app.ui.snapshot import DEFAULT_SNAPSHOT_DIR

# DEMO_SOURCE and DEMO_CHECKPOINT (from app.assets) are the defaults, named here too.
__all__ = ["DEMO_CHECKPOINT", "DEMO_SOURCE", "ViewerOptions", "resolve_options"]


@dataclass(frozen=True)
class ViewerOptions:
    """Everything the window needs to start.

    Attributes:
        source: what to open first (a :class:`FrameSource`, or what
            :func:`app.pipeline.open_source` accepts).
        settings: the inference settings to start with.
        mode: live or analysis.
        loop: replay files in a loop.
        speed: playback speed of files in live mode.
        opacity: overlay opacity, 0 to 1.
        whole_frame: the raw panel shows the whole frame (False: the field of view, as the
            map panels do).
        snapshot_dir: where the S key writes snapshots.
        recordings_dir: where the record button creates session folders.
        refresh_hz: how often the GUI looks for new frames and results.
        pipeline_options: passed to every :class:`~app.pipeline.Pipeline` (e.g.
            ``watchdog_min_s``).
    """

    source: FrameSource | str | int | Path
    settings: PipelineSettings
    mode: Mode = Mode.LIVE
    loop: bool = True
    speed: float = 1.0
    opacity: float = 0.5
    whole_frame: bool = False
    snapshot_dir: Path = DEFAULT_SNAPSHOT_DIR
    recordings_dir: Path = DEFAULT_SESSIONS_DIR
    refresh_hz: float = 60.0
    pipeline_options: dict[str, Any] = field(default_factory=dict)


def resolve_options(
    preferences: ViewerPreferences,
    *,
    source: str | None = None,
    checkpoint: str | Path | None = None,
    method: str | None = None,
    passes: int | None = None,
    mode: str | None = None,
    device: str | None = None,
    backend: str | None = None,
    target_class: str | None = None,
    loop: bool | None = None,
    snapshot_dir: str | Path | None = None,
    recordings_dir: str | Path | None = None,
) -> ViewerOptions:
    """The start options: what the command line gave, else what was remembered, else the demo.

    The source is the demo video unless one is given (recent sources are in the File menu).
    The model is the one given, else the last model that loaded (when the file still exists),
    else the demo model.

    Raises:
        SettingsError: an invalid method, number of passes, device or backend.
    """
    if checkpoint is None:
        remembered = preferences.checkpoint
        checkpoint = remembered if remembered and Path(remembered).is_file() else DEMO_CHECKPOINT
    settings = PipelineSettings(
        Path(checkpoint).expanduser(),
        method=method or preferences.method,
        passes=passes if passes is not None else preferences.passes,
        target_class=target_class,
        device=device or "auto",
        backend=backend or preferences.backend,
    )
    folder = snapshot_dir or preferences.snapshot_dir
    return ViewerOptions(
        source=source if source is not None else str(DEMO_SOURCE),
        settings=settings,
        mode=Mode(mode or preferences.mode),
        loop=preferences.loop if loop is None else loop,
        opacity=preferences.opacity,
        whole_frame=preferences.whole_frame,
        snapshot_dir=Path(folder).expanduser() if folder else DEFAULT_SNAPSHOT_DIR,
        recordings_dir=Path(recordings_dir).expanduser()
        if recordings_dir
        else DEFAULT_SESSIONS_DIR,
    )
