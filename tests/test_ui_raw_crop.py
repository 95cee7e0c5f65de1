"""The raw panel, offscreen: by default the field-of-view crop the model input was made from, at
the map panels' size (a point is the same tissue in all three panels); "Whole frame" (W, the
button, the View menu) shows the whole frame; the review window and its exports follow it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from app.preprocess.field_of_view import FieldOfView, apply_field_of_view
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from app.render.layers import frame_to_gray8
from app.render.overlay import to_uint8_gray
from app.render.panels import compose_panels
from app.review import ReviewSession
from app.ui.panels import PanelRow
from app.ui.recent import ViewerPreferences
from app.ui.review_window import ReviewWindow
from app.ui.viewer import application
from tests.test_ui_review import record_session

INPUT = (64, 64)


def _frame(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A grey uint8 frame: a textured bright disc on a dark surround, a 'logo' top left."""
    yy, xx = np.mgrid[:h, :w]
    texture = 120 + 80 * np.sin(xx / 2.5) * np.cos(yy / 3.5)
    frame = np.where((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r, texture, 6).astype(np.uint8)
    frame[2:8, 2:14] = 250
    return frame


def _preprocess(frame: np.ndarray, fov: FieldOfView) -> tuple[np.ndarray, np.ndarray]:
    """The model input's grey image and disc mask, made as the pipeline makes them."""
    config = PreprocessConfig(INPUT, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    pre = FramePreprocessor(config)(frame, fov=fov)
    return pre.display, pre.fov_mask


@pytest.fixture
def row(qtbot: QtBot) -> PanelRow:
    application()
    panels = PanelRow()
    qtbot.addWidget(panels)
    panels.resize(960, 420)
    panels.show()
    qtbot.waitExposed(panels)
    return panels


def _show(row: PanelRow, frame: np.ndarray, fov: FieldOfView) -> np.ndarray:
    """Draw an analysed frame as the presenter and a window do; the whole grey frame."""
    display, mask = _preprocess(frame, fov)
    zeros = np.zeros(display.shape, np.float32)
    row.show_maps(display, mask, zeros, zeros, 0.5)
    row.set_field_of_view(fov, frame.shape, display.shape)
    gray = frame_to_gray8(frame)
    row.show_raw(gray, "frame 7")
    return gray


def test_the_raw_panel_shows_the_field_of_view_crop(row: PanelRow) -> None:
    frame = _frame(120, 160, cx=104.0, cy=52.0, r=30.0)
    fov = FieldOfView(104.0, 52.0, 30.0)
    gray = _show(row, frame, fov)
    crop = row.raw.image
    x0, y0, side = fov.crop_window()
    assert crop is not None and crop.shape == (side, side) == (60, 60)
    assert np.array_equal(crop, apply_field_of_view(gray, fov, crop=True))
    assert np.array_equal(crop[30, 30], gray[y0 + 30, x0 + 30])  # the disc, at full resolution
    assert crop[0, 0] == 0 and crop[:8].max() < 250  # surround masked, the logo is gone
    assert row.raw_view == "field of view" and "field of view  ·  frame 7" in row.raw.caption.text
    # the crop, resized as the model input was, is what the map panels show: the same tissue
    display, mask = _preprocess(frame, fov)
    resized = cv2.resize(crop, INPUT[::-1], interpolation=cv2.INTER_AREA).astype(int)
    inside = mask & cv2.erode(mask.astype(np.uint8), np.ones((3, 3))).astype(bool)
    assert np.abs(resized - to_uint8_gray(display).astype(int))[inside].max() <= 1
    # the outline is the disc, on the maps' grid
    x, y = row.raw.outline.getData()
    scale = INPUT[0] / side
    centre = (fov.cx - x0 + 0.5) * scale, (fov.cy - y0 + 0.5) * scale
    assert np.hypot(x - centre[0], y - centre[1]) == pytest.approx(fov.radius * scale)


def test_whole_frame_toggle_and_back(qtbot: QtBot, row: PanelRow) -> None:
    frame = _frame(120, 160, cx=104.0, cy=52.0, r=30.0)
    gray = _show(row, frame, FieldOfView(104.0, 52.0, 30.0))
    with qtbot.waitSignal(row.whole_frame_changed) as changed:
        qtbot.mouseClick(row.whole_frame_button, Qt.MouseButton.LeftButton)
    assert changed.args == [True] and row.whole_frame and row.whole_frame_action.isChecked()
    assert np.array_equal(row.raw.image, gray)
    assert row.raw_view == "whole frame" and row.raw.caption.text.startswith("whole frame  ·")
    assert len(row.raw.outline.getData()[0]) > 0  # the field of view's circle on the frame
    row.show_raw(gray, "frame 8")  # the next frame stays whole
    assert row.raw.image.shape == (120, 160)
    row.whole_frame_action.trigger()  # the menu entry / shortcut: the same state
    assert not row.whole_frame_button.isChecked() and row.raw.image.shape == (60, 60)
    assert "field of view  ·  frame 8" in row.raw.caption.text


def test_the_three_panels_have_one_size(qtbot: QtBot, row: PanelRow) -> None:
    _show(row, _frame(120, 160, cx=104.0, cy=52.0, r=30.0), FieldOfView(104.0, 52.0, 30.0))

    def placed(panel_index: int) -> tuple[QPoint, tuple[int, int]]:
        panel = row.panels[panel_index]
        rect = panel.image_rect()
        return panel.mapTo(row, rect.topLeft()), (rect.width(), rect.height())

    def same() -> bool:
        (raw_at, raw_size), (map_at, map_size) = placed(0), placed(1)
        return (
            raw_size[0] > 100
            and abs(raw_size[0] - map_size[0]) <= 1
            and abs(raw_size[1] - map_size[1]) <= 1
            and abs(raw_at.y() - map_at.y()) <= 1
        )

    qtbot.waitUntil(same)
    assert placed(1)[1] == placed(2)[1]


@pytest.mark.parametrize(
    "frame",
    [
        _frame(121, 161, cx=150.0, cy=20.0, r=40.0),  # odd sizes, the disc past two edges
        np.repeat(_frame(121, 161, cx=150.0, cy=20.0, r=40.0)[..., None], 3, 2).astype(np.uint16)
        * 257,  # 16-bit colour
    ],
    ids=["grey", "16-bit colour"],
)
def test_a_disc_partly_outside_the_frame_is_padded(row: PanelRow, frame: np.ndarray) -> None:
    fov = FieldOfView(150.0, 20.0, 40.0)
    gray = _show(row, frame, fov)
    x0, y0, side = fov.crop_window()
    crop = row.raw.image
    assert crop.shape == (side, side) == (80, 80) and x0 + side > 161 and y0 < 0
    assert (crop[:-y0] == 0).all() and (crop[:, 161 - x0 :] == 0).all()  # padded
    assert crop[20 - y0, 150 - x0] == gray[20, 150] > 0  # the disc centre, in place


def test_before_any_result_the_whole_frame_is_shown(row: PanelRow) -> None:
    gray = frame_to_gray8(_frame(120, 160, cx=104.0, cy=52.0, r=30.0))
    row.show_raw(gray, "frame 1")
    assert np.array_equal(row.raw.image, gray) and row.raw_view == "whole frame"
    assert "no field of view yet" in row.raw.caption.text
    row.set_field_of_view(FieldOfView(60.0, 60.0, 50.0), (240, 320), INPUT)
    assert row.raw.image.shape == (120, 160)  # a field of view of frames of another size
    row.set_field_of_view(FieldOfView(104.0, 52.0, 30.0), (120, 160), INPUT)
    assert row.raw.image.shape == (60, 60)  # known now: the current frame is cut at once
    row.set_field_of_view(None)  # another source opened
    assert row.raw.image.shape == (120, 160) and "no field of view yet" in row.raw.caption.text


def test_exported_panels_follow_the_crop() -> None:
    frame = _frame(120, 160, cx=104.0, cy=52.0, r=30.0)
    fov = FieldOfView(104.0, 52.0, 30.0)
    display, mask = _preprocess(frame, fov)
    zeros = np.zeros(display.shape, np.float32)
    headers = ("raw", "enhanced", "risk")
    cropped = compose_panels(frame, display, mask, zeros, zeros, headers, 128, fov=fov)
    whole = compose_panels(frame, display, mask, zeros, zeros, headers, 128)
    assert cropped.shape[1] == 3 * 128 and whole.shape[1] >= round(160 * 128 / 120) + 2 * 128
    header = cropped.shape[0] - 128
    raw = cropped[header:, :128, 0]
    expected = cv2.resize(
        apply_field_of_view(frame, fov), (128, 128), interpolation=cv2.INTER_LINEAR
    )
    assert np.abs(raw.astype(int) - expected.astype(int)).max() <= 1


def test_review_window_toggle_and_exports(qtbot: QtBot, tmp_path: Path) -> None:
    application()
    folder = record_session(tmp_path / "session", frames=3)
    window = ReviewWindow(ReviewSession(folder), export_dir=tmp_path / "exports")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    panels = window.panels
    frame = window.session.frame(0)
    fov = FieldOfView(*frame.summary.fov)
    assert np.array_equal(panels.raw.image, apply_field_of_view(frame.raw, fov))
    assert np.array_equal(panels.raw_frame, frame.raw)
    assert window.take_snapshot().png.exists()
    cropped = cv2.imread(str(tmp_path / "exports" / "review-frame000000.png"))
    menus = {a.text(): a.menu() for a in window.menuBar().actions() if a.menu() is not None}
    assert panels.whole_frame_action in menus["&View"].actions()

    qtbot.keyClick(window, Qt.Key.Key_W)
    assert panels.whole_frame and np.array_equal(panels.raw.image, frame.raw)
    window.show_frame(1)
    assert np.array_equal(panels.raw.image, window.session.frame(1).raw)
    window.show_frame(0)
    whole = cv2.imread(str(window.take_snapshot().png))
    assert whole.shape == frame.panels(whole_frame=True).shape != cropped.shape
    assert cropped.shape == frame.panels().shape
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert not panels.whole_frame and panels.raw.image.shape == (fov.crop_window()[2],) * 2


def test_the_choice_is_remembered() -> None:
    assert not ViewerPreferences().whole_frame
    kept = ViewerPreferences.from_dict(ViewerPreferences(whole_frame=True).to_dict())
    assert kept.whole_frame
    assert not ViewerPreferences.from_dict({"whole_frame": "yes"}).whole_frame
