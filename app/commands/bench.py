"""``python -m app bench``: time the explanation engine (forward, original, proposed, loop)
on a random model; the frame pipeline around it is :mod:`app.commands.bench_pipeline`."""

from __future__ import annotations

import argparse
import sys

from app.commands.common import CommandError, add_json_option, check_json_report, write_json_report
from app.explain import METHODS

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``bench`` subcommand to the CLI's subparsers."""
    bench = sub.add_parser("bench", help="time the engine: forward, original, proposed, loop")
    bench.add_argument("--arch", default="resnet18")
    bench.add_argument(
        "--methods",
        default="gradcam++,reciprocam",
        help=f"comma-separated, from: {', '.join(METHODS)}",
    )
    bench.add_argument("--passes", type=int, default=10)
    bench.add_argument("--device", default="cpu")
    bench.add_argument(
        "--backends",
        "--backend",
        default="torch",
        help="comma-separated backends to time the proposed method on, side by side "
        "(torch, onnxruntime, openvino, auto)",
    )
    bench.add_argument("--input-size", type=int, default=224)
    bench.add_argument(
        "--trunk-dropout",
        type=float,
        default=0.0,
        help="also a Dropout2d on the target layer's input (models.train --trunk-dropout)",
    )
    bench.add_argument("--repeats", type=int, default=7, help="timed runs per measurement")
    bench.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds per measurement before stopping early (at least one run)",
    )
    add_json_option(bench)
    bench.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from app.benchmarks.engine import benchmark_engine, format_table
    from app.explain.runtimes import BACKENDS

    report_file = check_json_report(args.json)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CommandError(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise CommandError(f"unknown backend(s) {unknown}; available: {', '.join(BACKENDS)}")
    report = benchmark_engine(
        args.arch,
        methods,
        args.passes,
        args.device,
        args.input_size,
        trunk_dropout=args.trunk_dropout,
        repeats=args.repeats,
        budget_s=args.budget,
        progress=lambda line: print(line, file=sys.stderr),
        backends=backends,
    )
    print(format_table(report))
    write_json_report(report, report_file)
    return 0
