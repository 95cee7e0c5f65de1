"""Start and stop, playback controls, and a device lost mid-stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.pipeline import (
    EventKind,
    FrameAnalyzer,
    FrameResult,
    IterableSource,
    Mode,
    Pipeline,
    PipelineSettings,
    SourceError,
    StallReason,
)
from app.pipeline.sources import SourceFrame
from tests.pipeline_support import numbered_frames, tiny_checkpoint, wait_until


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    checkpoint = tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    return PipelineSettings(checkpoint, passes=2, device="cpu")


def level(item: FrameResult | SourceFrame | None) -> int:
    """The index a numbered frame encodes."""
    assert item is not None
    image = item.raw if isinstance(item, FrameResult) else item.image
    return int(image[24, 32]) - 40


class BlockingAnalyzer(FrameAnalyzer):
    """Signals when a frame is being analysed and takes its time about it."""

    def __init__(self, settings: PipelineSettings) -> None:
        super().__init__(settings)
        self.inside = threading.Event()

    def __call__(self, frame: SourceFrame, picked_time: float | None = None) -> FrameResult:
        self.inside.set()
        time.sleep(0.3)
        return super().__call__(frame, picked_time)


def test_stop_during_inference_joins_every_thread(settings: PipelineSettings) -> None:
    baseline = set(threading.enumerate())
    analyzer = BlockingAnalyzer(settings)
    source = IterableSource(numbered_frames(1000), fps=100.0)
    pipeline = Pipeline(source, analyzer, mode="analysis").start()
    assert analyzer.inside.wait(10.0)
    assert pipeline.stop(timeout=5.0) is True  # mid-inference, no consumer
    assert set(threading.enumerate()) == baseline
    assert pipeline.stop() is True and not pipeline.running  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        pipeline.start()


def test_stop_while_the_source_is_stalled(settings: PipelineSettings) -> None:
    baseline = set(threading.enumerate())
    source = IterableSource(numbered_frames(100), fps=100.0)
    source.hold()
    with Pipeline(source, settings, mode="live"):
        time.sleep(0.1)
    assert set(threading.enumerate()) == baseline


def test_a_lost_device_is_reported_not_raised_and_comes_back(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(100_000), fps=50.0, self_paced=True)
    with Pipeline(source, settings, mode="live", reopen_interval_s=0.05) as pipeline:
        assert wait_until(lambda: pipeline.last_result is not None)
        source.lose()
        assert wait_until(lambda: pipeline.watchdog().reason is StallReason.DEVICE_LOST)
        assert pipeline.running and pipeline.watchdog().stalled
        time.sleep(0.2)  # several failed reopen attempts: reported once
        kinds = [e.kind for e in pipeline.events()]
        assert kinds.count(EventKind.DEVICE_LOST) == 1
        lost_at = time.monotonic()
        source.restore()
        assert wait_until(lambda: not pipeline.watchdog().stalled)
        assert EventKind.DEVICE_BACK in [e.kind for e in pipeline.events()]
        assert wait_until(
            lambda: (r := pipeline.wait_result(0.05)) is not None and r.capture_time > lost_at
        )


def test_pause_seek_and_step_through_a_file(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(50), fps=25.0)
    with Pipeline(source, settings, mode="analysis", paused=True) as pipeline:
        assert pipeline.wait_result(0.3) is None  # paused: nothing is read
        pipeline.seek(20)
        assert level(pipeline.wait_result(10.0)) == 20  # shown at once when paused
        assert pipeline.step()
        assert level(pipeline.wait_result(10.0)) == 21
        assert pipeline.step(-1)
        assert level(pipeline.wait_result(10.0)) == 20
        assert pipeline.position == 20 and pipeline.frame_count == 50
        pipeline.seek(80)  # out of range: reported, playback state unchanged
        failed = []
        assert wait_until(lambda: failed.extend(pipeline.events()) or bool(failed))
        assert failed[0].kind is EventKind.SEEK_FAILED and "outside" in failed[0].message
        pipeline.play()
        assert level(pipeline.wait_result(10.0)) == 21
        assert not pipeline.step()  # only while paused


def test_live_file_playback_follows_fps_and_speed(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(10_000), fps=20.0)
    with Pipeline(source, settings, mode="live") as pipeline:
        time.sleep(1.0)
        slow = pipeline.stats().frames_read
        pipeline.set_speed(3.0)
        before = pipeline.stats().frames_read
        time.sleep(1.0)
        fast = pipeline.stats().frames_read - before
        assert pipeline.speed == 3.0
    assert 15 <= slow <= 25  # 20 fps
    assert 45 <= fast <= 70  # 60 fps


def test_switching_mode_at_runtime(settings: PipelineSettings) -> None:
    source = IterableSource(numbered_frames(10_000), fps=500.0)
    with Pipeline(source, settings, mode="live") as pipeline:
        assert wait_until(lambda: pipeline.stats().dropped_frames > 0)
        pipeline.set_mode("analysis")
        assert pipeline.mode is Mode.ANALYSIS
        pipeline.wait_result(5.0)
        pipeline.wait_result(5.0)  # flush what was in flight at the switch
        dropped = pipeline.stats().dropped_frames
        indices = [level(pipeline.wait_result(5.0)) for _ in range(8)]
        assert indices == list(range(indices[0], indices[0] + 8))
        assert pipeline.stats().dropped_frames == dropped


def test_bad_source_or_checkpoint_fails_at_construction(
    settings: PipelineSettings, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="no such file"):
        Pipeline(tmp_path / "missing.avi", settings)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    source = IterableSource(numbered_frames(3))
    with pytest.raises(ValueError, match=r"bad\.pt"):
        Pipeline(source, settings.replace(checkpoint=bad))
    assert source.read() is None  # the pipeline closed the source it was given
