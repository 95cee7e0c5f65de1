"""The viewer's main window: three panels, controls, readouts, and the timer that feeds them.

The pipeline runs capture and inference on its own threads. The window never waits for it: a
``QTimer`` (60 Hz by default) pulls the newest frame for the raw panel
(``Pipeline.latest_frame``) and the newest result for the map panels
(``Pipeline.take_result``); no frame array ever travels through a Qt signal. When both map
panels have repainted with a result, the window reports it with ``Pipeline.mark_displayed``,
so the latency readout is capture to display. Ten times a second it also reads the watchdog
(the stall banner), the statistics (the readouts and the latency plot) and the playback
position. Pipeline events (a refused model, a lost device, ...) and failed opens become
notices in the status bar and, when they matter, in a banner; the viewer goes on with what it
had.

Opening a source or replacing the pipeline happens off the GUI thread
(:class:`~app.ui.session.PipelineSession`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app.pipeline import (
    EventKind,
    FrameResult,
    FrameSource,
    Mode,
    Pipeline,
    PipelineEvent,
    PipelineSettings,
    SettingsError,
    SourceFrame,
    StallReason,
)
from app.render.captions import method_label, passes_label
from app.render.layers import frame_to_gray8
from app.render.summary import FrameSummary
from app.ui.banner import BannerOverlay
from app.ui.controls import BACKEND_LABELS, PlaybackControls, SettingsControls
from app.ui.latency_plot import LatencyHistory
from app.ui.notices import Level, Notice, event_notice, failure_notice, stall_notice
from app.ui.options import ViewerOptions
from app.ui.panels import WHOLE_FRAME_KEY, PanelRow
from app.ui.presenter import FramePresenter
from app.ui.readout_panel import ReadoutPanel
from app.ui.readouts import describe_frame_format, describe_source, map_caption, stats_text
from app.ui.recent import PreferencesStore, ViewerPreferences
from app.ui.recording_control import RecordingControl, shareable_source
from app.ui.session import OpenOutcome, OpenRequest, PipelineSession
from app.ui.side_column import side_column
from app.ui.snapshot import SnapshotFiles, save_snapshot, snapshot_record
from app.ui.window_setup import add_action, fit_to_screen, list_action

__all__ = ["MainWindow"]

_SLOW_PERIOD_S = 0.1  # readouts, watchdog, plot and captions refresh at 10 Hz
_STALE_AGE_S = 1.0  # a map older than this gets an amber caption
_VIDEO_FILTER = (
    "Videos (*.mp4 *.avi *.mpg *.mpeg *.mkv *.mov *.m4v *.wmv *.mkt);;"
    "Cellvizio files (*.mkt);;All files (*)"
)
_MODEL_FILTER = "Checkpoints (*.pt *.pth);;All files (*)"


@dataclass
class _Shown:
    """The result on screen and what was derived from it (kept to redraw at a new opacity)."""

    pipeline: Pipeline
    result: FrameResult
    summary: FrameSummary
    mean: np.ndarray
    cv: np.ndarray
    displayed: bool = False


def _differences(current: PipelineSettings, wanted: PipelineSettings) -> dict[str, object]:
    """The settings in which ``wanted`` differs from ``current``."""
    return {
        f.name: getattr(wanted, f.name)
        for f in dataclasses.fields(current)
        if getattr(current, f.name) != getattr(wanted, f.name)
    }


class MainWindow(QMainWindow):
    """The viewer (see the module documentation).

    Args:
        options: what to open first and how.
        store: where preferences and recent sources are remembered (None: nowhere).
    """

    def __init__(self, options: ViewerOptions, store: PreferencesStore | None = None) -> None:
        super().__init__()
        self.setWindowTitle("pCLE Explainability Viewer")
        self.options = options
        self.store = store
        self.preferences = store.load() if store is not None else ViewerPreferences()
        self.session = PipelineSession(**options.pipeline_options)
        self.history = LatencyHistory(span_s=30.0)
        self.snapshot_dir = Path(options.snapshot_dir)
        self.notices: list[Notice] = []
        """Every notice shown, oldest first (the last 200)."""
        self.results_shown = 0
        """Results drawn into the map panels since the window opened."""
        self.last_snapshot: SnapshotFiles | None = None
        self._review_windows: list[QMainWindow] = []
        self._record_when_open = False

        self._desired: PipelineSettings = options.settings
        self._requested_version: int | None = None
        self._mode = Mode(options.mode)
        self._loop = options.loop
        self._speed = options.speed
        self._opacity = options.opacity
        self._source_request: OpenRequest | None = None
        self._shown: _Shown | None = None
        self._raw_id: int | None = None
        self._raw_failed = False
        self._frame_format = ""
        self._model_path: Path | None = None
        self._next_slow = 0.0

        self._build_ui()
        self._build_actions()
        fit_to_screen(self, 1600, 900)

        self.controls.show_settings(self._desired)
        self.controls.show_mode(self._mode)
        self.controls.show_opacity(self._opacity)
        self.playback.show_loop(self._loop)
        self.playback.show_speed(self._speed)

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(max(1, round(1000.0 / options.refresh_hz)))
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.open_source(options.source)

    @property
    def shown_result(self) -> FrameResult | None:
        """The result the map panels show (None before the first of the current source)."""
        return None if self._shown is None else self._shown.result

    @property
    def pipeline(self) -> Pipeline | None:
        """The running pipeline (None before the first source opened)."""
        return self.session.pipeline

    # ------------------------------------------------------------------------------ layout

    def _build_ui(self) -> None:
        central = QWidget()
        central.setObjectName("Central")
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        header = QFrame()
        header.setObjectName("Header")
        head = QHBoxLayout(header)
        head.setContentsMargins(14, 8, 14, 8)
        head.setSpacing(16)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.model_line = QLabel("Model: loading…")
        self.model_line.setObjectName("Headline")
        self.source_line = QLabel("Source: opening…")
        self.source_line.setObjectName("SourceLine")
        titles.addWidget(self.model_line)
        titles.addWidget(self.source_line)
        head.addLayout(titles, 1)
        self.intended_use = QLabel("")
        self.intended_use.setObjectName("IntendedUse")
        self.intended_use.setToolTip("The model's intended use, from its checkpoint")
        self.intended_use.hide()
        head.addWidget(self.intended_use, 0, Qt.AlignmentFlag.AlignVCenter)
        self.recording = RecordingControl(self.options.recordings_dir)
        self.recording.notice.connect(self._notify)
        self.recording.toggle_requested.connect(self.toggle_recording)
        head.addWidget(self.recording, 0, Qt.AlignmentFlag.AlignVCenter)
        outer.addWidget(header)

        body = QHBoxLayout()
        body.setContentsMargins(8, 8, 8, 8)
        body.setSpacing(8)
        viewer = QVBoxLayout()
        viewer.setSpacing(0)
        self.panels = PanelRow(whole_frame=self.options.whole_frame)
        self.panels.maps_painted.connect(self._maps_painted)
        self.panels.whole_frame_changed.connect(
            lambda whole: self._remember(self.preferences.replace(whole_frame=whole))
        )
        self.banners = BannerOverlay(self.panels)
        viewer.addWidget(self.panels, 1)
        self.playback = PlaybackControls()
        viewer.addWidget(self.playback)
        body.addLayout(viewer, 1)

        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 4, 0)
        column.setSpacing(8)
        self.controls = SettingsControls()
        column.addWidget(self.controls)
        self.readouts = ReadoutPanel(self.history)
        column.addWidget(self.readouts, 1)
        body.addWidget(side_column(side, min_width=320))
        self.presenter = FramePresenter(self.panels, self.readouts)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)

        self.settings_line = QLabel("")
        self.settings_line.setContentsMargins(0, 0, 12, 0)
        self.statusBar().addPermanentWidget(self.settings_line)

        self.controls.method_changed.connect(lambda m: self._request(method=m))
        self.controls.passes_changed.connect(lambda t: self._request(passes=t))
        self.controls.class_changed.connect(lambda c: self._request(target_class=c))
        self.controls.device_changed.connect(lambda d: self._request(device=d))
        self.controls.backend_changed.connect(lambda b: self._request(backend=b))
        self.controls.mode_changed.connect(self.set_mode)
        self.controls.opacity_changed.connect(self.set_opacity)
        self.playback.play_toggled.connect(self.toggle_play)
        self.playback.step_requested.connect(self.step)
        self.playback.seek_requested.connect(self._seek)
        self.playback.speed_changed.connect(self._set_speed)
        self.playback.loop_changed.connect(self._set_loop)

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        add_action(self, file, "Open &video…", self._choose_video, QKeySequence.StandardKey.Open)
        add_action(self, file, "Open image &folder…", self._choose_folder, "Ctrl+Shift+O")
        add_action(self, file, "Open capture &device…", self._choose_device, "Ctrl+D")
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        add_action(self, file, "Open &model…", self._choose_model, "Ctrl+M")
        file.addSeparator()
        self.snapshot_action = add_action(self, file, "Save &snapshot", self.take_snapshot, "S")
        add_action(self, file, "Snapshot folder…", self._choose_snapshot_dir)
        file.addSeparator()
        add_action(self, file, "Start / stop &recording", self.toggle_recording, "Ctrl+R")
        add_action(self, file, "Re&view a recorded session…", self._choose_session, "Ctrl+Shift+R")
        file.addSeparator()
        add_action(self, file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        playback = bar.addMenu("&Playback")
        self.play_action = add_action(self, playback, "Play / pause", self.toggle_play, "Space")
        add_action(self, playback, "Previous frame", lambda: self.step(-1), "Left")
        add_action(self, playback, "Next frame", lambda: self.step(1), "Right")
        add_action(self, playback, "Back to the first frame", lambda: self._seek(0), "Home")

        view = bar.addMenu("&View")
        self.fullscreen_action = add_action(self, view, "&Full screen", self.toggle_fullscreen, "F")
        add_action(self, view, "Leave full screen", self.leave_fullscreen, "Escape")
        view.addSeparator()
        list_action(self, view, self.panels.whole_frame_action)

        help_menu = bar.addMenu("&Help")
        add_action(self, help_menu, "Keyboard shortcuts", self._show_shortcuts, "F1")

    # ---------------------------------------------------------------------------- opening

    def open_source(self, source: FrameSource | str | int | Path) -> None:
        """Open a source (video file, device index or path, image folder, a FrameSource) on
        a background thread; the current one keeps playing until the new one runs, and stays
        if the new one fails."""
        request = OpenRequest(
            source,
            self._desired,
            mode=self._mode,
            loop=self._loop,
            speed=self._speed,
        )
        self._source_request = request
        self.session.open(request)
        self.statusBar().showMessage(f"Opening {request.label}…")

    def open_model(self, path: str | Path) -> None:
        """Use another checkpoint from the next frame on (the current one stays if it fails)."""
        path = Path(path).expanduser()
        pipeline = self.session.pipeline
        try:
            self._desired = self._desired.replace(checkpoint=path, target_class=None)
        except SettingsError as exc:
            self._notify(failure_notice(f"model {path}", exc))
            return
        if pipeline is None:
            if self._source_request is not None and not self.session.opening:
                self.open_source(self._source_request.source)
            return
        try:
            self._requested_version = pipeline.update_settings(checkpoint=path, target_class=None)
        except SettingsError as exc:
            self._desired = pipeline.settings
            self._notify(failure_notice(f"model {path}", exc))
            return
        self.statusBar().showMessage(f"Loading model {path.name}…")

    def _opened(self, outcome: OpenOutcome) -> None:
        record, self._record_when_open = self._record_when_open, False
        if not outcome.ok:
            error = outcome.error
            what = (
                f"model {outcome.request.settings.checkpoint.name}"
                if isinstance(error, SettingsError)
                else outcome.request.label
            )
            current = self.session.pipeline
            fallback = (
                f"Still showing {current.source.name}."
                if current is not None
                else "Open a source from the File menu."
            )
            if isinstance(error, SettingsError) and current is not None:
                self._desired = current.settings
                self.controls.show_settings(current.settings, current.device)
            self._notify(failure_notice(what, error or "unknown error", fallback))
            return
        pipeline = self.session.pipeline
        assert pipeline is not None
        self._requested_version = None
        if self.recording.recording and self.recording.pipeline is not pipeline:
            self.recording.stop("another source was opened")
        changes = _differences(pipeline.settings, self._desired)
        if changes:  # asked for while the source was opening
            self._requested_version = pipeline.update_settings(**changes)
        else:
            self._desired = pipeline.settings
        self._shown = None
        self._raw_id = None
        self._raw_failed = False
        self._frame_format = ""
        self.history.clear()
        for panel in (self.panels.enhanced, self.panels.risk):
            panel.reset("analysing the first frame…")
        self.panels.set_field_of_view(None)
        self.readouts.show_prediction(None)
        self.banners.show_source_notice(None)
        source = pipeline.source
        self.playback.set_source(source.seekable, source.frame_count, source.fps)
        self.playback.show_paused(pipeline.paused)
        self._show_model(pipeline)
        self._show_source_line(pipeline)
        remembered = outcome.request.remembered
        if remembered is not None:
            self._remember(self.preferences.with_recent_source(remembered))
        self.statusBar().showMessage(f"Opened {source.name} in {outcome.seconds:.1f} s", 5000)
        if record:
            self.recording.start(pipeline)

    def _show_model(self, pipeline: Pipeline) -> None:
        meta = pipeline.metadata
        settings = pipeline.settings
        self._model_path = settings.checkpoint
        self.model_line.setText(
            f"Model: {settings.checkpoint.name}  ·  {meta.arch}  ·  {', '.join(meta.class_names)}"
        )
        trunk = f", trunk (Dropout2d) p = {meta.trunk_dropout:g}" if meta.trunk_dropout else ""
        self.model_line.setToolTip(
            f"{settings.checkpoint}\n{meta.provenance}\n"
            f"MC Dropout: head p = {meta.dropout:g}{trunk}"
        )
        self.intended_use.setText(f"⚠  {meta.intended_use}")
        self.intended_use.show()
        self.controls.set_class_names(meta.class_names)
        self.controls.show_settings(settings, pipeline.device)
        self._show_settings_line(pipeline)
        self._remember_settings(settings)

    def _show_source_line(self, pipeline: Pipeline) -> None:
        text = f"Source: {describe_source(pipeline.source)}"
        if self._frame_format:
            text += f"  ·  {self._frame_format}"
        self.source_line.setText(text)

    def _show_settings_line(self, pipeline: Pipeline) -> None:
        settings = pipeline.settings
        what = "predicted class" if settings.target_class is None else str(settings.target_class)
        passes = passes_label(settings.passes, settings.mc) + ("" if settings.mc else " (no MC)")
        self.settings_line.setText(
            f"{method_label(settings.method)}  ·  {passes}  ·  explaining {what}  ·  "
            f"{self._mode.value}  ·  {pipeline.device}"
            + ("" if settings.backend == "torch" else f"  ·  {BACKEND_LABELS[settings.backend]}")
        )

    # -------------------------------------------------------------------------- the timer

    def _tick(self) -> None:
        outcome = self.session.poll()
        if outcome is not None:
            self._opened(outcome)
        pipeline = self.session.pipeline
        if pipeline is None:
            return
        frame = pipeline.latest_frame()
        if frame is not None and frame.frame_id != self._raw_id:  # reset when a source opens
            self._raw_id = frame.frame_id
            self._show_raw(frame)
        result = pipeline.take_result()
        if result is not None:
            self._show_result(pipeline, result)
        for event in pipeline.events():
            self._handle_event(pipeline, event)
        now = time.monotonic()
        if now >= self._next_slow:
            self._next_slow = now + _SLOW_PERIOD_S
            self._refresh_readouts(pipeline, now)

    def _show_raw(self, frame: SourceFrame) -> None:
        try:
            gray = frame_to_gray8(frame.image)
        except (TypeError, ValueError) as exc:
            if not self._raw_failed:
                self._raw_failed = True
                self._notify(
                    Notice(f"Cannot show the frames of this source: {exc}", Level.ERROR, True)
                )
            return
        self.panels.show_raw(
            gray, f"frame {frame.frame_id} (#{frame.source_index})  ·  {frame.source_time:.2f} s"
        )
        if not self._frame_format:
            self._frame_format = describe_frame_format(frame.image)
            if self.session.pipeline is not None:
                self._show_source_line(self.session.pipeline)

    def _show_result(self, pipeline: Pipeline, result: FrameResult) -> None:
        mean, cv = result.maps()
        summary = result.summary(result.mean_cv_in_fov(cv))
        self._shown = _Shown(pipeline, result, summary, mean, cv)
        self.presenter.show(
            summary,
            result.display,
            result.fov_mask,
            mean,
            cv,
            opacity=self._opacity,
            raw_shape=result.raw.shape,
        )
        now = time.monotonic()
        for panel in (self.panels.enhanced, self.panels.risk):
            panel.set_caption(map_caption(result, now))
        self.results_shown += 1
        self.panels.expect_maps_paint()

    def _draw_overlays(self) -> None:
        shown = self._shown
        if shown is None:
            return
        self.panels.show_map_overlays(shown.result.fov_mask, shown.mean, shown.cv, self._opacity)

    def _maps_painted(self) -> None:
        shown = self._shown
        if shown is None or shown.displayed or shown.pipeline is not self.session.pipeline:
            return
        shown.displayed = True
        now = time.monotonic()
        shown.pipeline.mark_displayed(shown.result, now)
        if self.recording.recorder is not None:
            self.recording.recorder.record_display(shown.result, now)
        self.history.add(now, (now - shown.result.capture_time) * 1e3)

    def _refresh_readouts(self, pipeline: Pipeline, now: float) -> None:
        self.recording.refresh()
        status = pipeline.watchdog()
        self.banners.show_source_notice(stall_notice(status))
        stats = pipeline.stats()
        self.readouts.show_stats(stats_text(stats))
        summary = stats.display_latency_ms
        self.readouts.plot.refresh(now, summary.p95 if summary.count else None)
        self.playback.set_position(pipeline.position)
        self.playback.show_paused(pipeline.paused)
        shown = self._shown
        if shown is not None and shown.pipeline is pipeline:
            stale = status.stalled or now - shown.result.capture_time > _STALE_AGE_S
            caption = map_caption(shown.result, now)
            for panel in (self.panels.enhanced, self.panels.risk):
                panel.set_caption(caption, alert=stale and not pipeline.paused)

    # ---------------------------------------------------------------------------- events

    def _handle_event(self, pipeline: Pipeline, event: PipelineEvent) -> None:
        if event.kind is EventKind.SETTINGS_APPLIED:
            if pipeline.settings.checkpoint != self._model_path:
                self._show_model(pipeline)
            self.controls.show_settings(pipeline.settings, pipeline.device)
            self._show_settings_line(pipeline)
            self._remember_settings(pipeline.settings)
        elif event.kind is EventKind.SETTINGS_FAILED and event.version == self._requested_version:
            self._desired = pipeline.settings
            self.controls.show_settings(pipeline.settings, pipeline.device)
        notice = event_notice(event)
        if notice is not None:
            self._notify(notice)

    def _notify(self, notice: Notice) -> None:
        self.notices = [*self.notices[-199:], notice]
        timeout = 0 if notice.level is Level.ERROR else 8000
        self.statusBar().showMessage(notice.text, timeout)
        if notice.banner:
            self.banners.show_message(notice)

    # -------------------------------------------------------------------------- settings

    def _request(self, **changes: object) -> None:
        """Ask for new settings: from the next frame on, or for the next source opened."""
        try:
            self._desired = self._desired.replace(**changes)
        except SettingsError as exc:
            self._notify(Notice(str(exc), Level.ERROR, True))
            self.controls.show_settings(self._desired)
            return
        pipeline = self.session.pipeline
        if pipeline is not None:
            self._requested_version = pipeline.update_settings(**changes)

    def set_mode(self, mode: str | Mode) -> None:
        """Live (drop stale frames) or analysis (every frame)."""
        self._mode = Mode(mode)
        self.controls.show_mode(self._mode)
        pipeline = self.session.pipeline
        if pipeline is not None:
            pipeline.set_mode(self._mode)
            self._show_settings_line(pipeline)
        self._remember(self.preferences.replace(mode=self._mode.value))

    def set_opacity(self, opacity: float) -> None:
        """Overlay opacity, 0 to 1 (the maps on screen are redrawn at once)."""
        self._opacity = min(max(float(opacity), 0.0), 1.0)
        self._draw_overlays()
        self._remember(self.preferences.replace(opacity=self._opacity))

    # -------------------------------------------------------------------------- playback

    def _playable(self) -> Pipeline | None:
        pipeline = self.session.pipeline
        return pipeline if pipeline is not None and pipeline.source.seekable else None

    def toggle_play(self) -> None:
        """Pause, or play (from the start again after the end of a recording)."""
        pipeline = self._playable()
        if pipeline is None:
            self.statusBar().showMessage("Pause and stepping are for recordings", 4000)
            return
        ended = pipeline.watchdog().reason is StallReason.END_OF_SOURCE
        if ended:
            pipeline.seek(0)
        if pipeline.paused or ended:
            pipeline.play()
        else:
            pipeline.pause()
        self.playback.show_paused(pipeline.paused)

    def step(self, delta: int) -> None:
        """Pause and show the frame ``delta`` frames on (negative: back)."""
        pipeline = self._playable()
        if pipeline is None:
            return
        pipeline.pause()
        pipeline.step(delta)
        self.playback.show_paused(True)

    def _seek(self, index: int) -> None:
        pipeline = self._playable()
        if pipeline is not None:
            pipeline.seek(index)

    def _set_speed(self, speed: float) -> None:
        self._speed = speed
        pipeline = self._playable()
        if pipeline is not None:
            self._speed = pipeline.set_speed(speed)

    def _set_loop(self, loop: bool) -> None:
        self._loop = loop
        pipeline = self._playable()
        if pipeline is not None:
            pipeline.set_loop(loop)
        self._remember(self.preferences.replace(loop=loop))

    # ------------------------------------------------------------------------ full screen

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.leave_fullscreen()
        else:
            self.menuBar().hide()
            self.showFullScreen()

    def leave_fullscreen(self) -> None:
        if self.isFullScreen():
            self.menuBar().show()
            self.showNormal()

    # ------------------------------------------------------------------------- snapshots

    def take_snapshot(self) -> SnapshotFiles | None:
        """Write a PNG of the three panels and a JSON of the numbers to the snapshot folder."""
        pipeline = self.session.pipeline
        shown = (
            self._shown if self._shown is not None and self._shown.pipeline is pipeline else None
        )
        now = time.monotonic()
        record = snapshot_record(
            shown.result if shown else None,
            pipeline.stats() if pipeline is not None else None,
            source=shareable_source(pipeline.source) if pipeline is not None else "",
            mode=self._mode.value,
            device=pipeline.device if pipeline is not None else self._desired.device,
            mean_cv=shown.summary.mean_cv if shown else None,
            opacity=self._opacity,
            displayed_age_ms=(now - shown.result.capture_time) * 1e3 if shown else None,
        )
        try:
            files = save_snapshot(self.snapshot_dir, self.panels.grab_panels(), record)
        except OSError as exc:
            self._notify(Notice(f"Snapshot not saved: {exc}", Level.ERROR, True))
            return None
        self.last_snapshot = files
        self._notify(Notice(f"Snapshot saved: {files.png}"))
        return files

    # ------------------------------------------------------------------- recording, review

    def toggle_recording(self) -> None:
        """Start recording the running source into a new session folder, or stop."""
        if self.recording.recording:
            self.recording.stop()
            return
        pipeline = self.session.pipeline
        if pipeline is None or self.session.opening:
            self.recording.button.setChecked(False)
            if not self.session.opening:
                self._notify(Notice("Open a source before recording.", Level.WARNING))
            elif self._record_when_open:
                self._record_when_open = False
                self._notify(Notice("Recording will not start when the source opens."))
            else:
                self._record_when_open = True
                self._notify(Notice("Recording starts as soon as the source is open."))
            return
        self.recording.start(pipeline)

    def open_review(self, folder: str | Path) -> QMainWindow | None:
        """Open a recorded session in a review window (the live view goes on)."""
        from app.recording import RecordingError
        from app.ui.review_window import open_review

        try:
            window = open_review(Path(folder), whole_frame=self.panels.whole_frame)
        except (RecordingError, OSError) as exc:
            self._notify(Notice(f"Cannot review {folder}: {exc}", Level.ERROR, True))
            return None
        self._review_windows = [w for w in self._review_windows if w.isVisible()] + [window]
        window.show()
        return window

    def _choose_session(self) -> None:
        start = self.recording.last_session or self.options.recordings_dir
        path = QFileDialog.getExistingDirectory(self, "Review a recorded session", str(start))
        if path:
            self.open_review(path)

    # ---------------------------------------------------------------------------- dialogs

    def _dialog_folder(self) -> str:
        recent = self.preferences.recent_sources
        return str(Path(recent[0]).parent) if recent and Path(recent[0]).exists() else ""

    def _choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a pCLE recording", self._dialog_folder(), _VIDEO_FILTER
        )
        if path:
            self.open_source(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a folder of pCLE images", self._dialog_folder()
        )
        if path:
            self.open_source(path)

    def _choose_device(self) -> None:
        text, ok = QInputDialog.getText(
            self,
            "Open capture device",
            "Device index (0 is the first frame grabber or camera) or path (/dev/videoN):",
            text="0",
        )
        text = text.strip()
        if ok and text:
            self.open_source(int(text) if text.isdigit() else text)

    def _choose_model(self) -> None:
        start = str(self._model_path.parent) if self._model_path is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a model checkpoint", start, _MODEL_FILTER)
        if path:
            self.open_model(path)

    def _choose_snapshot_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Folder for snapshots", str(self.snapshot_dir)
        )
        if path:
            self.snapshot_dir = Path(path)
            self._remember(self.preferences.replace(snapshot_dir=path))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        if not self.preferences.recent_sources:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
            return
        for source in self.preferences.recent_sources:
            action = self.recent_menu.addAction(source)
            action.triggered.connect(lambda _=False, s=source: self.open_source(s))

    def _show_shortcuts(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(
            "Space  play / pause\nLeft / Right  previous / next frame\nHome  first frame\n"
            "S  snapshot (PNG + JSON)\nCtrl+R  start / stop recording, "
            "Ctrl+Shift+R  review a session\nF  full screen, Escape  leave it\n"
            f"{WHOLE_FRAME_KEY}  raw panel: whole frame / field of view\n"
            "Ctrl+O  open video, Ctrl+D  capture device, Ctrl+M  model"
        )
        box.setModal(False)
        box.show()

    # -------------------------------------------------------------------------- lifecycle

    def _remember_settings(self, settings: PipelineSettings) -> None:
        self._remember(
            self.preferences.replace(
                method=settings.method,
                passes=settings.passes,
                backend=settings.backend,
                checkpoint=str(settings.checkpoint.resolve()),
            )
        )

    def _remember(self, preferences: ViewerPreferences) -> None:
        if preferences == self.preferences:
            return
        self.preferences = preferences
        if self.store is not None:
            self.store.save(preferences)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the timer and every pipeline thread, then close."""
        self._timer.stop()
        self.recording.stop("the viewer was closed")
        with QSignalBlocker(self.panels):
            self.session.close()
        if self.store is not None:
            self.store.save(self.preferences)
        super().closeEvent(event)
