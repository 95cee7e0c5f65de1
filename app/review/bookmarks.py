"""Bookmarks with free-text notes, kept in the session folder (``bookmarks.json``).

Every change is saved at once with an atomic write (temporary file, fsync, rename): a crash or
a full disk during a save leaves the previous file whole, and the store keeps its previous
state when a save fails. Notes are the only free text a session holds, and only what the user
typed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.private_files import write_atomic
from app.timestamps import utc_now_iso

__all__ = ["BOOKMARKS_NAME", "Bookmark", "BookmarkError", "BookmarkStore"]

BOOKMARKS_NAME = "bookmarks.json"
_FORMAT = "pcle-viewer-bookmarks"


class BookmarkError(Exception):
    """Bookmarks cannot be read or saved; the message says why, for the user."""


@dataclass(frozen=True)
class Bookmark:
    """A marked frame: its position in the session, a note, and when it was made/changed."""

    position: int
    note: str = ""
    created_utc: str = ""
    modified_utc: str = ""


class BookmarkStore:
    """The bookmarks of one session, at most one per frame, ordered by position.

    Args:
        folder: the session folder.

    Raises:
        BookmarkError: ``bookmarks.json`` exists but is not a bookmarks file (it is left
            alone, never overwritten).
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / BOOKMARKS_NAME
        self._marks: dict[int, Bookmark] = self._load()

    def __len__(self) -> int:
        return len(self._marks)

    def __contains__(self, position: object) -> bool:
        return position in self._marks

    def all(self) -> list[Bookmark]:
        """Every bookmark, by position."""
        return [self._marks[p] for p in sorted(self._marks)]

    def get(self, position: int) -> Bookmark | None:
        return self._marks.get(position)

    def add(self, position: int, note: str = "") -> Bookmark:
        """Bookmark frame ``position`` (or change its note); saved at once.

        Raises:
            BookmarkError: the save failed; the bookmarks are as before.
        """
        if position < 0:
            raise ValueError(f"a frame position is >= 0, got {position}")
        now = utc_now_iso()
        old = self._marks.get(position)
        mark = Bookmark(position, note, old.created_utc if old else now, now)
        self._commit({**self._marks, position: mark})
        return mark

    def set_note(self, position: int, note: str) -> Bookmark:
        """Change the note of an existing bookmark; saved at once.

        Raises:
            KeyError: no bookmark at ``position``.
            BookmarkError: the save failed; the bookmarks are as before.
        """
        if position not in self._marks:
            raise KeyError(f"no bookmark at frame {position}")
        return self.add(position, note)

    def remove(self, position: int) -> None:
        """Remove the bookmark at ``position`` (nothing when there is none); saved at once."""
        if position in self._marks:
            self._commit({p: m for p, m in self._marks.items() if p != position})

    def next_after(self, position: int) -> Bookmark | None:
        """The first bookmark after ``position`` (None when there is none)."""
        later = [p for p in self._marks if p > position]
        return self._marks[min(later)] if later else None

    def previous_before(self, position: int) -> Bookmark | None:
        """The last bookmark before ``position`` (None when there is none)."""
        earlier = [p for p in self._marks if p < position]
        return self._marks[max(earlier)] if earlier else None

    # ------------------------------------------------------------------ internals

    def _commit(self, marks: dict[int, Bookmark]) -> None:
        document = {
            "format": _FORMAT,
            "version": 1,
            "bookmarks": [asdict(marks[p]) for p in sorted(marks)],
        }
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        try:
            write_atomic(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise BookmarkError(
                f"the bookmarks could not be saved ({exc}); the previous ones are kept"
            ) from None
        self._marks = marks

    def _load(self) -> dict[int, Bookmark]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError as exc:
            raise self._unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        except OSError as exc:
            raise BookmarkError(f"{self.path} cannot be read: {exc}") from None
        try:
            document: Any = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise self._unreadable(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise self._unreadable("not a bookmarks file")
        items = document.get("bookmarks")
        if not isinstance(items, list):
            raise self._unreadable("its 'bookmarks' entry is not a list")
        marks = {}
        for i, item in enumerate(items):
            position = item.get("position") if isinstance(item, dict) else None
            if isinstance(position, bool) or not isinstance(position, int) or position < 0:
                raise self._unreadable(f"bookmark {i} has no frame position (an integer >= 0)")
            texts = {key: item.get(key, "") for key in ("note", "created_utc", "modified_utc")}
            wrong = [key for key, value in texts.items() if not isinstance(value, str)]
            if wrong:
                raise self._unreadable(f"bookmark {i}: {wrong[0]!r} is not text")
            marks[position] = Bookmark(position, **texts)
        return marks

    def _unreadable(self, why: str) -> BookmarkError:
        return BookmarkError(
            f"{self.path} is not a readable bookmarks file ({why}); it was left as it is"
        )
