"""``python -m app process VIDEO``: explain every frame of a recording, headless, into a
three-panel video and a per-frame CSV; optionally record a reviewable session as well."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.argument_types import float_in, int_in
from app.commands.common import (
    DEFAULT_OUT,
    CommandError,
    OutputError,
    add_backend_option,
    add_explanation_options,
)
from app.interrupt import Interrupted, stop_on_signals

if TYPE_CHECKING:
    from app.pipeline import PipelineSettings

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``process`` subcommand to the CLI's subparsers."""
    process = sub.add_parser(
        "process", help="explain every frame of a recording: panel video and per-frame CSV"
    )
    process.add_argument("video", help="video file (mp4, avi, mpg, mkv, mov) or image folder")
    add_explanation_options(process, passes_help="MC Dropout passes T (1-64)")
    process.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_backend_option(process)
    process.add_argument("--seed", type=int, help="seed the dropout masks (reproducible)")
    process.add_argument("--max-frames", type=int_in(1), help="stop after this many frames")
    process.add_argument(
        "--panel-height",
        type=int_in(16, 2160),
        help="panel height in the video, 16 to 2160 px (default: model input)",
    )
    process.add_argument(
        "--window",
        type=float_in(0.0, 60.0, low_open=True),
        default=2.0,
        metavar="SECONDS",
        help="seconds at one site the video-level verdict pools (default 2; at most 60)",
    )
    process.add_argument("--quiet", action="store_true", help="no progress bar")
    process.add_argument("--out", default=str(DEFAULT_OUT / "process"), help="output folder")
    process.add_argument(
        "--record",
        metavar="SESSION",
        help="also record a reviewable session into this new folder (python -m app review)",
    )
    process.add_argument(
        "--include-paths",
        action="store_true",
        help="write the source's file path into the recorded session (default: its kind only)",
    )
    process.set_defaults(handler=_cmd_process)


def _pipeline_settings(args: argparse.Namespace, checkpoint: Path) -> PipelineSettings:
    from app.pipeline import PipelineSettings, SettingsError

    try:
        return PipelineSettings(
            checkpoint,
            method=args.method,
            passes=args.passes,
            mc=not args.original,
            target_class=args.target_class,
            device=args.device,
            backend=args.backend,
            seed=args.seed,
            window_s=args.window,
        )
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc


def _cmd_process(args: argparse.Namespace) -> int:
    from app.pipeline import SettingsError, SourceError
    from app.pipeline.headless import process

    if args.checkpoint is None:
        raise CommandError(
            "process needs a model: pass --checkpoint FILE, a checkpoint written by this project"
        )
    from app.private_files import check_writable_folder

    try:
        check_writable_folder(args.out)
    except OSError as exc:
        raise OutputError.cannot_write("the panel video and table", Path(args.out), exc) from exc
    settings = _pipeline_settings(args, Path(args.checkpoint))
    recorder = None
    if args.record:
        from app.recording import RecordingError, SessionRecorder

        try:
            recorder = SessionRecorder(
                args.record, settings=settings, source=args.video, include_paths=args.include_paths
            )
        except RecordingError as exc:
            raise CommandError(str(exc)) from exc
    try:
        with stop_on_signals() as stop:
            report = process(
                args.video,
                settings,
                Path(args.out),
                max_frames=args.max_frames,
                panel_height=args.panel_height,
                progress=not args.quiet,
                on_result=None if recorder is None else recorder.write,
                should_stop=stop.is_set,
            )
    except (SourceError, SettingsError, RuntimeError) as exc:
        if stop.signum is not None:  # stopped before the first frame: nothing to keep
            raise Interrupted(stop.signum) from exc
        raise CommandError(str(exc)) from exc
    except OSError as exc:  # a full disk: the previous outputs are as they were
        raise OutputError.cannot_write("the panel video and table", Path(args.out), exc) from exc
    finally:
        if recorder is not None:
            recorder.close_or_remove()  # a run that analysed nothing leaves no session behind
    for message in report.failed:
        print(f"warning: {message}", file=sys.stderr)
    if report.no_tissue:
        print(
            f"warning: {len(report.no_tissue)} of {report.frames} frames show no tissue (black "
            f"or no field of view; the first is frame {report.no_tissue[0]}): their class in "
            "the table is not a reading of tissue",
            file=sys.stderr,
        )
    print(
        f"{report.frames} frames in {report.seconds:.1f} s "
        f"({report.frames_per_second:.1f} frames/s); wrote {report.video} ({report.codec}) "
        f"and {report.table}"
    )
    if recorder is not None:
        if recorder.error:
            print(f"warning: {recorder.error}", file=sys.stderr)
        print(f"recorded {recorder.frames_saved} frames into {recorder.folder}")
    if stop.exit_status is not None:
        print(
            f"interrupted by {stop.signal_name}: stopped after {report.frames} frames, the "
            "outputs above hold them and are complete",
            file=sys.stderr,
        )
        return stop.exit_status
    return 0
