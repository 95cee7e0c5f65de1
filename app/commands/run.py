"""``python -m app run`` (what ``make run`` does): the main job on the shipped phantom demo.

With a display it opens the viewer on the demo video and demo model (the ``view`` command's
handler, :func:`app.commands.view.open_viewer`). Without one it processes every frame of the
demo headless (three-panel video, per-frame CSV and a recorded session) and says where the
output went.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.common import DEFAULT_OUT, CommandError

__all__ = ["add_parser", "run_demo"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``run`` subcommand to the CLI's subparsers."""
    run = sub.add_parser("run", help="the main job on the shipped demo (what `make run` does)")
    run.add_argument("--out", default=str(DEFAULT_OUT / "demo"), help="output folder (headless)")
    run.add_argument(
        "--headless",
        action="store_true",
        help="process the demo to files even when a display is available",
    )
    run.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    return run_demo(Path(args.out), headless=True if args.headless else None)


def run_demo(out: Path, headless: bool | None = None) -> int:
    """Open the viewer on the demo, or process the demo headless when there is no display."""
    from app.assets import demo_assets
    from app.ui.display import display_available

    try:
        video, model = demo_assets()
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    if headless is None:
        headless = not display_available()
    if headless:
        return _process_demo(video, model, out)
    return _view_demo(video, model)


def _view_demo(video: Path, model: Path) -> int:
    """``python -m app view --source VIDEO --checkpoint MODEL``, every other option as its
    default."""
    from app.commands.view import add_view_arguments, open_viewer

    view = argparse.ArgumentParser(prog="python -m app view")
    add_view_arguments(view)
    return open_viewer(view.parse_args(["--source", str(video), "--checkpoint", str(model)]))


def _process_demo(video: Path, model: Path, out: Path) -> int:
    """Process, record and report the demo without a display."""
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
