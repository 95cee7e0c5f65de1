"""Bookmarks of a reviewed session: a list, the note of the frame shown, add / remove / jump.

The note editor always edits the bookmark of the frame on screen (disabled on a frame without
one). Notes are saved through the :class:`~app.review.BookmarkStore` 600 ms after the last
keystroke, when the editor loses focus and before the window closes. A save that fails keeps
the typed text (in the editor and in :attr:`BookmarkPanel.unsaved`), says so under the editor
and is tried again at the next save: nothing typed is lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.review import Bookmark, BookmarkError, BookmarkStore
from app.ui.theme import COLOURS

__all__ = ["NOTE_SAVE_DELAY_MS", "BookmarkPanel", "bookmark_label", "format_clock"]

NOTE_SAVE_DELAY_MS = 600
"""A note is saved this long after the last keystroke."""
_PREVIEW_CHARS = 40


def format_clock(seconds: float) -> str:
    """``01:04.8``: minutes and seconds to a tenth (``--:--.-`` when unknown)."""
    if not math.isfinite(seconds):
        return "--:--.-"
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


def bookmark_label(mark: Bookmark, seconds: float) -> str:
    """``#120  00:04.8  first 40 characters of the note…`` (one line)."""
    note = " ".join(mark.note.split())
    if len(note) > _PREVIEW_CHARS:
        note = note[: _PREVIEW_CHARS - 1].rstrip() + "…"
    return f"#{mark.position}   {format_clock(seconds)}   {note}".rstrip()


class BookmarkPanel(QGroupBox):
    """The bookmark list and note editor (see the module documentation).

    Args:
        store: the session's bookmarks (None: they could not be opened; the panel is
            disabled and says why with ``problem``).
        times: seconds from the session's start of each frame, for the list (None: none).
        problem: why there is no store.
    """

    position_requested = Signal(int)
    """The user picked a bookmark, or Prev / Next: show this frame."""
    bookmarks_changed = Signal()
    """A bookmark was added or removed."""
    message = Signal(str)
    """Something to tell the user in the status bar."""

    def __init__(
        self,
        store: BookmarkStore | None,
        times: Sequence[float] | None = None,
        problem: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("BOOKMARKS", parent)
        self.store = store
        self.times = list(times) if times is not None else []
        self.position: int | None = None
        """The frame on screen."""
        self.unsaved: dict[int, str] = {}
        """Notes typed but not saved yet (a save pending or failed), by frame."""
        self._editing: int | None = None
        self._loading = False

        layout = QVBoxLayout(self)
        layout.setSpacing(6)
        self.list = QListWidget()
        self.list.setMinimumHeight(110)
        self.list.setUniformItemSizes(True)
        self.list.setToolTip("Click a bookmark to go to its frame")
        self.list.itemClicked.connect(self._item_clicked)
        self.list.itemActivated.connect(self._item_clicked)
        layout.addWidget(self.list, 1)

        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("")
        self.editor.setFixedHeight(84)
        self.editor.setTabChangesFocus(True)
        self.editor.setToolTip("The note of this frame's bookmark; saved as you type")
        self.editor.textChanged.connect(self._text_changed)
        self.editor.installEventFilter(self)
        layout.addWidget(self.editor)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {COLOURS['warning']};")
        self.status.hide()
        layout.addWidget(self.status)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Bookmark the frame shown (B)")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove this frame's bookmark")
        self.previous_button = QPushButton("◀ Prev")
        self.previous_button.setToolTip("Previous bookmark")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("Next bookmark")
        for button in (
            self.add_button,
            self.remove_button,
            self.previous_button,
            self.next_button,
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(lambda: self.add())
        self.remove_button.clicked.connect(self.remove)
        self.previous_button.clicked.connect(self.go_previous)
        self.next_button.clicked.connect(self.go_next)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(NOTE_SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_notes)

        if store is None:
            for widget in (self.list, self.editor, *self._buttons()):
                widget.setEnabled(False)
            self._show_problem(problem or "The bookmarks cannot be opened.")
        self._load(None)
        self.refresh()

    # -- state

    def _buttons(self) -> tuple[QPushButton, ...]:
        return self.add_button, self.remove_button, self.previous_button, self.next_button

    @property
    def selected_position(self) -> int | None:
        """The bookmark whose note the editor shows (None: the frame has none)."""
        return self._editing

    def time_of(self, position: int) -> float:
        return self.times[position] if 0 <= position < len(self.times) else math.nan

    def refresh(self) -> None:
        """Rebuild the list from the store and select the frame shown."""
        self.list.blockSignals(True)
        self.list.clear()
        marks = self.store.all() if self.store is not None else []
        for mark in marks:
            shown = Bookmark(
                mark.position, self.unsaved.get(mark.position, mark.note), mark.created_utc
            )
            item = QListWidgetItem(bookmark_label(shown, self.time_of(mark.position)))
            item.setData(Qt.ItemDataRole.UserRole, mark.position)
            item.setToolTip(shown.note or "(no note)")
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._select(self.position)

    def set_position(self, position: int) -> None:
        """The frame on screen changed: edit its bookmark's note, if it has one."""
        self.position = position
        self._select(position)

    def _item_for(self, position: int | None) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == position:
                return item
        return None

    def _select(self, position: int | None) -> None:
        item = self._item_for(position)
        self.list.blockSignals(True)
        if item is None:
            self.list.clearSelection()
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(item)
            self.list.scrollToItem(item)
        self.list.blockSignals(False)
        self._edit(position if item is not None else None)
        earlier = later = None
        if self.store is not None and position is not None:
            earlier = self.store.previous_before(position)
            later = self.store.next_after(position)
        self.add_button.setEnabled(self.store is not None and position is not None and item is None)
        self.remove_button.setEnabled(item is not None)
        self.previous_button.setEnabled(earlier is not None)
        self.next_button.setEnabled(later is not None)

    def _edit(self, position: int | None) -> None:
        """Show the note of ``position`` in the editor (saving the one shown before)."""
        if position == self._editing:
            return
        if self._editing is not None and self._editing in self.unsaved:
            self.save_notes()
        self._load(position)

    def _load(self, position: int | None) -> None:
        self._editing = position
        self._loading = True
        try:
            if position is None or self.store is None:
                self.editor.setPlainText("")
                self.editor.setPlaceholderText("No bookmark on this frame: press B to add one")
                self.editor.setEnabled(False)
            else:
                mark = self.store.get(position)
                note = self.unsaved.get(position, mark.note if mark is not None else "")
                self.editor.setPlainText(note)
                self.editor.setPlaceholderText(f"Note for frame #{position}…")
                self.editor.setEnabled(True)
        finally:
            self._loading = False

    # -- actions

    def add(self, note: str = "", position: int | None = None) -> Bookmark | None:
        """Bookmark ``position`` (None: the frame shown) and put the cursor in its note.

        An existing bookmark keeps its note unless ``note`` is given. Returns the bookmark,
        or None when it could not be saved (the panel says why).
        """
        position = self.position if position is None else position
        if self.store is None or position is None:
            return None
        existing = self.store.get(position)
        if existing is not None and not note:
            mark = existing
        else:
            try:
                mark = self.store.add(position, note)
            except BookmarkError as exc:
                self._show_problem(str(exc))
                return None
            self._clear_problem()
        if note:
            self.unsaved.pop(position, None)
        self.refresh()
        self.bookmarks_changed.emit()
        self.message.emit(f"Bookmarked frame #{position}")
        if position == self.position:
            self.editor.setFocus(Qt.FocusReason.OtherFocusReason)
        return mark

    def remove(self) -> None:
        """Remove the bookmark of the frame shown."""
        position = self._editing
        if self.store is None or position is None:
            return
        self._timer.stop()
        try:
            self.store.remove(position)
        except BookmarkError as exc:
            self._show_problem(str(exc))
            return
        self.unsaved.pop(position, None)
        self._editing = None
        self.refresh()
        self.bookmarks_changed.emit()
        self.message.emit(f"Removed the bookmark of frame #{position}")

    def go_previous(self) -> None:
        """Ask for the previous bookmark's frame."""
        if self.store is not None and self.position is not None:
            mark = self.store.previous_before(self.position)
            if mark is not None:
                self.position_requested.emit(mark.position)

    def go_next(self) -> None:
        """Ask for the next bookmark's frame."""
        if self.store is not None and self.position is not None:
            mark = self.store.next_after(self.position)
            if mark is not None:
                self.position_requested.emit(mark.position)

    def save_notes(self) -> bool:
        """Save every note typed and not saved yet; False when a save failed (the text is
        kept and the panel says why)."""
        self._timer.stop()
        if self.store is None:
            return not self.unsaved
        changed = False
        for position, note in list(self.unsaved.items()):
            mark = self.store.get(position)
            if mark is None:  # removed meanwhile
                del self.unsaved[position]
                continue
            if mark.note != note:
                try:
                    self.store.set_note(position, note)
                except BookmarkError as exc:
                    self._show_problem(f"Note of frame #{position} not saved: {exc}")
                    return False
                changed = True
            del self.unsaved[position]
        self._clear_problem()
        if changed:
            self._relabel()
        return True

    # -- internals

    def _relabel(self) -> None:
        if self.store is None:
            return
        for row in range(self.list.count()):
            item = self.list.item(row)
            position = int(item.data(Qt.ItemDataRole.UserRole))
            mark = self.store.get(position)
            if mark is not None:
                note = self.unsaved.get(position, mark.note)
                shown = Bookmark(position, note)
                item.setText(bookmark_label(shown, self.time_of(position)))
                item.setToolTip(note or "(no note)")

    def _text_changed(self) -> None:
        if self._loading or self._editing is None:
            return
        self.unsaved[self._editing] = self.editor.toPlainText()
        self._relabel()
        self._timer.start()

    def _item_clicked(self, item: QListWidgetItem) -> None:
        self.position_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _show_problem(self, text: str) -> None:
        self.status.setText(text)
        self.status.show()
        self.message.emit(text)

    def _clear_problem(self) -> None:
        if self.store is not None and self.status.isVisible():
            self.status.hide()
            self.status.setText("")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.editor and event.type() == QEvent.Type.FocusOut and self.unsaved:
            self.save_notes()
        return super().eventFilter(watched, event)
