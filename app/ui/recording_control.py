"""The record button and its indicator: records every analysed frame of the running pipeline.

Recording runs off the GUI thread: the pipeline hands each result to a
:class:`app.recording.BackgroundRecorder` (a queue put on the inference thread) and its own
thread writes the session. The widget shows a red "● REC 01:23 · 1,234 frames" while
recording and reports a stop by the recorder (a full disk) as a notice; the live view goes on.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.pipeline import FrameSource, Pipeline
from app.private_files import make_private_dirs
from app.recording import (
    BackgroundRecorder,
    RecordingError,
    SessionRecorder,
    describe_source,
    new_session_folder,
)
from app.ui.notices import Level, Notice

__all__ = ["RecordingControl", "format_elapsed", "shareable_source"]


def shareable_source(source: FrameSource) -> str:
    """What a source is, for files others may read (snapshots): its kind and rate, never a
    file name or path (``video file (.mp4) · 24 fps · 210 frames``)."""
    parts = [describe_source(source), f"{source.fps:g} fps"]
    if source.frame_count is not None:
        parts.append(f"{source.frame_count} frames")
    return " · ".join(parts)


def format_elapsed(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from one hour on."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class RecordingControl(QWidget):
    """A Record/Stop button with an elapsed-time indicator.

    Args:
        folder: where new sessions are created (one ``session-<time>`` folder each).
        include_paths: write source file paths into sessions (default: the source's kind).

    Signals:
        notice(Notice): something the user should read (started, saved, stopped by an error).
        toggle_requested(): the button was pressed (the window starts or stops recording, as
            only it knows the pipeline).
    """

    notice = Signal(object)
    toggle_requested = Signal()

    def __init__(
        self, folder: Path, *, include_paths: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.include_paths = include_paths
        self.recorder: BackgroundRecorder | None = None
        self.pipeline: Pipeline | None = None
        self.last_session: Path | None = None
        """The folder of the last session recorded (to offer it for review)."""
        self._sessions: list[Path] = []  # every folder handed out, never handed out again
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.indicator = QLabel("")
        self.indicator.setObjectName("RecordingIndicator")
        self.indicator.setStyleSheet("color: #ff4d4d; font-weight: 600;")
        self.indicator.hide()
        self.button = QPushButton("● Record")
        self.button.setToolTip("Record every analysed frame, its maps and numbers (Ctrl+R)")
        self.button.setCheckable(True)
        self.button.clicked.connect(lambda: self.toggle_requested.emit())
        layout.addWidget(self.indicator)
        layout.addWidget(self.button)

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def start(self, pipeline: Pipeline) -> bool:
        """Start recording ``pipeline``'s results into a new session folder; False on failure
        (a notice says why)."""
        if self.recorder is not None:
            return True
        folder = new_session_folder(self.folder, taken=self._sessions)
        try:
            make_private_dirs(self.folder)
            session = SessionRecorder(
                folder,
                settings=pipeline.settings,
                metadata=pipeline.metadata,
                checkpoint_sha=pipeline.checkpoint_sha256,
                source=pipeline.source,
                include_paths=self.include_paths,
            )
        except (RecordingError, OSError) as exc:
            self.notice.emit(Notice(f"Cannot start recording: {exc}", Level.ERROR, True))
            self._show()
            return False
        self.recorder = BackgroundRecorder(session)
        self.pipeline = pipeline
        pipeline.set_result_tap(self.recorder.submit)
        self.last_session = folder
        self._sessions.append(folder)
        self.notice.emit(Notice(f"Recording to {folder}"))
        self._show()
        return True

    def stop(self, reason: str = "") -> Path | None:
        """Stop recording and close the session; the session folder (None when not recording).

        Args:
            reason: why, when it is not the user's choice (shown in the notice).
        """
        recorder, pipeline = self.recorder, self.pipeline
        if recorder is None:
            return None
        self.recorder = self.pipeline = None
        if pipeline is not None:
            pipeline.set_result_tap(None)
        recorder.stop()
        error = recorder.error
        frames = recorder.frames_written
        dropped = f", {recorder.dropped} not recorded (disk too slow)" if recorder.dropped else ""
        why = f" ({reason})" if reason else ""
        if error:
            self.notice.emit(Notice(error, Level.ERROR, True))
        else:
            self.notice.emit(
                Notice(f"Recording saved{why}: {frames} frames{dropped} in {recorder.folder}")
            )
        self._show()
        return recorder.folder

    def refresh(self) -> None:
        """Update the indicator; stop when the recorder stopped itself (disk full)."""
        recorder = self.recorder
        if recorder is None:
            return
        if not recorder.recording:
            self.stop()
            return
        self._show()

    def _show(self) -> None:
        recorder = self.recorder
        self.button.setChecked(recorder is not None)
        self.button.setText("■ Stop recording" if recorder is not None else "● Record")
        if recorder is None:
            self.indicator.hide()
            return
        self.indicator.setText(
            f"● REC {format_elapsed(recorder.elapsed_s)} · {recorder.frames_written:,} frames"
        )
        self.indicator.show()
