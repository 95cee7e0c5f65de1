"""Files the product writes. Patient video is private by default: every folder the project
creates for sessions, snapshots, exports and command outputs is 0700 and every file in them
0600, whatever the umask; a folder the user already had keeps its mode. And every file is
replaced whole or not at all (the one atomic writer)."""

from __future__ import annotations

import errno
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pytest

from app.cli import main
from app.interrupt import Interrupted, raise_on_signals
from app.pipeline import PipelineSettings
from app.pipeline.headless import process
from app.private_files import (
    atomic_write,
    make_private_dirs,
    open_private,
    write_atomic,
    write_files_atomic,
)
from app.recording import SessionRecorder
from app.review.bookmarks import BookmarkStore
from app.review.export import export_clip, export_snapshot
from app.review.session import ReviewSession
from app.ui.snapshot import save_snapshot
from models.data.phantom import render_frame
from tests.pipeline_support import phantom_video, tiny_checkpoint


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of every folder and file below ``root`` (``root`` itself included)."""
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        modes[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return modes


def _assert_private(root: Path) -> None:
    modes = _modes(root)
    assert len(modes) > 1, f"nothing was written under {root}"
    for name, mode in modes.items():
        wanted = 0o700 if (root / name).is_dir() else 0o600
        assert mode == wanted, f"{name}: {oct(mode)}, wanted {oct(wanted)}"


def test_sessions_exports_and_outputs_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # the most permissive umask: nothing may depend on it
    try:
        _write_everything(tmp_path)
    finally:
        os.umask(previous)
    for made in ("sessions", "processed", "exports", "explained", "snapshots"):
        _assert_private(tmp_path / "shared" / made)
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755  # the user's, left alone


def _write_everything(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # a folder the user already had, e.g. their desktop
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    video = phantom_video(tmp_path / "clip.avi", frames=3)
    settings = PipelineSettings(checkpoint, method="gradcam++", passes=2, seed=0)

    session = shared / "sessions" / "session-1"
    with SessionRecorder(session, settings=settings, source=video) as recorder:

        def on_result(result: object) -> None:
            recorder.write(result)
            recorder.record_display(result, result.result_time)  # type: ignore[attr-defined]

        process(video, settings, shared / "processed", progress=False, on_result=on_result)
    assert (session / "display.csv").exists() and recorder.displays_written == 3
    BookmarkStore(session).add(1, "bookmarked")
    review = ReviewSession(session)
    export_clip(review, shared / "exports" / "clip.mp4")
    export_snapshot(review, 2, shared / "exports" / "snaps")
    frame = shared / "frame.png"
    cv2.imwrite(str(frame), render_frame("meningioma", seed=1).image)
    explain = ["explain", str(frame), "--checkpoint", str(checkpoint), "--passes", "2"]
    assert main([*explain, "--device", "cpu", "--out", str(shared / "explained")]) == 0

    from PySide6.QtGui import QImage

    picture = QImage(8, 8, QImage.Format.Format_RGB888)
    picture.fill(0)
    save_snapshot(shared / "snapshots" / "today", picture, {"frame_id": 3})


def test_files_written_into_an_existing_folder_are_private(umask: int, tmp_path: Path) -> None:
    with open_private(tmp_path / "a.csv", "w") as fh:
        fh.write("x\n")
    existing = tmp_path / "b.csv"
    existing.write_text("y\n")
    os.chmod(existing, 0o644)
    with open_private(existing, "a") as fh:  # appending makes an existing file private too
        fh.write("z\n")
    assert existing.read_text() == "y\nz\n"
    for name in ("a.csv", "b.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_a_private_folder_cannot_be_made_over_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_bytes(b"")
    with pytest.raises(OSError, match="taken"):
        make_private_dirs(tmp_path / "taken")
    with pytest.raises(OSError):
        make_private_dirs(tmp_path / "taken" / "below")
    assert np.array_equal(list(tmp_path.iterdir()), [tmp_path / "taken"])


# --------------------------------------------------------------------- the atomic writer


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "payload", [b"new\n", lambda fh: fh.write(b"new\n")], ids=["bytes", "writer"]
)
def test_write_atomic_replaces_the_file_whole_and_private(
    umask: int, tmp_path: Path, payload: object
) -> None:
    target = tmp_path / "notes.json"
    target.write_bytes(b"old\n")
    os.chmod(target, 0o644)
    write_atomic(target, payload)  # type: ignore[arg-type]
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a new file, not the old one reused
    assert _left_in(tmp_path) == ["notes.json"]


@pytest.mark.parametrize("sync", [True, False])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(
    tmp_path: Path, sync: bool
) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    seen: list[str] = []

    def fails_halfway(fh: object) -> None:
        fh.write(b"half a file")  # type: ignore[attr-defined]
        seen.extend(_left_in(tmp_path))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, fails_halfway, sync=sync)
    temporary = [name for name in seen if name != "model.pt"]
    assert len(temporary) == 1 and temporary[0].startswith(".model.pt.")
    assert temporary[0].endswith(".tmp")  # the data went next to the target, then was removed
    assert target.read_bytes() == b"old"
    assert _left_in(tmp_path) == ["model.pt"]


def test_a_failed_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")

    def denied(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(PermissionError):
        write_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and _left_in(tmp_path) == ["manifest.json"]


def test_atomic_write_serves_writers_that_want_a_file_and_may_keep_the_umask(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "cache.npz", private=False) as fh:
            np.savez(fh, frames=np.arange(3))
    finally:
        os.umask(previous)
    with np.load(tmp_path / "cache.npz") as data:
        assert data["frames"].tolist() == [0, 1, 2]
    assert stat.S_IMODE((tmp_path / "cache.npz").stat().st_mode) == 0o644  # a shareable file


def test_nothing_is_at_the_target_until_the_block_ends(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "a.bin") as fh:
        assert Path(fh.name).parent == tmp_path and Path(fh.name).name != "a.bin"
        fh.write(b"x")
        assert not (tmp_path / "a.bin").exists()  # nothing at the target until the block ends
    assert (tmp_path / "a.bin").read_bytes() == b"x"


def test_a_signal_while_a_set_of_files_is_written_waits_for_the_whole_set(
    tmp_path: Path,
) -> None:
    for name in ("a.png", "b.npz", "c.json"):
        (tmp_path / name).write_bytes(b"old")

    def signal_mid_write(fh: BinaryIO) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while b.npz is being written
        fh.write(b"new")

    payloads = {"a.png": b"new", "b.npz": signal_mid_write, "c.json": b"new"}
    with pytest.raises(Interrupted) as raised, raise_on_signals():
        write_files_atomic(tmp_path, payloads)
    assert raised.value.signum == signal.SIGTERM
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == dict.fromkeys(payloads, b"new")


def test_a_failure_while_a_set_of_files_is_written_replaces_none_of_them(tmp_path: Path) -> None:
    for name in ("a.png", "b.npz"):
        (tmp_path / name).write_bytes(b"old")

    def full_disk(_fh: BinaryIO) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left"):
        write_files_atomic(tmp_path, {"a.png": b"new", "b.npz": full_disk})
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert kept == {"a.png": b"old", "b.npz": b"old"}
