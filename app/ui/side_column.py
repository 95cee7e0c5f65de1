"""The scrolling column of controls and readouts on the right of the viewer and review windows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget

__all__ = ["side_column"]


def side_column(content: QWidget, min_width: int) -> QScrollArea:
    """``content`` in a vertical scroll area exactly as wide as it needs (at least
    ``min_width``), so that a small screen scrolls the column instead of squeezing it."""
    scroll = QScrollArea()
    scroll.setWidget(content)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = scroll.verticalScrollBar().sizeHint().width()
    scroll.setFixedWidth(max(min_width, content.minimumSizeHint().width() + bar + 6))
    scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return scroll
