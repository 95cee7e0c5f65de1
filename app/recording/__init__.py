"""Session recording: write a reviewable session folder while frames are analysed, read it back.

from app.recording import SessionRecorder, SessionReader
with SessionRecorder(folder, settings=settings, source="capture device 0") as rec:
    pipeline_results_loop(rec.write)   # write() returns False (never raises) after a disk full
session = SessionReader(folder); image, record = session.frame(0)
"""

from app.recording.background import BackgroundRecorder
from app.recording.layout import DEFAULT_SESSIONS_DIR, new_session_folder
from app.recording.manifest import RecordingError, describe_source
from app.recording.reader import (
    DamagedFrames,
    FrameRecord,
    SessionReader,
    Timeline,
    format_positions,
)
from app.recording.writer import SessionRecorder

__all__ = [
    "DEFAULT_SESSIONS_DIR",
    "BackgroundRecorder",
    "DamagedFrames",
    "FrameRecord",
    "RecordingError",
    "SessionReader",
    "SessionRecorder",
    "Timeline",
    "describe_source",
    "format_positions",
    "new_session_folder",
]
