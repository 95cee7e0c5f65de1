"""SIGTERM, SIGINT and SIGHUP to a recording viewer close it as its close button does: the
session is finished (its manifest says it closed cleanly) and the exit status is 128 + the
signal's number. Runs the real viewer (``python -m app view --record``) offscreen in a child
process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.recording import SessionReader
from app.ui.options import DEMO_CHECKPOINT, DEMO_SOURCE

ROOT = Path(__file__).resolve().parents[1]
START_S = 240.0  # generous: the suite may share two cores with other work
EXIT_S = 120.0


def _recorded_rows(recordings: Path) -> int:
    tables = list(recordings.glob("*/frames.csv"))
    if not tables:
        return 0
    return max(0, len(tables[0].read_text().splitlines()) - 1)


CLOSING = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


@pytest.mark.slow
@pytest.mark.parametrize("signum", CLOSING, ids=lambda s: s.name)
def test_a_signal_closes_the_recording_viewer_cleanly(signum: int, tmp_path: Path) -> None:
    recordings = tmp_path / "sessions"
    command = [
        sys.executable,
        "-m",
        "app",
        "view",
        *("--source", str(DEMO_SOURCE), "--checkpoint", str(DEMO_CHECKPOINT)),
        *("--passes", "2", "--device", "cpu", "--mode", "analysis", "--record"),
        *("--recordings", str(recordings), "--settings", str(tmp_path / "viewer.ini")),
        *("--snapshots", str(tmp_path / "snapshots")),
    ]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    log = (tmp_path / "viewer.log").open("w")
    viewer = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_S
        while _recorded_rows(recordings) < 3:  # the recording's own table is the event
            assert viewer.poll() is None, (tmp_path / "viewer.log").read_text()
            assert time.monotonic() < deadline, "the viewer recorded nothing"
            time.sleep(0.2)
        viewer.send_signal(signum)
        code = viewer.wait(EXIT_S)
    finally:
        if viewer.poll() is None:
            viewer.kill()
            viewer.wait()
        log.close()
    output = (tmp_path / "viewer.log").read_text()
    assert code == 128 + signum, output
    assert "Traceback" not in output, output
    (folder,) = recordings.iterdir()
    session = SessionReader(folder)
    assert session.closed_cleanly, session.manifest
    assert len(session) >= 3 and session.manifest["frames"] == len(session)
