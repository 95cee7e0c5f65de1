"""Review a recorded session without a model: frames, timeline, bookmarks, exports (no Qt).

from app.review import ReviewSession, BookmarkStore, export_clip, export_snapshot
session = ReviewSession("sessions/session-20261129-101500")
frame = session.frame(120)                 # raw, display, maps and numbers of frame 120
image = frame.panels(height=256)           # raw | enhanced | risk, BGR uint8
store = BookmarkStore(session.folder); store.add(120, "vessel wall, high CV")
export_clip(session, "clip.mp4", start=100, stop=160)
"""

from app.review.bookmarks import Bookmark, BookmarkError, BookmarkStore
from app.review.export import (
    ClipReport,
    SnapshotReport,
    export_clip,
    export_snapshot,
    format_positions,
)
from app.review.session import ReviewFrame, ReviewSession
from app.review.timeline import next_uncertain, uncertainty_threshold

__all__ = [
    "Bookmark",
    "BookmarkError",
    "BookmarkStore",
    "ClipReport",
    "ReviewFrame",
    "ReviewSession",
    "SnapshotReport",
    "export_clip",
    "export_snapshot",
    "format_positions",
    "next_uncertain",
    "uncertainty_threshold",
]
