"""The video-level verdict: the sliding window, site changes (phantom motion, cuts, real
videos), the analyzer's verdict, its words, and the recording keeping it."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.calibration.window import WindowVerdict, WindowVerdictTracker
from app.preprocess.field_of_view import FieldOfViewTracker
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig
from app.preprocess.site_change import SiteChangeDetector
from app.recording.verdicts import verdict_arrays, verdict_at
from app.render.captions import verdict_text
from app.render.table import csv_row
from models.data.phantom import PhantomConfig, PhantomVideo
from tests.pipeline_support import REAL_DATA, calibrated_copy, tiny_checkpoint
from tests.test_render_captions import summary

FPS = 24.0
GBM, MEN = np.array([0.9, 0.1]), np.array([0.2, 0.8])


# ---------------------------------------------------------------------------- the window


def test_the_window_pools_the_last_two_seconds() -> None:
    tracker = WindowVerdictTracker(2.0)
    verdicts = [tracker.update(i / FPS, GBM if i % 4 else MEN) for i in range(60)]
    assert verdicts[0].restarted == "start" and verdicts[0].frames == 1
    assert verdicts[0].seconds == 0.0 and verdicts[0].uncertain is None
    assert all(v.restarted is None for v in verdicts[1:])
    full = verdicts[-1]
    assert full.frames == 48 and full.seconds == pytest.approx(2.0)
    # 12 of the last 48 frames read meningioma: the mean of the pooled probabilities
    assert full.class_idx == 0 and full.probability == pytest.approx((36 * 0.9 + 12 * 0.2) / 48)
    assert verdicts[10].frames == 11  # before the window is full, every frame so far


def test_the_window_restarts_at_a_new_site_without_tissue_and_when_time_goes_back() -> None:
    tracker = WindowVerdictTracker(2.0)
    for i in range(10):
        tracker.update(i / FPS, GBM)
    moved = tracker.update(10 / FPS, MEN, new_site=True)
    assert (moved.restarted, moved.frames, moved.class_idx) == ("site", 1, 1)
    black = tracker.update(11 / FPS, GBM, tissue=False)
    assert black.class_idx is None and math.isnan(black.probability) and black.frames == 0
    assert black.restarted == "no_tissue"
    assert tracker.update(12 / FPS, GBM, tissue=False).restarted is None  # already empty
    back = tracker.update(13 / FPS, MEN)
    assert (back.restarted, back.frames) == ("start", 1)
    assert tracker.update(14 / FPS, MEN).frames == 2
    looped = tracker.update(0.0, MEN)
    assert (looped.restarted, looped.frames) == ("clock", 1)


def test_a_calibrated_window_is_uncertain_unless_half_its_frames_agree() -> None:
    tracker = WindowVerdictTracker(2.0)
    accepted = [0, None, 0, None]  # two of four frames accepted as class 0
    verdicts = [
        tracker.update(i / FPS, GBM, accepted_class=a, calibrated=True)
        for i, a in enumerate(accepted)
    ]
    assert [v.uncertain for v in verdicts] == [False, False, False, False]
    fifth = tracker.update(4 / FPS, GBM, accepted_class=None, calibrated=True)
    assert fifth.uncertain and fifth.class_idx == 0  # 2 of 5: the class is kept, not named
    tracker.reset()
    disagreeing = [tracker.update(i / FPS, GBM, accepted_class=1, calibrated=True) for i in (0, 1)]
    assert disagreeing[-1].uncertain  # accepted, but as the other class


def test_the_window_refuses_bad_input() -> None:
    for window in (0.0, -1.0, math.nan, 61.0):
        with pytest.raises(ValueError, match="window"):
            WindowVerdictTracker(window)
    tracker = WindowVerdictTracker()
    with pytest.raises(ValueError, match="finite"):
        tracker.update(0.0, [0.5, math.nan])
    with pytest.raises(ValueError, match="finite"):
        tracker.update(0.0, np.ones((2, 2)))
    with pytest.raises(ValueError, match="out of range"):
        tracker.update(0.0, GBM, accepted_class=2, calibrated=True)


def test_on_a_flickering_site_the_window_is_right_more_often_than_single_frames() -> None:
    """One frame in four reads the other class with p 0.6: the frames are right 75 % of the
    time, the window (after its first frames) always."""
    rng = np.random.default_rng(0)
    tracker = WindowVerdictTracker(2.0)
    frames_right = window_right = 0
    for i in range(240):
        wrong = rng.random() < 0.25
        p = np.array([0.4, 0.6]) if wrong else np.array([0.85, 0.15])
        frames_right += not wrong
        window_right += tracker.update(i / FPS, p).class_idx == 0
    assert frames_right < 0.8 * 240 and window_right >= 0.98 * 240


# ---------------------------------------------------------------------------- site changes


def _displays(frames: list[np.ndarray], size: int = 128) -> list[np.ndarray]:
    """The model inputs of consecutive frames, as the viewer preprocesses them."""
    pre = FramePreprocessor(
        PreprocessConfig((size, size), (0.5,) * 3, (0.25,) * 3), tracker=FieldOfViewTracker()
    )
    return [pre(frame).display for frame in frames]


def _phantom(class_name: str, n: int, seed: int) -> list[np.ndarray]:
    video = PhantomVideo(class_name, n, seed=seed, config=PhantomConfig(height=168, width=232))
    return [frame.image for frame in video]


def _changes(displays: list[np.ndarray]) -> list[bool]:
    detector = SiteChangeDetector()
    return [detector.update(d) for d in displays]


def test_the_phantoms_probe_motion_stays_one_site() -> None:
    changes = _changes(_displays(_phantom("meningioma", 48, seed=1)))
    assert changes[0] and not any(changes[1:])


@pytest.mark.parametrize(
    ("first", "second"), [("meningioma", "glioblastoma"), ("glioblastoma", "glioblastoma")]
)
def test_a_cut_between_two_phantom_videos_is_a_new_site(first: str, second: str) -> None:
    frames = _phantom(first, 12, seed=2) + _phantom(second, 12, seed=5)
    changes = _changes(_displays(frames))
    assert [i for i, changed in enumerate(changes) if changed] == [0, 12]


def test_flat_frames_are_neither_the_same_site_nor_a_new_one() -> None:
    detector = SiteChangeDetector()
    texture = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert detector.update(texture)
    assert not detector.update(np.zeros((64, 64), np.float32))
    assert detector.similarity is None
    assert not detector.update(texture)  # a flat frame between the same texture
    with pytest.raises(ValueError, match="2-D"):
        detector.update(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="threshold"):
        SiteChangeDetector(threshold=2.0)


def _video_frames(path: Path, start: int, n: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        frames = []
        while len(frames) < n:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        return frames
    finally:
        capture.release()


@pytest.mark.realdata
def test_real_videos_stay_one_site_between_cuts() -> None:
    """Two real videos back to back: the cut is a new site, and almost no frame of either
    video is (1.6 % of consecutive pairs over the 20 videos; these two stretches are calm)."""
    first, second = REAL_DATA / "meningioma" / "meningioma_7.mpg", REAL_DATA / "glioblastoma"
    second = second / "GBM_4.mpg"
    if not (first.exists() and second.exists()):
        pytest.skip(f"real data not found under {REAL_DATA}")
    frames = _video_frames(first, 0, 48) + _video_frames(second, 0, 48)
    assert len(frames) == 96
    changes = _changes(_displays(frames))
    assert changes[48]
    assert sum(changes[1:48]) + sum(changes[49:]) <= 1


# ---------------------------------------------------------------------------- the analyzer


def test_the_analyzer_gives_each_frame_the_verdict_of_its_site(tmp_path: Path) -> None:
    from app.pipeline import FrameAnalyzer, PipelineSettings
    from app.pipeline.sources import SourceFrame

    checkpoint = calibrated_copy(tiny_checkpoint(tmp_path / "tiny.pt"), tmp_path, 0.0)
    analyzer = FrameAnalyzer(PipelineSettings(checkpoint, passes=2, seed=0, window_s=0.25))
    frames = [*_phantom("meningioma", 8, seed=1), np.zeros((168, 232, 3), np.uint8)]
    frames += _phantom("glioblastoma", 8, seed=5)
    verdicts = []
    for i, image in enumerate(frames):
        frame = SourceFrame(i, i, time.monotonic(), i / FPS, image, 0.0)
        verdicts.append(analyzer(frame).verdict)
    assert [v.frames for v in verdicts[:8]] == [1, 2, 3, 4, 5, 6, 6, 6]  # 0.25 s: 6 frames
    assert verdicts[8].class_idx is None and verdicts[8].restarted == "no_tissue"
    assert verdicts[9].restarted == "start" and verdicts[9].frames == 1
    assert all(v.calibrated and v.uncertain is False for v in verdicts[:8])
    # changing T goes on with the window; another mode restarts it
    again = analyzer.rebuilt(analyzer.settings.replace(passes=3))
    assert again.verdict_tracker is analyzer.verdict_tracker
    assert again.site_detector is analyzer.site_detector
    other = analyzer.rebuilt(analyzer.settings.replace(mc=False, passes=1))
    assert other.verdict_tracker is not analyzer.verdict_tracker


# ---------------------------------------------------------------------------- words, records


def test_the_verdict_in_words_and_in_the_table() -> None:
    full = WindowVerdict(0, 0.934, 48, 2.0, False, True)
    expected = "glioblastoma 0.93 over the last 2.0 s (48 frames)"
    assert verdict_text(summary(verdict=full)) == expected
    unsure = WindowVerdict(1, 0.55, 30, 1.25, True, True, "site")
    assert verdict_text(summary(verdict=unsure)) == "UNCERTAIN over the last 1.2 s (30 frames)"
    raw = WindowVerdict(1, 0.8, 1, 0.0, None, False, "start")
    assert verdict_text(summary(verdict=raw)) == "meningioma 0.80 over 1 frame (not calibrated)"
    empty = WindowVerdict(None, math.nan, 0, 0.0, None, True, "no_tissue")
    assert verdict_text(summary(verdict=empty)) == "no tissue: the verdict restarts"
    assert verdict_text(summary(verdict=None)) == ""
    row = csv_row(summary(verdict=unsure))
    assert (row["window_class"], row["window_p"], row["window_frames"]) == (
        "UNCERTAIN",
        "0.550000",
        30,
    )
    assert row["window_restart"] == "site"
    assert csv_row(summary(verdict=full))["window_class"] == "glioblastoma"
    empty_row = csv_row(summary(verdict=empty))
    assert empty_row["window_class"] == empty_row["window_p"] == ""
    assert csv_row(summary(verdict=None))["window_frames"] == ""


def test_a_chunk_keeps_every_verdict_exactly() -> None:
    verdicts = [
        WindowVerdict(0, 0.934, 48, 2.0, False, True),
        WindowVerdict(1, 0.55, 30, 1.25, True, True, "site"),
        WindowVerdict(None, math.nan, 0, 0.0, None, False, "no_tissue"),
        None,
    ]
    arrays = verdict_arrays(verdicts)
    back = [verdict_at(arrays, row) for row in range(len(verdicts))]
    assert back[:2] == verdicts[:2] and back[3] is None
    assert back[2].class_idx is None and back[2].restarted == "no_tissue"
    assert verdict_at({}, 0) is None  # a session recorded before verdicts


def test_the_window_length_is_a_validated_setting(tmp_path: Path) -> None:
    from app.cli import main
    from app.pipeline import PipelineSettings, SettingsError

    assert PipelineSettings(tmp_path / "m.pt").window_s == 2.0
    assert PipelineSettings(tmp_path / "m.pt", window_s=5).window_s == 5.0
    for bad in (0, -1.0, 61.0, math.nan, True, "2"):
        with pytest.raises(SettingsError, match="verdict window"):
            PipelineSettings(tmp_path / "m.pt", window_s=bad)
    with pytest.raises(SystemExit) as refused:
        main(["process", str(tmp_path / "v.avi"), "--window", "0"])
    assert refused.value.code == 2
