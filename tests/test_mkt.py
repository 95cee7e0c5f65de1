"""Cellvizio ``.mkt`` files (app.pipeline.mkt, MktFileSource), on files the tests write from the
published layout: frames, metadata, seeking, depth, and damage (truncated, overwritten, no
metadata, not a .mkt at all, shrinking while open)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.pipeline.mkt import FRAME_CHUNK, read_mkt_index
from app.pipeline.sources import MktFileSource, SourceError, SourceState, open_source
from app.ui.readouts import describe_source
from tests.mkt_files import FILE_HEADER, chunk, frames_12bit, write_mkt
from tests.pipeline_support import tiny_checkpoint

METADATA = {"framerate": 11.7, "fovx": 240.0, "fovy": 210.5, "patient": "none"}


def _read_all(source: MktFileSource) -> list[np.ndarray]:
    images = []
    while (frame := source.read()) is not None:
        assert frame.source_index == len(images)
        images.append(frame.image)
    assert source.state is SourceState.END
    return images


def test_frames_metadata_and_exact_seek(tmp_path: Path) -> None:
    frames = frames_12bit(6)
    path = write_mkt(tmp_path / "case.mkt", frames, METADATA)
    with MktFileSource(path) as source:
        assert (source.fps, source.frame_count, source.seekable) == (11.7, 6, True)
        assert source.field_of_view_um == (240.0, 210.5)
        assert source.metadata["patient"] == "none" and source.bit_depth == 12
        assert source.take_notices() == []
        images = _read_all(source)
        assert source.ended_early is None
        for image, stored in zip(images, frames, strict=True):
            assert image.dtype == np.uint16 and image.shape == (36, 40)  # rows = height
            expected = np.clip(stored, 0, None).astype(np.uint16) << 4  # 12 bits fill 16
            np.testing.assert_array_equal(image, expected)
        assert int(images[0].max()) == 4095 << 4 and int(images[0].min()) == 0
        source.seek(3)
        frame = source.read()
        assert frame is not None and frame.source_index == 3
        assert frame.source_time == pytest.approx(3 / 11.7)
        np.testing.assert_array_equal(frame.image, images[3])
        with pytest.raises(SourceError, match="outside the source"):
            source.seek(6)


def test_the_depth_is_the_smallest_that_holds_the_brightest_frame(tmp_path: Path) -> None:
    frames = frames_12bit(20)
    frames[13][5, 5] = 9000  # 14-bit content, in a frame the probes reach
    with MktFileSource(write_mkt(tmp_path / "deep.mkt", frames, {})) as source:
        assert source.bit_depth == 14
        source.seek(13)
        frame = source.read()
        assert frame is not None and int(frame.image[5, 5]) == 9000 << 2


@pytest.mark.parametrize(
    ("height", "width"), [(64, 64), (20, 576), (16, 512)], ids=["square", "576", "512"]
)
def test_without_metadata_the_size_comes_from_the_frames(
    tmp_path: Path, height: int, width: int
) -> None:
    frames = frames_12bit(3, height, width)
    with MktFileSource(write_mkt(tmp_path / "bare.mkt", frames)) as source:
        assert source.fps == 25.0 and source.field_of_view_um is None
        notices = source.take_notices()
        assert any(f"{width}x{height} taken from the frames" in n for n in notices), notices
        assert [i.shape for i in _read_all(source)] == [(height, width)] * 3


def test_a_frame_size_that_cannot_be_told_is_a_clear_error(tmp_path: Path) -> None:
    path = write_mkt(tmp_path / "odd.mkt", frames_12bit(2, 20, 30))
    with pytest.raises(SourceError, match=r"cannot tell the frame size \(1200 bytes a frame\)"):
        MktFileSource(path)


def test_a_truncated_file_keeps_the_frames_before_the_cut(tmp_path: Path) -> None:
    """The metadata chunk at the end is lost with the cut: a Cellvizio frame size still plays."""
    path = write_mkt(tmp_path / "cut.mkt", frames_12bit(5, 20, 576), METADATA)
    index = read_mkt_index(path)
    data = path.read_bytes()
    path.write_bytes(data[: index.frames[3] + 100])  # inside frame 3
    with MktFileSource(path) as source:
        assert source.frame_count == 3 and len(_read_all(source)) == 3
        assert source.fps == 25.0, "the frame rate was in the metadata that the cut lost"
        assert source.ended_early is not None and "truncated" in source.ended_early
        assert "frames 0 to 2 were read" in source.ended_early


def test_bytes_written_over_the_middle_lose_only_the_frames_there(tmp_path: Path) -> None:
    frames = frames_12bit(6)
    path = write_mkt(tmp_path / "hit.mkt", frames, METADATA)
    index = read_mkt_index(path)
    data = bytearray(path.read_bytes())
    start = index.frames[2] - 16  # frame 2's header, and into its pixels
    data[start : start + 200] = np.random.default_rng(1).integers(0, 256, 200, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with MktFileSource(path) as source:
        notices = source.take_notices()
        assert any("damaged bytes" in n for n in notices), notices
        images = _read_all(source)
        assert len(images) == 5 and source.ended_early is None
        shifted = [np.clip(f, 0, None).astype(np.uint16) << 4 for f in frames]
        for image, stored in zip(images, [*shifted[:2], *shifted[3:]], strict=True):
            np.testing.assert_array_equal(image, stored)
        assert source.fps == 11.7  # the metadata after the damage is still found


def test_a_frame_chunk_of_another_size_is_skipped(tmp_path: Path) -> None:
    frames = frames_12bit(3)
    path = write_mkt(tmp_path / "mixed.mkt", frames, METADATA)
    odd = chunk(FRAME_CHUNK, np.zeros((10, 10), "<i2").tobytes())
    data = path.read_bytes()
    path.write_bytes(FILE_HEADER + odd + data[len(FILE_HEADER) :])
    with MktFileSource(path) as source:
        assert any("another size" in n for n in source.take_notices())
        assert len(_read_all(source)) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"just some text that is no recording\n" * 20, "not a Cellvizio .mkt file"),
        (FILE_HEADER + chunk(5, b"\x00\x00\x00\x00width=4\n"), "holds no complete frame"),
    ],
    ids=["empty", "not-mkt", "no-frames"],
)
def test_files_that_are_no_recording(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mkt"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_source(path)
    with pytest.raises(SourceError, match="no such file"):
        MktFileSource(tmp_path / "missing.mkt")
    with pytest.raises(SourceError, match="is a folder"):
        MktFileSource(tmp_path)


def test_a_file_that_shrinks_while_open_is_an_error_per_frame(tmp_path: Path) -> None:
    path = write_mkt(tmp_path / "live.mkt", frames_12bit(4), METADATA)
    index = read_mkt_index(path)
    with MktFileSource(path) as source:
        assert source.read() is not None
        with path.open("r+b") as f:
            f.truncate(index.frames[2])
        assert source.read() is not None  # frame 1 lies before the cut
        with pytest.raises(SourceError, match="cut off"):
            source.read()
        with pytest.raises(SourceError, match="cut off"):
            source.read()
        assert source.read() is None and source.state is SourceState.END


def test_open_source_and_process_take_a_mkt_file(tmp_path: Path) -> None:
    path = write_mkt(tmp_path / "CASE.MKT", frames_12bit(4, 80, 80), METADATA)
    with open_source(path) as source:
        assert isinstance(source, MktFileSource)
        assert describe_source(source) == (
            "CASE.MKT · Cellvizio file · 11.7 fps · 4 frames · field 240×210.5 µm"
        )
    checkpoint = tiny_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "out"
    argv = ["process", str(path), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--passes", "2", "--device", "cpu", "--quiet"]) == 0
    rows = (out / "CASE.frames.csv").read_text().splitlines()
    assert len(rows) == 1 + 4, rows
