"""Frame sources: files, folders, devices and the in-memory test source; clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.pipeline.sources import (
    DEFAULT_FPS,
    CaptureDeviceSource,
    ImageFolderSource,
    IterableSource,
    SourceError,
    SourceState,
    VideoFileSource,
    _valid_fps,
    open_source,
)
from tests.pipeline_support import (
    REAL_DATA,
    damaged_copies,
    mpeg1_video,
    numbered_frames,
    phantom_video,
)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom_video(tmp_path_factory.mktemp("video") / "phantom.avi", frames=80, fps=20.0)


def decoded(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


# -- video files ---------------------------------------------------------------------------------


def test_video_file_frames_carry_ids_indices_and_times(video: Path) -> None:
    with VideoFileSource(video) as source:
        assert source.fps == 20.0 and source.frame_count == 80 and source.seekable
        frames = list(source)
        assert source.state is SourceState.END
    assert [f.frame_id for f in frames] == list(range(80))
    assert [f.source_index for f in frames] == list(range(80))
    assert [f.source_time for f in frames] == pytest.approx([i / 20.0 for i in range(80)])
    captures = [f.capture_time for f in frames]
    assert captures == sorted(captures)
    assert frames[0].image.shape == (96, 128, 3) and frames[0].image.dtype == np.uint8


def test_video_seek_lands_on_the_exact_frame_and_ids_keep_increasing(video: Path) -> None:
    reference = decoded(video)
    with VideoFileSource(video) as source:
        first = source.read()
        for index in (70, 5, 0, 66, 67, 30):  # far, back to the start, forward by one, back
            source.seek(index)
            frame = source.read()
            assert frame is not None and frame.source_index == index
            np.testing.assert_array_equal(frame.image, reference[index])
        assert frame.frame_id == first.frame_id + 6
        with pytest.raises(SourceError, match="outside the source"):
            source.seek(81)  # the declared count, with the one frame of slack MPEG needs
        with pytest.raises(SourceError, match="ends before frame 80"):
            source.seek(80)
        source.seek(79)
        assert source.read().source_index == 79
        assert source.read() is None and source.state is SourceState.END
        assert source.reopen() and source.read().source_index == 0  # a file reopens at 0


def test_missing_file() -> None:
    with pytest.raises(SourceError, match="no such file"):
        VideoFileSource("/nonexistent/recording.avi")
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source("/nonexistent/recording.avi")


def test_corrupt_video(tmp_path: Path, video: Path) -> None:
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(SourceError, match=r"cannot open .*garbage\.avi as a video"):
        open_source(garbage)
    truncated = tmp_path / "truncated.avi"  # a valid header, no decodable frame
    truncated.write_bytes(video.read_bytes()[:6000])
    with pytest.raises(SourceError, match="no frame decodes"):
        open_source(truncated)


def test_fps_fallback_for_containers_without_a_rate() -> None:
    assert _valid_fps(0.0) == DEFAULT_FPS == 25.0
    assert _valid_fps(float("nan")) == DEFAULT_FPS
    assert _valid_fps(24.0) == 24.0


# -- devices -------------------------------------------------------------------------------------


def test_device_index_that_does_not_exist() -> None:
    with pytest.raises(SourceError, match="cannot open capture device 99"):
        open_source(99)
    with pytest.raises(SourceError, match="cannot open capture device 99"):
        open_source("99")
    with pytest.raises(SourceError, match="does not exist"):
        open_source("/dev/video99")
    with pytest.raises(SourceError, match="does not exist"):
        CaptureDeviceSource("/dev/video99")


# -- folders -------------------------------------------------------------------------------------


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(SourceError, match="holds no images"):
        open_source(tmp_path)
    with pytest.raises(SourceError, match="no such folder"):
        ImageFolderSource(tmp_path / "missing")


def test_folder_of_16_bit_grey_images_in_natural_order(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        image = np.full((40, 50), 1000 * i, np.uint16)
        assert cv2.imwrite(str(tmp_path / f"frame_{i}.png"), image)
    source = open_source(tmp_path, fps=10.0)
    assert isinstance(source, ImageFolderSource) and source.frame_count == 3
    frames = list(source)
    assert [int(f.image[0, 0]) for f in frames] == [1000, 2000, 10000]
    assert all(f.image.dtype == np.uint16 and f.image.shape == (40, 50) for f in frames)
    assert [f.source_time for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_an_undecodable_image_fails_alone(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((20, 20), np.uint8))
    (tmp_path / "a2.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "a3.png"), np.ones((20, 20), np.uint8))
    source = ImageFolderSource(tmp_path)
    assert source.read().source_index == 0
    with pytest.raises(SourceError, match=r"cannot decode image .*a2\.png"):
        source.read()
    assert source.read().source_index == 2


def test_open_source_dispatch(tmp_path: Path, video: Path) -> None:
    image = tmp_path / "one.tif"
    cv2.imwrite(str(image), np.zeros((20, 20), np.uint16))
    assert isinstance(open_source(video), VideoFileSource)
    assert isinstance(open_source(str(video)), VideoFileSource)
    single = open_source(image)
    assert isinstance(single, ImageFolderSource) and single.frame_count == 1
    assert isinstance(open_source([image, image]), ImageFolderSource)
    with pytest.raises(SourceError, match="no source"):
        open_source("  ")


# -- in-memory source and its fault hooks --------------------------------------------------------


def test_iterable_source_lose_and_restore() -> None:
    source = IterableSource(numbered_frames(5), fps=100.0)
    assert source.read().source_index == 0
    source.lose()
    assert source.read() is None and source.state is SourceState.LOST
    assert not source.reopen()
    source.restore()
    assert source.reopen() and source.state is SourceState.OK
    assert source.read().source_index == 1  # continues where it stopped


def test_iterable_source_hold_blocks_until_released() -> None:
    source = IterableSource(numbered_frames(3), fps=100.0)
    source.hold()
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(source.read().source_index))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive() and not got
    source.release()
    reader.join(2.0)
    assert got == [0]


def test_iterable_source_from_a_generator_is_not_seekable() -> None:
    source = IterableSource(iter(numbered_frames(3)), fps=10.0)
    assert source.frame_count is None and not source.seekable
    with pytest.raises(SourceError, match="cannot seek"):
        source.seek(0)
    assert len(list(source)) == 3


def test_a_damaged_video_delivers_the_frames_before_the_damage_and_says_so(
    tmp_path: Path, video: Path
) -> None:
    whole = decoded(video)
    with VideoFileSource(video) as source:
        assert len(list(source)) == len(whole) and source.ended_early is None
    for name, path in damaged_copies(video, tmp_path).items():
        with VideoFileSource(path) as source:
            frames = list(source)
            assert source.state is SourceState.END
            assert 0 < len(frames) < len(whole), name
            for frame in frames:  # the frames before the damage, as the whole file has them
                assert np.array_equal(frame.image, whole[frame.source_index]), name
            message = source.ended_early
            assert message is not None and "truncated or damaged" in message, name
            assert f"after {len(frames)} of the {len(whole)} frames" in message
            source.seek(0)  # played again from the start: a normal source until it ends again
            assert source.ended_early is None and source.read() is not None


def assert_numbered_by_time_stamps(damaged: Path, whole: list[np.ndarray]) -> None:
    """Frames of ``damaged`` (``whole`` with garbage over a third of its bytes) keep the
    numbers the intact file gives them; the lost frames are one reported gap."""
    with VideoFileSource(damaged) as source:
        frames = list(source)
        notices = source.take_notices()
        gaps = source.gaps
    indices = [frame.source_index for frame in frames]
    assert indices == sorted(set(indices)) and len(frames) < len(whole)
    assert len(gaps) == 1 and len(notices) == 1 and "did not decode" in notices[0]
    first, last = gaps[0]
    assert f"frames {first} to {last}" in notices[0]
    assert set(range(first, last + 1)).isdisjoint(indices)
    assert len(frames) + (last - first + 1) >= len(whole) - 1  # nothing else is missing
    for frame in frames:  # away from the damage, every frame has the intact file's pixels
        if frame.source_index < first - 1 or frame.source_index > last + 12:
            assert np.array_equal(frame.image, whole[frame.source_index]), frame.source_index
        assert frame.source_time == pytest.approx(frame.source_index / source.fps)


def test_an_mpeg1_video_with_garbage_over_its_middle_keeps_its_frame_numbers(
    tmp_path: Path,
) -> None:
    video = mpeg1_video(tmp_path / "whole.mpg")
    assert_numbered_by_time_stamps(damaged_copies(video, tmp_path)["overwritten"], decoded(video))


@pytest.mark.realdata
def test_a_real_video_with_garbage_over_its_middle_keeps_its_frame_numbers(
    tmp_path: Path,
) -> None:
    real = REAL_DATA / "meningioma" / "meningioma_9.mpg"
    if not real.exists():
        pytest.skip(f"real data not found: {real}")
    whole = decoded(real)
    with VideoFileSource(real) as source:
        assert [f.source_index for f in source] == list(range(len(whole)))
        assert source.ended_early is None and not source.gaps and not source.take_notices()
    assert_numbered_by_time_stamps(damaged_copies(real, tmp_path)["overwritten"], whole)


def assert_seeks_are_frame_exact(video: Path) -> None:
    """A seek to N, near the start, far, forwards and backwards, delivers the pixels of the
    N-th frame that reading from the start decodes."""
    whole = decoded(video)
    last = len(whole) - 1
    targets = [3, 5, 11, 12, 13, 0, last, 100, last - 1, 12, 64, 65, last // 2, 1, last - 70]
    with VideoFileSource(video) as source:
        for index in targets:
            source.seek(index)
            assert source.position == index
            frame = source.read()
            assert frame is not None and frame.source_index == index
            assert np.array_equal(frame.image, whole[index]), index
            following = source.read()  # and reading goes on from there
            if index < last:
                assert following is not None and following.source_index == index + 1
                assert np.array_equal(following.image, whole[index + 1]), index + 1


def test_seeks_in_an_mpeg1_video_are_frame_exact(tmp_path: Path) -> None:
    assert_seeks_are_frame_exact(mpeg1_video(tmp_path / "seek.mpg"))


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["meningioma/meningioma_9.mpg", "glioblastoma/GBM_12.mpg"])
def test_seeks_in_real_videos_are_frame_exact(name: str) -> None:
    real = REAL_DATA / name
    if not real.exists():
        pytest.skip(f"real data not found: {real}")
    assert_seeks_are_frame_exact(real)
