"""The viewer window, offscreen: frames flow into the three panels, controls reach the pipeline,
the watchdog banner comes and goes, bad input gets a clear message, keys work, closing joins
every thread. Runs on the shipped demo (MobileNetV2, 224 px) with T = 2 to stay fast."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget
from pytestqt.qtbot import QtBot

from app.explain.runtimes import installed_runtimes
from app.pipeline import IterableSource, Mode, PipelineSettings
from app.ui.main_window import MainWindow
from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE, ViewerOptions
from app.ui.recent import PreferencesStore
from app.ui.viewer import application
from models.architectures import build_model
from models.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint
from models.data.phantom import render_frame

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_MS = 60_000  # generous: the suite may share two cores with other work
INTENDED_USE = "phantom demo, not for clinical use"


def _options(tmp: Path, source: Any = None, **settings: Any) -> ViewerOptions:
    values = {"method": "gradcam++", "passes": 2, "device": "cpu", **settings}
    return ViewerOptions(
        source=str(DEMO_SOURCE) if source is None else source,
        settings=PipelineSettings(DEMO_CHECKPOINT, **values),
        snapshot_dir=tmp / "snapshots",
        pipeline_options={"watchdog_min_s": 0.5, "reopen_interval_s": 0.2},
    )


def _open_window(tmp: Path, source: Any = None, **settings: Any) -> MainWindow:
    application()  # the viewer's theme on pytest-qt's QApplication
    window = MainWindow(_options(tmp, source, **settings), PreferencesStore(tmp / "viewer.ini"))
    window.show()
    return window


def _phantom_frames(count: int = 6) -> list[np.ndarray]:
    classes = ("meningioma", "glioblastoma", "metastasis")
    return [render_frame(classes[i % 3], seed=i).image for i in range(count)]


def _wait_results(qtbot: QtBot, window: MainWindow, more: int = 2) -> None:
    start = window.results_shown
    qtbot.waitUntil(lambda: window.results_shown >= start + more, timeout=WAIT_MS)


def _notices(window: MainWindow) -> str:
    return "\n".join(n.text for n in window.notices)


def _pixels(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    data = np.frombuffer(rgb.constBits(), np.uint8, count=h * rgb.bytesPerLine())
    return data.reshape(h, rgb.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def _grab(widget: QWidget) -> np.ndarray:
    return _pixels(widget.grab().toImage())


@pytest.fixture(scope="module")
def demo_window(qapp: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    window = _open_window(tmp_path_factory.mktemp("viewer"))
    yield window
    window.close()


# ---------------------------------------------------------------------------------- the demo


def test_frames_flow_into_all_three_panels(qtbot: QtBot, demo_window: MainWindow) -> None:
    window = demo_window
    _wait_results(qtbot, window, 3)
    raw, enhanced, risk = window.panels.panels
    assert window.panels.raw_frame is not None and window.panels.raw_frame.shape == (336, 464)
    for panel in (enhanced, risk):
        assert panel.image is not None and panel.image.shape == (224, 224)
        assert panel.image.std() > 5
        overlay = panel.overlay_image
        assert overlay is not None and overlay.shape == (224, 224, 4)
    result = window.shown_result
    assert result is not None
    side = result.fov.crop_window()[2]  # the raw panel: the field of view the maps were cut from
    assert raw.image is not None and raw.image.shape == (side, side)
    assert "field of view" in raw.caption.text
    outside = ~result.fov_mask
    assert (enhanced.overlay_image[..., 3][outside] == 0).all()
    undefined = np.isnan(result.maps()[1])
    assert (risk.overlay_image[..., 3][undefined] == 0).all()
    assert (enhanced.overlay_image[..., 3][result.fov_mask] > 0).all()
    # the maps carry the frame they were computed from, and its age
    assert f"frame {result.frame_id}" in enhanced.caption.text
    assert "MC Dropout: head p = 0.2" in window.model_line.toolTip()  # where randomness is
    # shown results are reported, so the readout is capture to display
    pipeline = window.pipeline
    assert pipeline is not None
    qtbot.waitUntil(lambda: pipeline.stats().display_latency_ms.count > 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.readouts.latency.values["display"].text() != "-")
    assert window.readouts.class_name.text() in result.class_names
    assert INTENDED_USE in window.intended_use.text() and window.intended_use.isVisible()
    assert "demo_video.mp4" in window.source_line.text()
    assert window.playback.slider.isEnabled()  # a file: playback controls on


def test_method_passes_and_class_from_the_ui_reach_the_results(
    qtbot: QtBot, demo_window: MainWindow
) -> None:
    window, controls = demo_window, demo_window.controls
    pipeline = window.pipeline
    assert pipeline is not None
    controls.method.setCurrentIndex(controls.method.findData("reciprocam"))
    controls.passes.setValue(3)
    qtbot.waitUntil(
        lambda: pipeline.settings.method == "reciprocam" and pipeline.settings.passes == 3,
        timeout=WAIT_MS,
    )

    def shows(method: str, passes: int) -> bool:
        result = window.shown_result
        return (
            result is not None
            and result.settings.method == method
            and result.explanation.method == method
            and result.explanation.passes == passes
        )

    qtbot.waitUntil(lambda: shows("reciprocam", 3), timeout=WAIT_MS)
    assert "Recipro-CAM" in window.panels.enhanced.title.text

    controls.explained_class.setCurrentIndex(controls.explained_class.findData("metastasis"))
    qtbot.waitUntil(
        lambda: window.shown_result is not None and window.shown_result.class_idx == 2,
        timeout=WAIT_MS,
    )
    controls.explained_class.setCurrentIndex(0)  # back to the predicted class
    qtbot.waitUntil(lambda: pipeline.settings.target_class is None, timeout=WAIT_MS)

    controls.mode.setCurrentIndex(controls.mode.findData("analysis"))
    assert pipeline.mode is Mode.ANALYSIS
    _wait_results(qtbot, window, 2)
    controls.mode.setCurrentIndex(controls.mode.findData("live"))
    assert pipeline.mode is Mode.LIVE

    controls.opacity.setValue(80)
    result = window.shown_result
    assert result is not None
    alpha = window.panels.enhanced.overlay_image[..., 3]
    assert (alpha[result.fov_mask] == round(0.8 * 255)).all()

    controls.method.setCurrentIndex(controls.method.findData("gradcam++"))
    controls.passes.setValue(2)
    qtbot.waitUntil(lambda: shows("gradcam++", 2), timeout=WAIT_MS)
    remembered = window.store.load() if window.store is not None else None
    assert remembered is not None and remembered.opacity == pytest.approx(0.8)
    assert remembered.method == "gradcam++" and remembered.passes == 2
    assert remembered.recent_sources[0] == str(DEMO_SOURCE.resolve())


@pytest.mark.skipif(not installed_runtimes(), reason="no inference runtime installed")
def test_the_backend_control_moves_the_trunk_onto_a_runtime_and_back(
    qtbot: QtBot, demo_window: MainWindow
) -> None:
    window, controls = demo_window, demo_window.controls
    pipeline = window.pipeline
    assert pipeline is not None
    offered = [controls.backend.itemData(i) for i in range(controls.backend.count())]
    assert offered == ["torch", "auto", *installed_runtimes()]

    def ran_on(backends: list[str]) -> bool:
        result = window.shown_result
        return result is not None and result.explanation.backend in backends

    controls.backend.setCurrentIndex(controls.backend.findData("auto"))
    qtbot.waitUntil(lambda: ran_on(installed_runtimes()), timeout=WAIT_MS)
    assert "Fastest exact" in window.settings_line.text()
    controls.backend.setCurrentIndex(controls.backend.findData("torch"))
    qtbot.waitUntil(lambda: ran_on(["torch"]), timeout=WAIT_MS)
    assert "Fastest exact" not in window.settings_line.text()
    remembered = window.store.load() if window.store is not None else None
    assert remembered is not None and remembered.backend == "torch"


def test_screenshot_is_not_blank_and_the_maps_have_colour(
    qtbot: QtBot, demo_window: MainWindow
) -> None:
    window = demo_window
    _wait_results(qtbot, window, 2)
    qtbot.wait(200)  # let the last result paint
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "viewer_window.png"
    assert window.grab().save(str(path))
    print(f"\nviewer screenshot: {path}")
    pixels = _pixels(QImage(str(path)))
    assert pixels.std() > 20
    enhanced = _grab(window.panels.enhanced).astype(int)
    saturation = enhanced.max(axis=2) - enhanced.min(axis=2)
    assert (saturation > 80).mean() > 0.05, "the enhanced panel shows no colour map"
    raw = _grab(window.panels.raw).astype(int)
    assert raw.std() > 20


def test_keys_snapshot_and_pause(qtbot: QtBot, demo_window: MainWindow) -> None:
    window = demo_window
    pipeline = window.pipeline
    assert pipeline is not None
    window.activateWindow()
    _wait_results(qtbot, window, 1)

    qtbot.keyClick(window, Qt.Key.Key_S)
    files = window.last_snapshot
    assert files is not None and files.png.exists() and files.json.exists()
    assert files.png.parent == window.snapshot_dir
    assert QImage(str(files.png)).width() > 300
    record = json.loads(files.json.read_text())
    assert record["result"]["frame_id"] == window.shown_result.frame_id
    assert record["result"]["predicted_class"] in record["result"]["probabilities"]
    assert record["result"]["settings"]["method"] == "gradcam++"
    assert {"capture_to_display_ms", "input_fps", "dropped_frames"} <= set(record["latency"])
    assert record["result"]["model"]["intended_use"] == INTENDED_USE
    assert record["source"].startswith("video file (.mp4) · ")  # no file name, no path
    assert "demo_video" not in files.json.read_text() and str(DEMO_CHECKPOINT.parent) not in (
        files.json.read_text()
    )

    store = window.store
    assert store is not None
    qtbot.keyClick(window, Qt.Key.Key_W)  # View > Whole frame, remembered for the next start
    assert window.panels.whole_frame and store.load().whole_frame
    assert window.panels.raw.image.shape == (336, 464)
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert not window.panels.whole_frame and not store.load().whole_frame

    assert not pipeline.paused
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert pipeline.paused
    qtbot.waitUntil(lambda: pipeline.position is not None)
    qtbot.wait(300)
    before = pipeline.position
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: pipeline.position == before + 1, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: pipeline.position == before, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not pipeline.paused

    window.toggle_fullscreen()
    qtbot.waitUntil(window.isFullScreen)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert window.menuBar().isVisible()


# ----------------------------------------------------------------------------- bad input


def _wrong_architecture_checkpoint(path: Path) -> Path:
    """A checkpoint that says MobileNetV2 (the demo's metadata) but holds ResNet-18 weights."""
    _, meta = load_checkpoint(DEMO_CHECKPOINT)
    state = {k: v.detach() for k, v in build_model("resnet18", 3).state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": meta.to_dict(),
        "state_dict": state,
    }
    torch.save(payload, path)
    return path


def test_failed_opens_leave_the_viewer_on_the_previous_source(
    qtbot: QtBot, demo_window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = demo_window
    pipeline = window.pipeline
    assert pipeline is not None
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    cases = [
        (str(tmp_path / "missing.mp4"), "no such file"),
        (str(corrupt), "cannot open"),
        (7, "cannot open capture device 7"),
        ("/dev/video97", "no capture device at /dev/video97"),
    ]
    for source, reason in cases:
        count = len(window.notices)
        if isinstance(source, int) or source.startswith("/dev/"):  # File > Open capture device
            monkeypatch.setattr(QInputDialog, "getText", lambda *a, s=str(source), **k: (s, True))
            window._choose_device()
        elif source.endswith(".mp4"):  # through the UI: File > Open video
            monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, s=source, **k: (s, ""))
            window._choose_video()
        qtbot.waitUntil(lambda c=count: len(window.notices) > c, timeout=WAIT_MS)
        text = _notices(window).lower()
        assert reason in text, text
        assert "still showing demo_video.mp4" in text
        assert window.banners.message.isVisible()
        assert window.pipeline is pipeline and pipeline.running
        _wait_results(qtbot, window, 1)  # still running on the demo
    window.banners.message.dismiss()
    assert not window.banners.message.isVisible()


def test_a_model_of_another_architecture_is_refused(
    qtbot: QtBot, demo_window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = demo_window
    pipeline = window.pipeline
    assert pipeline is not None
    bad = _wrong_architecture_checkpoint(tmp_path / "resnet_as_mobilenet.pt")
    count = len(window.notices)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    window._choose_model()  # File > Open model
    qtbot.waitUntil(lambda: any(n.banner for n in window.notices[count:]), timeout=WAIT_MS)
    text = _notices(window)
    assert "resnet_as_mobilenet.pt" in text and "still using" in text.lower()
    assert pipeline.settings.checkpoint == DEMO_CHECKPOINT
    assert window.store is not None and window.store.load().checkpoint != str(bad)
    assert INTENDED_USE in window.intended_use.text()
    _wait_results(qtbot, window, 1)
    result = window.shown_result
    assert result is not None and result.settings.checkpoint == DEMO_CHECKPOINT


def test_odd_frame_sources(qtbot: QtBot, tmp_path: Path) -> None:
    frames = _phantom_frames(6)
    sixteen_bit = [f.astype(np.uint16) * 257 for f in frames]
    window = _open_window(tmp_path, IterableSource(sixteen_bit, fps=25, name="sixteen"))
    try:
        _wait_results(qtbot, window, 2)
        assert window.panels.raw_frame.shape == (336, 464)
        assert "16-bit grey" in window.source_line.text()
        assert window.panels.raw_frame.std() > 10  # scaled right, not black

        one_channel = [f[..., None] for f in frames]
        window.open_source(IterableSource(one_channel, fps=25, name="single"))
        qtbot.waitUntil(lambda: "single" in window.source_line.text(), timeout=WAIT_MS)
        _wait_results(qtbot, window, 2)
        assert "8-bit grey" in window.source_line.text()
        good = window.pipeline

        two_channel = [np.stack([f, f], axis=-1) for f in frames]
        count = len(window.notices)
        window.open_source(IterableSource(two_channel, fps=25, name="two"))
        qtbot.waitUntil(
            lambda: "could not be analysed" in _notices(window) and len(window.notices) > count,
            timeout=WAIT_MS,
        )
        assert window.pipeline is not good  # it opened, but its frames cannot be used
        assert "channel" in _notices(window)
        assert window.banners.message.isVisible()

        window.open_source(IterableSource(one_channel, fps=25, name="again"))  # still usable
        qtbot.waitUntil(lambda: "again" in window.source_line.text(), timeout=WAIT_MS)
        _wait_results(qtbot, window, 2)
    finally:
        window.close()


# --------------------------------------------------------------------------- the watchdog


def test_stall_banner_appears_and_clears(qtbot: QtBot, tmp_path: Path) -> None:
    source = IterableSource(
        itertools.cycle(_phantom_frames(3)), fps=25, self_paced=True, name="probe"
    )
    window = _open_window(tmp_path, source)
    banner = window.banners.source
    try:
        _wait_results(qtbot, window, 2)
        assert not window.playback.slider.isEnabled()  # a live device: no playback controls
        source.hold()  # the probe stops delivering
        qtbot.waitUntil(banner.isVisible, timeout=WAIT_MS)
        assert "stalled" in banner.label.text()
        source.release()
        qtbot.waitUntil(lambda: not banner.isVisible(), timeout=WAIT_MS)
        _wait_results(qtbot, window, 1)

        source.lose()  # unplugged
        qtbot.waitUntil(lambda: "lost" in banner.label.text(), timeout=WAIT_MS)
        assert banner.isVisible()
        window.controls.passes.setValue(3)  # the window stays responsive
        source.restore()  # plugged back in
        qtbot.waitUntil(lambda: not banner.isVisible(), timeout=WAIT_MS)
        _wait_results(qtbot, window, 1)
    finally:
        window.close()


# ------------------------------------------------------------------------------ closing


def test_closing_while_processing_joins_every_thread(qtbot: QtBot, tmp_path: Path) -> None:
    baseline = set(threading.enumerate())
    window = _open_window(tmp_path, method="reciprocam", passes=8)
    _wait_results(qtbot, window, 1)
    pipeline = window.pipeline
    assert pipeline is not None and pipeline.running
    start = time.monotonic()
    window.close()
    assert time.monotonic() - start < 15
    assert not pipeline.running
    assert set(threading.enumerate()) <= baseline, threading.enumerate()
