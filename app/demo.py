"""``make run``: the main job on the embedded default, the shipped phantom demo.

With a display it opens the viewer on the demo video and demo model. Without one it
processes every frame of the demo headless (three-panel video and per-frame CSV) and says
where the output went.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def display_available() -> bool:
    """Whether the viewer can open a window here.

    Needs an X11 or Wayland display (and not Qt's offscreen platform), and Qt must be able to
    connect to it: a missing platform library makes Qt abort the process rather than raise, so
    that is probed in a child process first.
    """
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication([])"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def demo_assets() -> tuple[Path, Path]:
    """The demo video and model; a clear error when either is missing."""
    from app.cli import CommandError
    from models.demo import DEMO_MODEL, DEMO_VIDEO

    video, model = ASSETS / DEMO_VIDEO, ASSETS / DEMO_MODEL
    for path in (video, model):
        if not path.exists():
            raise CommandError(
                f"the demo asset {path} is missing; rebuild it with "
                "`python -m models.demo --out assets`"
            )
    return video, model


def run_demo(out: Path, headless: bool | None = None) -> int:
    """Open the viewer on the demo, or process the demo headless when there is no display."""
    from app.cli import CommandError, main

    video, model = demo_assets()
    if headless is None:
        headless = not display_available()
    if not headless:
        return main(["view", "--source", str(video), "--checkpoint", str(model)])

    import shutil

    from app.pipeline import PipelineSettings, SettingsError, SourceError
    from app.pipeline.headless import process
    from app.recording import RecordingError, SessionRecorder
    from models.checkpoint import read_metadata

    print(f"no usable display: processing the demo headless ({read_metadata(model).intended_use})")
    settings = PipelineSettings(model, method="gradcam++", passes=10, seed=0)
    session = out / "session"
    shutil.rmtree(session, ignore_errors=True)  # the previous demo's session, ours to replace
    try:
        with SessionRecorder(session, settings=settings, source=video) as recorder:
            report = process(video, settings, out, on_result=recorder.write)
    except (SourceError, SettingsError, RuntimeError, RecordingError) as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"  {report.frames} frames of {video.name}, Grad-CAM++ with T = 10 MC Dropout passes, "
        f"{report.frames_per_second:.1f} frames/s"
    )
    print(f"  three-panel video (raw | enhanced map | risk map): {report.video.resolve()}")
    print(
        f"  per-frame results (class, probabilities, entropy, latency, mean CV): "
        f"{report.table.resolve()}"
    )
    print(
        f"  recorded session, reviewable without the model: {session.resolve()}\n"
        f"    (python -m app review {session} --info, or open it on a machine with a display)"
    )
    return 0
