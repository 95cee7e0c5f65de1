"""The product's wall-clock timestamps: now, in UTC, ISO 8601 to the second.

One format for everything that records when it was made: session manifests (start, end),
bookmarks (created, edited) and checkpoint metadata (``created``).
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_now_iso"]


def utc_now_iso() -> str:
    """Now, ISO 8601 in UTC with seconds, e.g. ``"2026-11-29T14:03:07+00:00"``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
