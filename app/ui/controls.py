"""The viewer's controls: explanation settings (method, T, class, mode, device, opacity) and
playback (play/pause, step, seek, speed, loop).

The widgets only say what the user asked for, through signals; the window passes it on to the
pipeline and shows back, with :meth:`SettingsControls.show_settings`, what is actually in use
(a request the pipeline refuses snaps back). Buttons, sliders and drop-downs take no keyboard
focus, so Space and the arrow keys always reach the viewer's shortcuts.
"""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QWidget,
)

from app.explain import METHODS
from app.explain.runtimes import installed_runtimes
from app.pipeline import MAX_PASSES, Mode, PipelineSettings
from app.render.captions import method_label

__all__ = [
    "BACKEND_LABELS",
    "SPEEDS",
    "PlaybackControls",
    "SettingsControls",
    "available_backends",
    "available_devices",
]

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Playback speeds offered for files."""
PREDICTED = None
"""The explained-class choice that follows the prediction."""


def available_devices() -> list[str]:
    """The devices to offer: "cpu", and "cuda" when a CUDA GPU is available."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


BACKEND_LABELS = {
    "torch": "PyTorch",
    "auto": "Fastest exact",
    "onnxruntime": "ONNX Runtime",
    "openvino": "OpenVINO",
    "openvino-bf16": "OpenVINO bf16 (approximate)",
}
"""How the Backend control names each choice."""


def available_backends() -> list[str]:
    """The backends to offer: torch, auto, and each installed inference runtime."""
    return ["torch", "auto", *installed_runtimes()]


def _no_focus(*widgets: QWidget) -> None:
    for widget in widgets:
        widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)


def _select_data(combo: QComboBox, data: object) -> None:
    index = combo.findData(data)
    if index >= 0 and index != combo.currentIndex():
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)


class SettingsControls(QGroupBox):
    """Method, passes T, explained class, live/analysis mode, device and overlay opacity."""

    method_changed = Signal(str)
    passes_changed = Signal(int)
    class_changed = Signal(object)  # a class name, or None for the predicted class
    mode_changed = Signal(str)
    device_changed = Signal(str)
    backend_changed = Signal(str)
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("EXPLANATION", parent)
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(4)

        self.method = QComboBox()
        for key in METHODS:
            self.method.addItem(method_label(key), key)
        self.method.setToolTip("Attribution method run on each of the T passes")
        self.method.currentIndexChanged.connect(
            lambda _: self.method_changed.emit(self.method.currentData())
        )
        form.addRow("Method", self.method)

        self.passes = QSpinBox()
        self.passes.setRange(1, MAX_PASSES)
        self.passes.setKeyboardTracking(False)
        self.passes.setToolTip(
            f"T: Monte Carlo Dropout passes per frame (1-{MAX_PASSES}); the maps are their "
            "mean and coefficient of variation"
        )
        self.passes.valueChanged.connect(self.passes_changed.emit)
        self.passes.editingFinished.connect(self.passes.clearFocus)
        form.addRow("Passes T", self.passes)

        self.explained_class = QComboBox()
        self.explained_class.setToolTip("The class the maps explain")
        self.explained_class.currentIndexChanged.connect(
            lambda _: self.class_changed.emit(self.explained_class.currentData())
        )
        self.set_class_names(())
        form.addRow("Explain", self.explained_class)

        self.mode = QComboBox()
        self.mode.addItem("Live: newest frame", Mode.LIVE.value)
        self.mode.addItem("Analysis: every frame", Mode.ANALYSIS.value)
        self.mode.setToolTip(
            "Live drops frames the model has no time for (lowest latency); analysis explains "
            "every frame of a recording, in order"
        )
        self.mode.currentIndexChanged.connect(
            lambda _: self.mode_changed.emit(self.mode.currentData())
        )
        form.addRow("Mode", self.mode)

        self.device = QComboBox()
        for device in available_devices():
            self.device.addItem(device.upper(), device)
        self.device.setToolTip("Where the network runs")
        self.device.currentIndexChanged.connect(
            lambda _: self.device_changed.emit(self.device.currentData())
        )
        form.addRow("Device", self.device)

        self.backend = QComboBox()
        for backend in available_backends():
            self.backend.addItem(BACKEND_LABELS[backend], backend)
        self.backend.setToolTip(
            "What runs the deterministic part of the network (before the first dropout and the "
            "explained layer): PyTorch, or an inference runtime on the CPU, checked against "
            "PyTorch on the first frame (same maps); 'Fastest exact' picks one"
        )
        self.backend.currentIndexChanged.connect(
            lambda _: self.backend_changed.emit(self.backend.currentData())
        )
        form.addRow("Backend", self.backend)

        opacity_row = QWidget()
        row = QHBoxLayout(opacity_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the maps over the frame")
        self.opacity_value = QLabel()
        self.opacity_value.setObjectName("Value")
        self.opacity_value.setMinimumWidth(40)
        self.opacity.valueChanged.connect(self._opacity_moved)
        row.addWidget(self.opacity, 1)
        row.addWidget(self.opacity_value)
        form.addRow("Opacity", opacity_row)

        _no_focus(
            self.method, self.explained_class, self.mode, self.device, self.backend, self.opacity
        )

    def _opacity_moved(self, value: int) -> None:
        self.opacity_value.setText(f"{value} %")
        self.opacity_changed.emit(value / 100.0)

    def set_class_names(self, names: tuple[str, ...] | list[str]) -> None:
        """Offer "predicted class" and each of the model's classes."""
        current = self.explained_class.currentData()
        self.explained_class.blockSignals(True)
        self.explained_class.clear()
        self.explained_class.addItem("Predicted class", PREDICTED)
        for name in names:
            self.explained_class.addItem(name, name)
        index = self.explained_class.findData(current)
        self.explained_class.setCurrentIndex(max(index, 0))
        self.explained_class.blockSignals(False)

    def show_settings(self, settings: PipelineSettings, device: str | None = None) -> None:
        """Show ``settings`` (those in use) without emitting any change.

        Args:
            settings: the settings.
            device: the resolved device ("cpu", "cuda:0") when settings say "auto".
        """
        _select_data(self.method, settings.method)
        if self.passes.value() != settings.passes and not self.passes.hasFocus():
            self.passes.blockSignals(True)
            self.passes.setValue(settings.passes)
            self.passes.blockSignals(False)
        target = settings.target_class
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target)
        if isinstance(target, int) and target + 1 < self.explained_class.count():
            target = self.explained_class.itemData(target + 1)  # an index: show its name
        _select_data(self.explained_class, target)
        shown = device if settings.device == "auto" and device else settings.device
        _select_data(self.device, shown.split(":")[0])
        _select_data(self.backend, settings.backend)

    def show_mode(self, mode: Mode | str) -> None:
        _select_data(self.mode, Mode(mode).value)

    def show_opacity(self, opacity: float) -> None:
        self.opacity.setValue(round(opacity * 100))
        self.opacity_value.setText(f"{self.opacity.value()} %")


class PlaybackControls(QFrame):
    """Play/pause, step, a seek slider, the position, speed and loop (files and folders only;
    disabled for live devices)."""

    play_toggled = Signal()
    step_requested = Signal(int)
    seek_requested = Signal(int)
    speed_changed = Signal(float)
    loop_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PlaybackBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(6)
        style = self.style()
        pixmap = QStyle.StandardPixmap

        def button(icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
            widget = QToolButton()
            widget.setObjectName("Transport")
            widget.setIcon(style.standardIcon(icon))
            widget.setToolTip(tip)
            layout.addWidget(widget)
            return widget

        self.to_start = button(pixmap.SP_MediaSkipBackward, "Back to the first frame")
        self.step_back = button(pixmap.SP_MediaSeekBackward, "Previous frame (Left)")
        self.play = button(pixmap.SP_MediaPause, "Play / pause (Space)")
        self.step_forward = button(pixmap.SP_MediaSeekForward, "Next frame (Right)")
        self.to_start.clicked.connect(lambda: self.seek_requested.emit(0))
        self.step_back.clicked.connect(lambda: self.step_requested.emit(-1))
        self.play.clicked.connect(self.play_toggled.emit)
        self.step_forward.clicked.connect(lambda: self.step_requested.emit(1))

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Seek")
        self.slider.sliderMoved.connect(self.seek_requested.emit)
        self.slider.sliderReleased.connect(lambda: self.seek_requested.emit(self.slider.value()))
        layout.addWidget(self.slider, 1)

        self.position = QLabel("-")
        self.position.setObjectName("Value")
        self.position.setMinimumWidth(190)
        self.position.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.position)

        self.speed = QComboBox()
        for speed in SPEEDS:
            self.speed.addItem(f"{speed:g}×", speed)
        self.speed.setToolTip("Playback speed (live mode)")
        self.speed.currentIndexChanged.connect(
            lambda _: self.speed_changed.emit(float(self.speed.currentData()))
        )
        layout.addWidget(self.speed)
        self.loop = QCheckBox("Loop")
        self.loop.setToolTip("Start again at the first frame after the last")
        self.loop.toggled.connect(self.loop_changed.emit)
        layout.addWidget(self.loop)

        _no_focus(
            self.to_start,
            self.step_back,
            self.play,
            self.step_forward,
            self.slider,
            self.speed,
            self.loop,
        )
        self._fps = 25.0
        self._count: int | None = None
        self.set_source(seekable=False, frame_count=None, fps=25.0)

    def set_source(self, seekable: bool, frame_count: int | None, fps: float) -> None:
        """Enable the controls for a file or folder; disable them for a live device."""
        self._fps, self._count = fps, frame_count
        for widget in (
            self.to_start,
            self.step_back,
            self.play,
            self.step_forward,
            self.slider,
            self.speed,
            self.loop,
        ):
            widget.setEnabled(seekable)
        self.slider.setRange(0, max(0, (frame_count or 1) - 1))
        self.position.setText("live" if not seekable else "-")

    def set_position(self, index: int | None) -> None:
        """Show the source index of the newest frame read."""
        if index is None or not self.slider.isEnabled():
            return
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        seconds = index / self._fps
        count = "?" if self._count is None else str(self._count)
        self.position.setText(
            f"{index + 1} / {count}  ·  {int(seconds // 60)}:{seconds % 60:04.1f}"
        )

    def show_paused(self, paused: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self.play.setIcon(self.style().standardIcon(icon))
        self.play.setToolTip("Play (Space)" if paused else "Pause (Space)")

    def show_speed(self, speed: float) -> None:
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed))
        _select_data(self.speed, SPEEDS[index])

    def show_loop(self, loop: bool) -> None:
        self.loop.blockSignals(True)
        self.loop.setChecked(loop)
        self.loop.blockSignals(False)
