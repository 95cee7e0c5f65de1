"""Banners over the panels: the source's state (stalled, lost, ended) and the latest error.

A :class:`BannerOverlay` floats over the top of the panel row, so the images never move when a
banner comes or goes. It holds two :class:`Banner` rows: the source banner, which follows the
watchdog and hides by itself when frames return, and the message banner, which the user
dismisses (or a newer message replaces).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from app.ui.notices import Notice

__all__ = ["Banner", "BannerOverlay"]


class Banner(QFrame):
    """One coloured line of text, optionally with a close button.

    Args:
        dismissible: show a close button; clicking it hides the banner and emits
            :attr:`dismissed`.
    """

    dismissed = Signal()

    def __init__(self, dismissible: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.setProperty("level", "info")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.close_button: QToolButton | None = None
        if dismissible:
            self.close_button = QToolButton()
            self.close_button.setText("×")
            self.close_button.setToolTip("Dismiss")
            self.close_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.close_button.clicked.connect(self.dismiss)
            layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.notice: Notice | None = None
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_notice(self, notice: Notice, repeats: int = 1) -> None:
        """Show ``notice`` (``repeats`` > 1 adds a count: the same message came again)."""
        self.notice = notice
        text = notice.text if repeats <= 1 else f"{notice.text}  (×{repeats})"
        if self.property("level") != notice.level.value:
            self.setProperty("level", notice.level.value)
            self.style().unpolish(self)
            self.style().polish(self)
            for child in self.findChildren(QWidget):
                self.style().unpolish(child)
                self.style().polish(child)
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self.notice = None
        self.hide()
        self.dismissed.emit()


class BannerOverlay(QWidget):
    """The banners, floating over the top of ``host`` and following its width."""

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 8, 40, 0)
        layout.setSpacing(6)
        self.source = Banner(dismissible=False)
        self.message = Banner(dismissible=True)
        layout.addWidget(self.source)
        layout.addWidget(self.message)
        self._repeats = 0
        self.message.dismissed.connect(self._relayout)
        host.installEventFilter(self)
        self._relayout()

    def show_source_notice(self, notice: Notice | None) -> None:
        """The source banner: a stall notice, or None to hide it."""
        if notice is None:
            if self.source.isVisibleTo(self):
                self.source.hide()
                self._relayout()
            return
        if self.source.notice != notice or not self.source.isVisibleTo(self):
            self.source.show_notice(notice)
            self._relayout()

    def show_message(self, notice: Notice) -> None:
        """The message banner (the same text again counts repeats instead of flickering)."""
        visible = self.message.isVisibleTo(self)
        same = visible and self.message.notice == notice
        self._repeats = self._repeats + 1 if same else 1
        self.message.show_notice(notice, self._repeats)
        self._relayout()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self._relayout()
        return False

    def _relayout(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        self.setVisible(self.source.isVisibleTo(self) or self.message.isVisibleTo(self))
        height = self.layout().heightForWidth(host.width())
        if height < 0:
            height = self.sizeHint().height()
        self.setGeometry(0, 0, host.width(), height)
        self.raise_()
