"""``python -m app soak``: an endurance run of the real viewer (offscreen works): playback of a
looping video for N minutes, then source switches and settings changes, with resident memory,
threads, open files and capture-to-display latency per period (:mod:`app.ui.soak`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.commands.common import (
    CommandError,
    add_backend_option,
    add_json_option,
    check_json_report,
    write_json_report,
)
from app.explain import METHODS

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``soak`` subcommand to the CLI's subparsers."""
    soak = sub.add_parser(
        "soak", help="endurance run of the viewer: memory, threads, files, latency over time"
    )
    soak.add_argument("--source", help="video file, played in a loop (default: the demo video)")
    soak.add_argument("--checkpoint", help="model checkpoint (default: the demo model)")
    soak.add_argument("--method", default="gradcam++", choices=list(METHODS))
    soak.add_argument("--passes", type=int, default=10)
    soak.add_argument("--device", default="cpu")
    add_backend_option(soak)
    soak.add_argument("--minutes", type=float, default=30.0, help="playback to measure")
    soak.add_argument("--sample-s", type=float, default=60.0, help="length of a sample period")
    soak.add_argument("--switches", type=int, default=200, help="source switches afterwards")
    soak.add_argument("--changes", type=int, default=500, help="settings changes afterwards")
    add_json_option(soak)
    soak.set_defaults(handler=_cmd_soak)


def _cmd_soak(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.assets import DEMO_CHECKPOINT, DEMO_SOURCE
    from app.pipeline import Mode, PipelineSettings, SettingsError
    from app.ui.options import ViewerOptions
    from app.ui.soak import SoakSample, soak

    report_file = check_json_report(args.json)
    source = Path(args.source) if args.source else DEMO_SOURCE
    checkpoint = Path(args.checkpoint) if args.checkpoint else DEMO_CHECKPOINT
    for path in (source, checkpoint):
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
    try:
        settings = PipelineSettings(
            checkpoint,
            method=args.method,
            passes=args.passes,
            device=args.device,
            backend=args.backend,
            seed=0,
        )
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc
    options = ViewerOptions(source=str(source), settings=settings, mode=Mode.LIVE, loop=True)

    print(SoakSample.HEADER, file=sys.stderr)

    def progress(sample: SoakSample) -> None:
        print(sample.row(), file=sys.stderr, flush=True)

    try:
        report = soak(
            options,
            minutes=args.minutes,
            sample_s=args.sample_s,
            switches=args.switches,
            changes=args.changes,
            progress=progress,
        )
    except TimeoutError as exc:
        raise CommandError(str(exc)) from exc
    print(report.format())
    write_json_report(report.to_dict(), report_file)
    return 0
