"""Review mode: a recorded session played back with its three panels, no model needed.

The panels are drawn from what the recorder stored (:class:`app.review.ReviewSession`) by the
presenter that draws the live viewer's results (:class:`~app.ui.presenter.FramePresenter`).
Below them, the playback bar and the timeline strip (class and mean CV per frame, to find the
uncertain moments); on the right the frame's numbers and the bookmarks with their notes, saved
in the session folder. Exports: a clip (three-panel video of a span) and a snapshot (PNG + JSON
of the frame shown).

Keys: Space play/pause, Left/Right step, Home/End, B bookmark, U / Shift+U next/previous
uncertain moment, Ctrl+E export clip, S snapshot, W whole frame / field of view in the raw panel
(the exports follow it).
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.recording import RecordingError
from app.render.captions import prediction_caption
from app.render.layers import frame_to_gray8
from app.review import (
    BookmarkError,
    BookmarkStore,
    ClipReport,
    ReviewFrame,
    ReviewSession,
    SnapshotReport,
    export_clip,
    export_snapshot,
    format_positions,
    next_uncertain,
    uncertainty_threshold,
)
from app.ui.banner import BannerOverlay
from app.ui.bookmark_panel import BookmarkPanel, format_clock
from app.ui.latency_plot import LatencyHistory
from app.ui.notices import Level, Notice
from app.ui.panels import PanelRow
from app.ui.presenter import FramePresenter
from app.ui.readout_panel import ReadoutPanel
from app.ui.side_column import side_column
from app.ui.snapshot import DEFAULT_SNAPSHOT_DIR
from app.ui.theme import COLOURS
from app.ui.timeline_strip import TimelineStrip
from app.ui.window_setup import add_action, fit_to_screen, list_action

__all__ = ["REVIEW_OPACITY", "ReviewWindow", "open_review"]

REVIEW_OPACITY = 0.5
"""Opacity of the map overlays."""
_MAX_PLAY_FPS = 60.0
_FRAME_ERRORS = (RecordingError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What reading a damaged frame can raise; shown on the panels, never a crash."""


def _free_path(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``, ... when it exists."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


class _Cancelled(Exception):
    """The user cancelled an export."""


class _ClipDialog(QDialog):
    """Where to write a clip and which frames (first and last, inclusive)."""

    def __init__(self, window: ReviewWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Export clip")
        self._window = window
        count = len(window.session)
        form = QFormLayout(self)
        form.setHorizontalSpacing(12)

        self.path = QLineEdit(
            str(_free_path(window.export_dir / f"{window.session.folder.name}-clip.mp4"))
        )
        self.path.setMinimumWidth(420)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File", row)

        self.first = QSpinBox()
        self.last = QSpinBox()
        for box in (self.first, self.last):
            box.setRange(0, max(0, count - 1))
            box.setPrefix("#")
            box.setMinimumWidth(90)
        self.first.setValue(window.position)
        self.last.setValue(count - 1)
        span = QHBoxLayout()
        span.addWidget(self.first)
        span.addWidget(QLabel("to"))
        span.addWidget(self.last)
        span.addStretch(1)
        form.addRow("Frames", span)

        presets = QHBoxLayout()
        whole = QPushButton("Whole session")
        whole.clicked.connect(lambda: self._set_span(0, count - 1))
        between = QPushButton("Between bookmarks")
        between.setToolTip("From the bookmark at or before this frame to the next one")
        between.clicked.connect(self._between_bookmarks)
        between.setEnabled(window.bookmarks is not None and len(window.bookmarks) > 0)
        presets.addWidget(whole)
        presets.addWidget(between)
        presets.addStretch(1)
        form.addRow("", presets)

        self.summary = QLabel("")
        self.summary.setObjectName("Muted")
        form.addRow("", self.summary)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        for box in (self.first, self.last):
            box.valueChanged.connect(self._update)
        self.path.textChanged.connect(self._update)
        self._update()

    def _set_span(self, first: int, last: int) -> None:
        self.first.setValue(first)
        self.last.setValue(last)

    def _between_bookmarks(self) -> None:
        store, position = self._window.bookmarks, self._window.position
        if store is None:
            return
        start = store.get(position) or store.previous_before(position)
        end = store.next_after(position)
        first = start.position if start is not None else 0
        last = end.position if end is not None else len(self._window.session) - 1
        self._set_span(first, last)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export clip", self.path.text(), "Videos (*.mp4 *.avi)"
        )
        if path:
            self.path.setText(path)

    def _update(self) -> None:
        frames = self.last.value() - self.first.value() + 1
        fps = self._window.session.fps
        ok = frames > 0 and bool(self.path.text().strip())
        self.summary.setText(
            f"{frames} frames, {frames / fps:.1f} s at {fps:.1f} fps"
            if frames > 0
            else "The last frame comes before the first."
        )
        self._ok.setEnabled(ok)

    def span(self) -> tuple[Path, int, int]:
        """(path, start, stop) with ``stop`` exclusive."""
        return (
            Path(self.path.text().strip()).expanduser(),
            self.first.value(),
            self.last.value() + 1,
        )


class ReviewWindow(QMainWindow):
    """A recorded session for review (see the module documentation).

    Args:
        session: the session.
        export_dir: where clips and snapshots go by default (None:
            ``~/pcle-snapshots/<session folder name>``).
        whole_frame: start with the whole frame in the raw panel (default: the field of view).
    """

    def __init__(
        self,
        session: ReviewSession,
        export_dir: str | Path | None = None,
        parent: QWidget | None = None,
        *,
        whole_frame: bool = False,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.export_dir = (
            Path(export_dir).expanduser()
            if export_dir is not None
            else DEFAULT_SNAPSHOT_DIR / session.folder.name
        )
        self.setWindowTitle(f"Review · {session.folder.name} · pCLE Explainability Viewer")
        self.position = 0
        """The frame shown."""
        self.frame: ReviewFrame | None = None
        """The frame shown, as read (None when it could not be read)."""
        self.frame_error: str | None = None
        """Why the frame shown could not be read (None when it could)."""
        self.timeline = session.timeline()
        self.display_times = session.reader.display_times()
        """{frame id: (session seconds, capture-to-display ms)} when recorded in the viewer."""
        self.threshold = uncertainty_threshold(self.timeline) if len(session) else None
        times = self.timeline.time_s.astype(np.float64)
        start = times[np.isfinite(times)].min() if np.isfinite(times).any() else 0.0
        self.times = np.where(
            np.isfinite(times), times - start, np.arange(len(times)) / session.fps
        )
        self.bookmarks: BookmarkStore | None = None
        bookmark_problem = ""
        try:
            self.bookmarks = BookmarkStore(session.folder)
        except BookmarkError as exc:
            bookmark_problem = str(exc)

        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        fps = min(max(session.fps, 1.0), _MAX_PLAY_FPS)
        self._play_timer.setInterval(max(1, round(1000.0 / fps)))
        self._play_timer.timeout.connect(self._tick)

        self._build_ui(bookmark_problem, whole_frame)
        self._build_actions()
        fit_to_screen(self, 1600, 940)
        if len(session):
            self.show_frame(0)
        else:
            self.panels.reset("the session holds no frame")

    # ------------------------------------------------------------------------------ layout

    def _build_ui(self, bookmark_problem: str, whole_frame: bool) -> None:
        central = QWidget()
        central.setObjectName("Central")
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self._build_header())

        body = QHBoxLayout()
        body.setContentsMargins(8, 8, 8, 8)
        body.setSpacing(8)
        viewer = QVBoxLayout()
        viewer.setSpacing(6)
        self.panels = PanelRow(whole_frame=whole_frame)
        self.banners = BannerOverlay(self.panels)
        viewer.addWidget(self.panels, 1)
        viewer.addWidget(self._build_playback_bar())
        self.timeline_strip = TimelineStrip(
            self.timeline.class_idx,
            self.timeline.mean_cv,
            self.session.class_names,
            self.threshold,
        )
        self.timeline_strip.position_requested.connect(self.show_frame)
        viewer.addWidget(self.timeline_strip)
        body.addLayout(viewer, 1)

        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 4, 0)
        column.setSpacing(8)
        self.readouts = ReadoutPanel(LatencyHistory())
        self.readouts.latency.hide()  # live rates; a recording has its own numbers below
        column.addWidget(self.readouts)
        column.addWidget(self._build_frame_box())
        self.bookmark_panel = BookmarkPanel(
            self.bookmarks, self.times.tolist(), problem=bookmark_problem
        )
        self.bookmark_panel.position_requested.connect(self.show_frame)
        self.bookmark_panel.bookmarks_changed.connect(self._bookmarks_changed)
        self.bookmark_panel.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        column.addWidget(self.bookmark_panel, 1)
        body.addWidget(side_column(side, min_width=340))
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        self.presenter = FramePresenter(self.panels, self.readouts)

        self.export_line = QLabel("")
        self.export_line.setContentsMargins(0, 0, 12, 0)
        self.statusBar().addPermanentWidget(self.export_line)
        self._show_export_dir()
        self._bookmarks_changed()

    def _build_header(self) -> QFrame:
        header = QFrame()
        header.setObjectName("Header")
        head = QHBoxLayout(header)
        head.setContentsMargins(14, 8, 14, 8)
        head.setSpacing(16)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        headline = QLabel(f"Review · {self.session.folder.name}")
        headline.setObjectName("Headline")
        self.describe_line = QLabel(self.session.describe())
        self.describe_line.setObjectName("SourceLine")
        self.describe_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        titles.addWidget(headline)
        titles.addWidget(self.describe_line)
        self.warning_line = QLabel("")
        self.warning_line.setWordWrap(True)
        self.warning_line.setStyleSheet(f"color: {COLOURS['warning']};")
        problems = self._session_problems()
        self.warning_line.setText("  ·  ".join(problems))
        self.warning_line.setVisible(bool(problems))
        titles.addWidget(self.warning_line)
        head.addLayout(titles, 1)
        metadata = (self.session.manifest.get("checkpoint") or {}).get("metadata") or {}
        intended = metadata.get("intended_use")
        self.intended_use = QLabel(str(intended or ""))
        self.intended_use.setObjectName("IntendedUse")
        self.intended_use.setToolTip("The model's intended use, from its checkpoint")
        self.intended_use.setVisible(bool(intended))
        head.addWidget(self.intended_use, 0, Qt.AlignmentFlag.AlignVCenter)
        return header

    def _session_problems(self) -> list[str]:
        problems = []
        reader = self.session.reader
        if not reader.closed_cleanly:
            why = reader.error or "the recording stopped without closing the session"
            problems.append(f"⚠ Not closed cleanly: {why}; the frames up to the stop are shown")
        problems.extend(f"⚠ {warning}" for warning in self.session.warnings)
        problems.extend(
            f"⚠ {span.describe()}; the other frames are shown" for span in self.session.damaged
        )
        return problems

    def _build_playback_bar(self) -> QFrame:
        bar = QFrame()
        bar.setObjectName("PlaybackBar")
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(6)
        style = self.style()
        icons = QStyle.StandardPixmap

        def button(
            tip: str,
            slot: Callable[[], object],
            icon: QStyle.StandardPixmap | None = None,
            text: str = "",
        ) -> QToolButton:
            widget = QToolButton()
            widget.setObjectName("Transport")
            if icon is not None:
                widget.setIcon(style.standardIcon(icon))
            if text:
                widget.setText(text)
            widget.setToolTip(tip)
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            widget.clicked.connect(lambda *_: slot())
            layout.addWidget(widget)
            return widget

        self.to_start_button = button(
            "First frame (Home)", lambda: self.show_frame(0), icons.SP_MediaSkipBackward
        )
        self.step_back_button = button(
            "Previous frame (Left)", lambda: self.step(-1), icons.SP_MediaSeekBackward
        )
        self.play_button = button("Play (Space)", self.toggle_play, icons.SP_MediaPlay)
        self.step_button = button(
            "Next frame (Right)", lambda: self.step(1), icons.SP_MediaSeekForward
        )
        self.to_end_button = button(
            "Last frame (End)",
            lambda: self.show_frame(len(self.session) - 1),
            icons.SP_MediaSkipForward,
        )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, max(0, len(self.session) - 1))
        self.slider.setPageStep(max(1, round(self.session.fps)))
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Frame")
        self.slider.valueChanged.connect(self.show_frame)
        layout.addWidget(self.slider, 1)
        self.position_label = QLabel("-")
        self.position_label.setObjectName("Value")
        self.position_label.setMinimumWidth(230)
        self.position_label.setAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        layout.addWidget(self.position_label)
        enabled = self.threshold is not None
        self.previous_uncertain_button = button(
            "Previous uncertain moment (Shift+U)",
            lambda: self.next_uncertain(backward=True),
            text="◀ uncertain",
        )
        self.next_uncertain_button = button(
            "Next uncertain moment (U)", self.next_uncertain, text="uncertain ▶"
        )
        for widget in (self.previous_uncertain_button, self.next_uncertain_button):
            widget.setEnabled(enabled)
        return bar

    def _build_frame_box(self) -> QGroupBox:
        box = QGroupBox("RECORDED FRAME")
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(1, 1)
        self.frame_values: dict[str, QLabel] = {}
        rows = [
            ("source", "Source frame"),
            ("time", "Session time"),
            ("latency", "Capture → result"),
            ("display", "Capture → display"),
            ("fov", "Field of view"),
        ]
        for row, (key, name) in enumerate(rows):
            label = QLabel(name)
            label.setObjectName("Muted")
            value = QLabel("-")
            value.setObjectName("Value")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(label, row, 0)
            grid.addWidget(value, row, 1)
            self.frame_values[key] = value
        return box

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        add_action(self, file, "Export &clip…", self.choose_clip, "Ctrl+E")
        add_action(self, file, "Save &snapshot", self._snapshot_clicked, "S")
        add_action(self, file, "Export &folder…", self._choose_export_dir)
        file.addSeparator()
        add_action(self, file, "&Close", self.close, "Ctrl+W")

        playback = bar.addMenu("&Playback")
        add_action(self, playback, "Play / pause", self.toggle_play, "Space")
        add_action(self, playback, "Previous frame", lambda: self.step(-1), "Left")
        add_action(self, playback, "Next frame", lambda: self.step(1), "Right")
        add_action(self, playback, "First frame", lambda: self.show_frame(0), "Home")
        add_action(
            self, playback, "Last frame", lambda: self.show_frame(len(self.session) - 1), "End"
        )
        playback.addSeparator()
        add_action(self, playback, "Next uncertain moment", self.next_uncertain, "U")
        add_action(
            self,
            playback,
            "Previous uncertain moment",
            lambda: self.next_uncertain(backward=True),
            "Shift+U",
        )

        view = bar.addMenu("&View")
        list_action(self, view, self.panels.whole_frame_action)

        marks = bar.addMenu("&Bookmarks")
        add_action(self, marks, "&Bookmark this frame", self.add_bookmark, "B")
        add_action(self, marks, "&Remove this frame's bookmark", self.bookmark_panel.remove)
        add_action(self, marks, "&Previous bookmark", self.bookmark_panel.go_previous, "Shift+B")
        add_action(self, marks, "&Next bookmark", self.bookmark_panel.go_next, "Ctrl+B")

    # ----------------------------------------------------------------------------- frames

    def show_frame(self, position: int) -> None:
        """Show frame ``position`` (clamped to the session): panels, numbers, cursor."""
        count = len(self.session)
        if count == 0:
            return
        position = int(min(max(position, 0), count - 1))
        self.position = position
        if self.slider.value() != position:
            self.slider.blockSignals(True)
            self.slider.setValue(position)
            self.slider.blockSignals(False)
        self.position_label.setText(
            f"#{position}  ·  {position + 1} / {count}  ·  {format_clock(self.times[position])}"
        )
        self.timeline_strip.set_position(position)
        self.bookmark_panel.set_position(position)
        try:
            frame = self.session.frame(position)
            gray = frame_to_gray8(frame.raw)
        except _FRAME_ERRORS as exc:
            self._show_unreadable(position, exc)
            return
        self.frame, self.frame_error = frame, None
        self.banners.show_source_notice(None)
        self._draw(frame, gray)

    def _draw(self, frame: ReviewFrame, gray: np.ndarray) -> None:
        s = frame.summary
        self.presenter.show(
            s,
            frame.display,
            frame.fov_mask,
            frame.mean,
            frame.cv,
            opacity=REVIEW_OPACITY,
            raw_shape=frame.raw.shape,
        )
        self.panels.show_raw(
            gray,
            f"frame #{frame.position}  ·  source #{s.source_index}  ·  {s.source_time_s:.2f} s",
        )
        cv = s.mean_cv
        uncertain = cv is not None and self.threshold is not None and cv >= self.threshold
        caption = prediction_caption(s, uncertain)
        for panel in (self.panels.enhanced, self.panels.risk):
            panel.set_caption(caption, alert=uncertain)
        cx, cy, radius = s.fov
        values = {
            "source": f"#{s.source_index}  ·  {s.source_time_s:.2f} s",
            "time": format_clock(self.times[frame.position]),
            "latency": "-" if not math.isfinite(s.latency_ms) else f"{s.latency_ms:.0f} ms",
            "display": (
                f"{self.display_times[s.frame_id][1]:.0f} ms"
                if s.frame_id in self.display_times
                else "not shown live"
            ),
            "fov": f"({cx:.0f}, {cy:.0f}) r {radius:.0f}" + ("" if s.fov_found else " (assumed)"),
        }
        for key, text in values.items():
            self.frame_values[key].setText(text)

    def _show_unreadable(self, position: int, exc: BaseException) -> None:
        self.frame = None
        reason = (str(exc) or type(exc).__name__).replace(f"{self.session.folder}{os.sep}", "")
        reason = re.sub(r"^frame -?\d+: ", "", reason)
        self.frame_error = reason
        message = f"Frame #{position} cannot be read: {reason}"
        self.panels.reset("")
        for panel in self.panels.panels:
            panel.set_caption(f"frame #{position} cannot be read", alert=True)
        self.banners.show_source_notice(Notice(message, Level.ERROR, True))
        self.readouts.show_prediction(None)
        for value in self.frame_values.values():
            value.setText("-")
        self.statusBar().showMessage(message, 8000)

    def step(self, delta: int) -> None:
        """Pause and move ``delta`` frames."""
        self.pause()
        self.show_frame(self.position + delta)

    # ---------------------------------------------------------------------------- playback

    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def play(self) -> None:
        """Play at the session's frame rate to the last frame (from the first when at the
        end)."""
        if len(self.session) < 2:
            return
        if self.position >= len(self.session) - 1:
            self.show_frame(0)
        self._play_timer.start()
        self._show_playing()

    def pause(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
            self._show_playing()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def _tick(self) -> None:
        self.show_frame(self.position + 1)
        if self.position >= len(self.session) - 1:
            self.pause()

    def _show_playing(self) -> None:
        playing = self.playing
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause (Space)" if playing else "Play (Space)")

    def next_uncertain(self, backward: bool = False) -> int | None:
        """Go to the start of the next (previous) run of uncertain frames; its position, or
        None when there is none (the frame stays)."""
        if self.threshold is None:
            self.statusBar().showMessage("No frame of this session has a defined mean CV", 5000)
            return None
        target = next_uncertain(self.timeline, self.position, self.threshold, backward=backward)
        if target is None:
            where = "before" if backward else "after"
            self.statusBar().showMessage(f"No uncertain moment {where} this frame", 5000)
            return None
        self.pause()
        self.show_frame(target)
        self.statusBar().showMessage(
            f"Uncertain moment at #{target}: mean CV {self.timeline.mean_cv[target]:.3g} "
            f"≥ {self.threshold:.3g}",
            5000,
        )
        return target

    # --------------------------------------------------------------------------- bookmarks

    def add_bookmark(self, note: str = "") -> None:
        """Bookmark the frame shown (with ``note`` when given) and focus its note."""
        self.bookmark_panel.add(note)

    def _bookmarks_changed(self) -> None:
        marks = [m.position for m in self.bookmarks.all()] if self.bookmarks is not None else []
        self.timeline_strip.set_bookmarks(marks)

    # ----------------------------------------------------------------------------- exports

    def export_clip(
        self,
        path: str | Path,
        start: int,
        stop: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> ClipReport:
        """Write frames ``start`` to ``stop`` (exclusive) as a three-panel video, the raw
        panel as shown (see :func:`app.review.export_clip`)."""
        self.pause()
        return export_clip(
            self.session,
            path,
            start=start,
            stop=stop,
            whole_frame=self.panels.whole_frame,
            progress=progress,
        )

    def take_snapshot(self) -> SnapshotReport:
        """Write the frame shown as PNG + JSON into the export folder, with its bookmark's
        note, the raw panel as shown (see :func:`app.review.export_snapshot`)."""
        self.bookmark_panel.save_notes()
        note = None
        if self.bookmarks is not None:
            mark = self.bookmarks.get(self.position)
            if mark is not None:
                note = self.bookmark_panel.unsaved.get(self.position, mark.note)
        frame = (
            self.frame if self.frame is not None and self.frame.position == self.position else None
        )
        report = export_snapshot(
            self.session,
            self.position,
            self.export_dir,
            whole_frame=self.panels.whole_frame,
            note=note,
            frame=frame,
        )
        self.statusBar().showMessage(f"Snapshot saved: {report.png} (+ .json)", 10000)
        return report

    def _snapshot_clicked(self) -> None:
        try:
            self.take_snapshot()
        except (*_FRAME_ERRORS, RuntimeError) as exc:
            self._warn("Snapshot not saved", str(exc))

    def choose_clip(self) -> None:
        """Ask for a file and a span, and export the clip with a progress dialog."""
        if not len(self.session):
            return
        self.pause()
        dialog = _ClipDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        path, start, stop = dialog.span()
        progress = QProgressDialog("Writing the clip…", "Cancel", 0, stop - start, self)
        progress.setWindowTitle("Export clip")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)

        def advance(done: int, total: int) -> None:
            progress.setValue(done)
            QApplication.processEvents()
            if progress.wasCanceled():
                raise _Cancelled

        try:
            report = self.export_clip(path, start, stop, progress=advance)
        except _Cancelled:
            self.statusBar().showMessage("Clip export cancelled", 8000)
            return
        except (*_FRAME_ERRORS, RuntimeError) as exc:
            self._warn("Clip not written", str(exc))
            return
        finally:
            progress.close()
        skipped = report.skipped
        left_out = (
            f"; {len(skipped)} unreadable frames left out ({format_positions(skipped)})"
            if skipped
            else ""
        )
        self.statusBar().showMessage(
            f"Clip written: {report.path} ({report.frames} frames, {report.width}×"
            f"{report.height}, {report.codec}){left_out}",
            15000,
        )

    def _choose_export_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", str(self.export_dir))
        if folder:
            self.export_dir = Path(folder)
            self._show_export_dir()

    def _show_export_dir(self) -> None:
        self.export_line.setText(f"Exports: {self.export_dir}")

    def _warn(self, title: str, text: str) -> None:
        self.statusBar().showMessage(f"{title}: {text}", 10000)
        QMessageBox.warning(self, title, text)

    # ------------------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        self.pause()
        if not self.bookmark_panel.save_notes():
            answer = QMessageBox.warning(
                self,
                "Notes not saved",
                f"{self.bookmark_panel.status.text()}\n\nClose and lose the unsaved note?",
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Discard:
                event.ignore()
                return
        super().closeEvent(event)


def open_review(
    folder: str | Path,
    parent: QWidget | None = None,
    export_dir: str | Path | None = None,
    *,
    whole_frame: bool = False,
) -> ReviewWindow:
    """Open a session folder in a new, shown :class:`ReviewWindow` (``whole_frame``: see
    there).

    Raises:
        RecordingError: not a reviewable session.
    """
    window = ReviewWindow(
        ReviewSession(folder), export_dir=export_dir, parent=parent, whole_frame=whole_frame
    )
    window.show()
    return window
