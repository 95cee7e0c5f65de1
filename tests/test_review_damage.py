"""Reviewing a damaged session (issue 11): a result chunk that is corrupt, cut short or deleted
keeps every other frame in its place, ``--info`` says which frames are gone and why, exports
of a damaged frame end in one line; clip options checked where they are given; an output that
cannot be written is refused before any work, exit 3, nothing changed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.recording import DamagedFrames, RecordingError, SessionReader, SessionRecorder
from app.review import ReviewFrame, ReviewSession, export_clip
from tests.output_support import read_only
from tests.session_support import corrupt_chunk
from tests.test_recording import fake_result, fake_settings

FRAMES, CHUNK = 30, 10


def _record(folder: Path) -> Path:
    """30 frames in three result chunks of 10 (0-9, 10-19, 20-29)."""
    settings = fake_settings(folder.parent)
    with SessionRecorder(folder, settings=settings, chunk_frames=CHUNK) as recorder:
        for i in range(FRAMES):
            assert recorder.write(fake_result(i, settings))
    return folder


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    return _record(tmp_path / "session")


def _chunk(folder: Path, index: int) -> Path:
    return folder / "results" / f"chunk_{index:05d}.npz"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt": (corrupt_chunk, "results/chunk_00001.npz is corrupt"),
    "truncated": (truncate, "results/chunk_00001.npz is corrupt"),
    "deleted": (delete, "results/chunk_00001.npz is missing"),
}


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_chunk_keeps_every_other_frame_in_its_place(session_dir: Path, kind: str) -> None:
    intact = SessionReader(session_dir).timeline()
    damage, reason = DAMAGE[kind]
    damage(_chunk(session_dir, 1))
    reader = SessionReader(session_dir)
    assert len(reader) == FRAMES and reader.readable_frames == FRAMES - CHUNK
    (span,) = reader.damaged
    assert (span.first, span.last, span.chunks) == (10, 19, (1,))
    assert span.reason.startswith(reason)
    assert span.describe().startswith(f"frames 10-19 (chunk 1) are unreadable: {reason}")
    assert reader.damage(12) is span and reader.damage(9) is None and reader.damage(20) is None
    for i in (0, 9, 20, 29):  # the frames of intact chunks, at their own positions
        image, record = reader.frame(i)
        assert record.position == record.frame_id == i and image.shape == (24, 20)
    for i in (10, 19, -11):
        with pytest.raises(RecordingError, match=r"frame 1\d: frames 10-19 \(chunk 1\)"):
            reader.frame(i)
    timeline = reader.timeline()
    assert timeline.class_idx.shape == (FRAMES,)
    assert np.all(timeline.class_idx[10:20] == -1) and np.all(np.isnan(timeline.mean_cv[10:20]))
    keep = np.r_[0:10, 20:30]
    assert np.array_equal(timeline.class_idx[keep], intact.class_idx[keep])
    np.testing.assert_array_equal(timeline.time_s[keep], intact.time_s[keep])


def test_a_deleted_last_chunk_is_counted_from_the_manifest(session_dir: Path) -> None:
    _chunk(session_dir, 2).unlink()
    (session_dir / "frames" / "chunk_00002").rename(session_dir / "elsewhere")  # images gone too
    reader = SessionReader(session_dir)
    assert len(reader) == FRAMES and reader.damaged == [
        DamagedFrames(20, 29, (2,), "results/chunk_00002.npz is missing")
    ]
    assert "30 frames, 10 unreadable" in ReviewSession(session_dir).describe()


def test_a_session_whose_results_are_all_gone_names_each_chunk(
    session_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for chunk in (session_dir / "results").iterdir():
        chunk.unlink()
    reader = SessionReader(session_dir)
    assert len(reader) == FRAMES and reader.readable_frames == 0
    assert [(d.first, d.last, d.chunks) for d in reader.damaged] == [
        (0, 9, (0,)),
        (10, 19, (1,)),
        (20, 29, (2,)),
    ]
    assert main(["review", str(session_dir), "--info"]) == 0  # was "0 frames"
    out = capsys.readouterr().out
    assert "30 frames, 30 unreadable" in out
    assert "frames 20-29 (chunk 2) are unreadable: results/chunk_00002.npz is missing" in out


def test_two_damaged_chunks_in_a_row_are_told_apart(session_dir: Path) -> None:
    _chunk(session_dir, 1).unlink()
    truncate(_chunk(session_dir, 2))
    (session_dir / "results" / "chunk_99999999.npz").write_bytes(b"stray")  # not a real chunk
    reader = SessionReader(session_dir)
    assert len(reader) == FRAMES and reader.frame(9)[1].frame_id == 9
    assert [(d.first, d.last, d.chunks) for d in reader.damaged] == [
        (10, 19, (1,)),
        (20, 29, (2,)),
    ]
    assert reader.damaged[0].reason == "results/chunk_00001.npz is missing"
    assert reader.damaged[1].reason.startswith("results/chunk_00002.npz is corrupt")
    (stray,) = reader.warnings
    assert stray.startswith("results/chunk_99999999.npz is corrupt (")
    assert stray.endswith("; no frame is known to be missing with it")


def test_a_hand_edited_frame_count_invents_no_frames(session_dir: Path) -> None:
    manifest = session_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["frames"] = 10**9
    manifest.write_text(json.dumps(data))
    reader = SessionReader(session_dir)
    assert len(reader) == FRAMES and not reader.damaged  # frames.csv has 30 rows


def test_a_corrupt_complete_chunk_falls_back_to_its_partial(session_dir: Path) -> None:
    with np.load(_chunk(session_dir, 1)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    per_frame = {k for k, v in arrays.items() if v.ndim and len(v) == CHUNK}
    first_half = {k: (v[:5] if k in per_frame else v) for k, v in arrays.items()}
    np.savez_compressed(session_dir / "results" / "chunk_00001.partial.npz", **first_half)
    # killed between writing the complete chunk and removing the partial; then a bad sector
    corrupt_chunk(_chunk(session_dir, 1))
    reader = SessionReader(session_dir)
    assert reader.frame(14)[1].frame_id == 14
    (span,) = reader.damaged
    assert (span.first, span.last, span.chunks) == (15, 19, (1,))
    assert reader.warnings and "chunk_00001.partial.npz is read instead" in reader.warnings[0]


def test_review_info_and_exports_of_a_damaged_session(
    session_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt_chunk(_chunk(session_dir, 1))
    assert main(["review", str(session_dir), "--info"]) == 0
    out = capsys.readouterr().out
    assert "30 frames, 10 unreadable" in out
    assert "frames 10-19 (chunk 1) are unreadable: results/chunk_00001.npz is corrupt" in out

    snaps = tmp_path / "snaps"
    assert main(["review", str(session_dir), "--snapshot", "12", "--out", str(snaps)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "frame 12 cannot be exported: frames 10-19 (chunk 1) are unreadable" in err
    assert not snaps.exists()  # refused before anything was written
    assert main(["review", str(session_dir), "--snapshot", "3", "--out", str(snaps)]) == 0
    assert (snaps / "review-frame000003.png").exists()

    clip = tmp_path / "clip.mp4"
    assert main(["review", str(session_dir), "--export-clip", str(clip)]) == 0
    captured = capsys.readouterr()
    assert "10 unreadable frames left out of the clip (10-19)" in captured.err
    assert "wrote" in captured.out and "20 frames" in captured.out
    assert cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == 20

    before = clip.read_bytes()
    command = ["review", str(session_dir), "--export-clip", str(clip), "--start", "10"]
    assert main([*command, "--stop", "20"]) == 2  # nothing readable in the span
    err = capsys.readouterr().err
    assert "none of frames 10-19 can be read" in err and "Traceback" not in err
    assert clip.read_bytes() == before  # the earlier clip is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.mp4",
        "model.pt",
        "session",
        "snaps",
    ]


CLIP = ["--export-clip", "c.mp4"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([*CLIP, "--start", "20", "--stop", "5"], "--start (20) must be below --stop (5)"),
        ([*CLIP, "--start", "30"], "--start (30) must be below the frame count (30)"),
        ([*CLIP, "--stop", "31"], "--stop 31 is past the session's end (30 frames)"),
        (["--start", "3"], "--start: only for a clip; add --export-clip FILE"),
        (["--snapshot", "30"], "frame 30 is outside the session (30 frames)"),
    ],
)
def test_clip_spans_are_checked_before_any_work(
    session_dir: Path,
    tmp_path: Path,
    options: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["review", str(session_dir), *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "c.mp4").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", ["0", "-2", "nan", "inf", "5000"])
def test_an_unusable_clip_rate_is_refused_where_it_is_parsed(
    fps: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["review", "session", "--export-clip", "c.mp4", "--fps", fps])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fps: must be a finite number in (0, 1000]" in err


def test_export_clip_into_a_folder_writes_a_named_file_inside_it(
    session_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    command = ["review", str(session_dir), "--stop", "3", "--fps", "7.5", "--export-clip"]
    assert main([*command, str(folder)]) == 0
    written = folder / "session-clip.mp4"
    assert f"wrote {written}: 3 frames" in capsys.readouterr().out
    assert not (tmp_path / "clips.mp4").exists()
    capture = cv2.VideoCapture(str(written))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(7.5)
    capture.release()
    assert main([*command, f"{tmp_path / 'new'}{os.sep}"]) == 0  # a path ending in a separator
    assert (tmp_path / "new" / "session-clip.mp4").is_file()
    with pytest.raises(ValueError, match="frame rate"):
        export_clip(ReviewSession(session_dir), tmp_path / "x.mp4", fps=float("nan"))


@pytest.fixture
def no_frame_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The frames the review reads (the work an output check must come before)."""
    read: list[int] = []
    real = ReviewSession.frame

    def frame(self: ReviewSession, position: int) -> ReviewFrame:
        read.append(position)
        return real(self, position)

    monkeypatch.setattr(ReviewSession, "frame", frame)
    yield read


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (["--snapshot", "3", "--out", "{tmp}/a-file"], "a-file: is a file, not a folder"),
        (["--snapshot", "3", "--out", "{tmp}/a-file/x"], "a-file: is a file, not a folder"),
        (["--export-clip", "{tmp}/a-file/c.mp4"], "a-file: is a file, not a folder"),
        (["--snapshot", "3", "--out", "/proc/pcle-review"], "/proc: cannot create files there"),
        (["--export-clip", "/proc/pcle-review.mp4"], "/proc: cannot create files there"),
        (
            ["--export-clip", "{tmp}/c.mp4", "--snapshot", "1", "--out", "/proc/x"],
            "cannot write snapshots to /proc/x",  # the clip is not written either
        ),
    ],
)
def test_an_unwritable_output_is_refused_before_any_work(
    session_dir: Path,
    tmp_path: Path,
    output: list[str],
    message: str,
    no_frame_read: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a-file").write_bytes(b"keep me")
    before = _files(tmp_path)
    options = [option.format(tmp=tmp_path) for option in output]
    assert main(["review", str(session_dir), *options]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert no_frame_read == [] and _files(tmp_path) == before


@pytest.mark.parametrize("export", ["--snapshot", "--export-clip"])
def test_a_read_only_folder_is_refused_before_any_work(
    session_dir: Path,
    tmp_path: Path,
    export: str,
    no_frame_read: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "clip.mp4").write_bytes(b"an earlier clip")
    clip = ["--export-clip", str(locked / "clip.mp4")]
    target = ["--snapshot", "2", "--out", str(locked)] if export == "--snapshot" else clip
    with read_only(locked):
        assert main(["review", str(session_dir), *target]) == 3
    err = capsys.readouterr().err
    assert f"{locked}: cannot create files there" in err and err.count("\n") == 1
    assert no_frame_read == [] and [p.name for p in locked.iterdir()] == ["clip.mp4"]
    assert (locked / "clip.mp4").read_bytes() == b"an earlier clip"
