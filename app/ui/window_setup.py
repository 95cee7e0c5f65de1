"""Setting up a top-level window, the viewer's and the review's alike: its menu actions and
its first size."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

__all__ = ["add_action", "fit_to_screen", "list_action"]


def add_action(
    window: QMainWindow,
    menu: QMenu,
    text: str,
    slot: Callable[[], object],
    shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
) -> QAction:
    """A menu entry of ``window`` whose shortcut works while the menu bar is hidden.

    Args:
        window: the window the action belongs to (its shortcut is window-wide).
        menu: the menu to list it in.
        text: the entry's text.
        slot: what it does; called with no arguments (the ``checked`` flag is dropped).
        shortcut: a key sequence, a standard key or a string such as ``"Ctrl+E"``.

    Returns:
        The action.
    """
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(lambda *_: slot())
    return list_action(window, menu, action)


def list_action(window: QMainWindow, menu: QMenu, action: QAction) -> QAction:
    """List an existing action (e.g. a widget's toggle) in ``menu``, its shortcut window-wide
    and working while the menu bar is hidden; returns ``action``."""
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    menu.addAction(action)
    window.addAction(action)  # shortcuts work with the menu bar hidden (full screen)
    return action


def fit_to_screen(window: QMainWindow, width: int, height: int) -> None:
    """Size ``window`` to ``width`` × ``height``, or to the screen's free area when smaller."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.resize(width, height)
        return
    available = screen.availableGeometry()
    window.resize(min(width, available.width()), min(height, available.height()))
