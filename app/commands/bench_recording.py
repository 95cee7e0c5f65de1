"""``python -m app bench-recording``: what recording a session costs on a looped video (write
time per frame, disk per minute, what a kill could lose, the analysis rate with and without
recording); :mod:`app.benchmarks.recording` measures."""

from __future__ import annotations

import argparse
import json

from app.commands.common import CommandError, add_json_option, check_json_report, write_json_report
from app.explain import METHODS

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``bench-recording`` subcommand to the CLI's subparsers."""
    bench_recording = sub.add_parser(
        "bench-recording", help="time recording: write time, disk per minute, what a kill loses"
    )
    bench_recording.add_argument("--source", required=True, help="video file (looped)")
    bench_recording.add_argument("--checkpoint", required=True, help="model checkpoint")
    bench_recording.add_argument("--frames", type=int, default=200)
    bench_recording.add_argument("--method", default="gradcam++", choices=list(METHODS))
    bench_recording.add_argument("--passes", type=int, default=10)
    add_json_option(bench_recording)
    bench_recording.set_defaults(handler=_cmd_bench_recording)


def _cmd_bench_recording(args: argparse.Namespace) -> int:
    from app.benchmarks.recording import benchmark_recording
    from app.pipeline import SettingsError, SourceError

    report_file = check_json_report(args.json)

    try:
        report = benchmark_recording(
            args.source, args.checkpoint, frames=args.frames, method=args.method, passes=args.passes
        )
    except (SourceError, SettingsError) as exc:
        raise CommandError(str(exc)) from exc
    print(json.dumps(report, indent=2))
    write_json_report(report, report_file)
    return 0
