"""``python -m app bench-pipeline``: time the frame pipeline on a looped video (throughput,
live latency, resident memory); the engine alone is :mod:`app.commands.bench`."""

from __future__ import annotations

import argparse
import sys

from app.argument_types import float_in, int_in
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
    """Add the ``bench-pipeline`` subcommand to the CLI's subparsers."""
    bench_pipeline = sub.add_parser(
        "bench-pipeline", help="time the frame pipeline: throughput, live latency, memory"
    )
    bench_pipeline.add_argument("--source", required=True, help="video file (looped)")
    bench_pipeline.add_argument("--checkpoint", help="model checkpoint; default: random --arch")
    bench_pipeline.add_argument("--arch", default="resnet18", help="random model's architecture")
    bench_pipeline.add_argument(
        "--input-size", type=int_in(32, 1024), default=224, help="random model's input"
    )
    bench_pipeline.add_argument("--mode", default="analysis", choices=["analysis", "live"])
    bench_pipeline.add_argument("--method", default="gradcam++", choices=list(METHODS))
    bench_pipeline.add_argument("--passes", type=int, default=10)
    bench_pipeline.add_argument(
        "--frames",
        type=int_in(1),
        default=300,
        help="frames to measure: results (analysis) or frames read (live)",
    )
    bench_pipeline.add_argument("--warmup", type=int_in(0), default=10, help="results not measured")
    bench_pipeline.add_argument("--device", default="cpu")
    add_backend_option(bench_pipeline)
    bench_pipeline.add_argument(
        "--speed", type=float_in(0.0, 64.0, low_open=True), default=1.0, help="live playback speed"
    )
    bench_pipeline.add_argument("--threads", type=int_in(1), help="torch intra-op threads")
    bench_pipeline.add_argument(
        "--rss-every", type=int_in(1), default=500, help="sample resident memory every N frames"
    )
    add_json_option(bench_pipeline)
    bench_pipeline.set_defaults(handler=_cmd_bench_pipeline)


def _cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from app.benchmarks.pipeline import benchmark_pipeline, format_report
    from app.pipeline import SettingsError, SourceError

    report_file = check_json_report(args.json)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        report = benchmark_pipeline(
            args.source,
            checkpoint=args.checkpoint,
            arch=args.arch,
            input_size=args.input_size,
            mode=args.mode,
            method=args.method,
            passes=args.passes,
            frames=args.frames,
            warmup=args.warmup,
            device=args.device,
            backend=args.backend,
            speed=args.speed,
            rss_every=args.rss_every,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except (SourceError, SettingsError) as exc:
        raise CommandError(str(exc)) from exc
    print(format_report(report))
    write_json_report(report, report_file)
    return 0
