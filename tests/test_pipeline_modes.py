"""Live mode drops stale frames and counts them; analysis mode analyses every frame in order."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.pipeline import FrameAnalyzer, FrameResult, IterableSource, Pipeline, PipelineSettings
from app.pipeline.sources import SourceFrame
from tests.pipeline_support import numbered_frames, phantom_video, tiny_checkpoint, wait_until


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    checkpoint = tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    return PipelineSettings(checkpoint, method="gradcam++", passes=3, device="cpu")


class SlowAnalyzer(FrameAnalyzer):
    """Sleeps before each frame and notes which frame it got and the newest one read then."""

    def __init__(self, settings: PipelineSettings, delay_s: float) -> None:
        super().__init__(settings)
        self.delay_s = delay_s
        self.pipeline: Pipeline | None = None
        self.seen: list[tuple[int, int]] = []  # (frame id analysed, newest frame id read)

    def __call__(self, frame: SourceFrame, picked_time: float | None = None) -> FrameResult:
        newest = self.pipeline.latest_frame() if self.pipeline else None
        self.seen.append((frame.frame_id, newest.frame_id if newest else -1))
        time.sleep(self.delay_s)
        return super().__call__(frame, picked_time)


def test_live_mode_drops_stale_frames_and_the_worker_sees_the_newest(
    settings: PipelineSettings,
) -> None:
    source = IterableSource(numbered_frames(100_000), fps=400.0)  # paced at 400 fps
    analyzer = SlowAnalyzer(settings, delay_s=0.06)
    pipeline = Pipeline(source, analyzer, mode="live")
    analyzer.pipeline = pipeline
    with pipeline:
        assert wait_until(lambda: len(analyzer.seen) >= 6, timeout=20.0)
        pipeline.pause()
        snap = pipeline.stats()
    assert snap.dropped_frames > 0
    read_per_frame = snap.frames_read / max(len(analyzer.seen), 1)
    assert read_per_frame > 5  # the source really was much faster than the worker
    analysed = [seen for seen, _ in analyzer.seen]
    assert analysed == sorted(analysed) and len(set(analysed)) == len(analysed)
    # Each frame analysed was the newest read when the worker took it (give or take the
    # one or two the capture thread reads between the hand-over and the note).
    assert all(newest - seen <= 3 for seen, newest in analyzer.seen[1:])
    # Nothing queues: every frame read was analysed, dropped, or is the one waiting.
    in_flight = snap.frames_read - snap.dropped_frames - snap.frames_processed
    assert 0 <= in_flight <= 2


def test_analysis_mode_analyses_every_frame_in_order(
    settings: PipelineSettings, tmp_path: Path
) -> None:
    video = phantom_video(tmp_path / "v.avi", frames=25)
    with Pipeline(video, settings, mode="analysis") as pipeline:
        results = list(pipeline.results(idle_timeout=30.0))
        assert pipeline.exhausted
        snap = pipeline.stats()
    assert [r.frame_id for r in results] == list(range(25))
    assert [r.source_index for r in results] == list(range(25))
    assert snap.dropped_frames == 0 and snap.results_not_taken == 0
    first = results[0]
    assert first.display.shape == first.fov_mask.shape == (64, 64)
    assert first.explanation.maps.shape[0] == 3 and first.explanation.mean.device.type == "cpu"
    assert first.result_time > first.capture_time and first.latency_ms > 0
    assert {"read", "wait", "preprocess", "explain", "total"} <= set(first.timings_ms)
    assert any(k.startswith("explain.") for k in first.timings_ms)
    assert first.class_name in first.class_names and first.settings == settings
    mean, cv = first.maps()
    assert mean.shape == cv.shape == (64, 64)


def test_analysis_mode_waits_for_a_slow_consumer_without_losing_frames(
    settings: PipelineSettings,
) -> None:
    source = IterableSource(numbered_frames(12), fps=1000.0)
    got = []
    with Pipeline(source, settings, mode="analysis") as pipeline:
        for result in pipeline.results(idle_timeout=30.0):
            got.append(int(result.raw[24, 32]) - 40)
            time.sleep(0.02)
    assert got == list(range(12))


def test_loop_restarts_the_file_with_new_ids(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(4), fps=1000.0)
    with Pipeline(source, settings, mode="analysis", loop=True) as pipeline:
        results = [pipeline.wait_result(10.0) for _ in range(10)]
    assert [r.source_index for r in results] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [r.frame_id for r in results] == list(range(10))


def test_the_raw_frame_runs_at_the_source_rate(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(10_000), fps=200.0)
    analyzer = SlowAnalyzer(settings, delay_s=0.1)
    with Pipeline(source, analyzer, mode="live") as pipeline:
        assert wait_until(lambda: pipeline.last_result is not None, timeout=20.0)
        frame = pipeline.latest_frame()
        assert frame is not None
        # While the worker sleeps on one frame, the raw panel's frame moves on.
        assert wait_until(lambda: pipeline.latest_frame().frame_id > frame.frame_id + 5)


def test_a_folder_of_16_bit_grey_images_goes_through(
    settings: PipelineSettings, tmp_path: Path
) -> None:
    for i, frame in enumerate(numbered_frames(5, height=64, width=80)):
        assert cv2.imwrite(str(tmp_path / f"f{i}.tif"), frame.astype(np.uint16) * 250)
    with Pipeline(tmp_path, settings, mode="analysis") as pipeline:
        results = list(pipeline.results(idle_timeout=30.0))
    assert [r.source_index for r in results] == list(range(5))
    assert results[0].raw.dtype == np.uint16 and results[0].raw.ndim == 2
    display = results[0].display
    assert display.dtype == np.float32 and display.min() >= 0.0 and display.max() <= 1.0
    assert results[0].fov_mask.any() and not results[0].fov_mask.all()  # the disc was found
