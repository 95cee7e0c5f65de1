"""``python -m app evaluate``: original vs proposed on held-out videos (Poppi et al.'s
metrics, the ADCC-vs-T study, example figures) and the trust report (calibration, abstention,
uncertainty signals); runs under torchrun too."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.argument_types import int_in
from app.commands.common import DEFAULT_OUT, CommandError, OutputError, add_backend_option
from app.explain import METHODS

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``evaluate`` subcommand to the CLI's subparsers."""
    evaluate = sub.add_parser(
        "evaluate",
        help="original vs proposed: Poppi et al.'s metrics on held-out videos, T study, figures, "
        "trust report",
    )
    evaluate.add_argument("--data", required=True, help="data set root (one folder per class)")
    evaluate.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    evaluate.add_argument(
        "--methods",
        default="gradcam,gradcam++,reciprocam",
        help=f"comma-separated, from: {', '.join(METHODS)}",
    )
    evaluate.add_argument(
        "--passes", type=int_in(1), default=10, help="MC Dropout passes T (proposed)"
    )
    evaluate.add_argument("--every-k", type=int_in(1), default=10, help="keep every k-th frame")
    evaluate.add_argument("--max-frames", type=int_in(1), help="score at most this many frames")
    evaluate.add_argument(
        "--t-study",
        default=",".join(str(t) for t in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 40, 80, 100)),
        help="T values of the ADCC-vs-T study (empty: no study)",
    )
    evaluate.add_argument(
        "--t-study-frames",
        type=int_in(1),
        default=50,
        help="frames of the T study (the first ones)",
    )
    evaluate.add_argument(
        "--t-study-methods",
        type=int_in(0),
        default=1,
        help="how many of --methods the T study covers (0: no study)",
    )
    evaluate.add_argument("--seed", type=int_in(0), default=0, help="seed of the dropout masks")
    evaluate.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:N; under torchrun each process takes cuda:LOCAL_RANK",
    )
    add_backend_option(evaluate)
    evaluate.add_argument(
        "--batch-size",
        type=int_in(1),
        default=8,
        help="frames per explainer call (1: viewer latency)",
    )
    evaluate.add_argument("--figures", type=int_in(0), default=4, help="example figures per method")
    evaluate.add_argument(
        "--trust-window",
        type=int_in(1),
        default=5,
        help="trust report: sliding window of a signal, in evaluated frames of a recording",
    )
    evaluate.add_argument(
        "--bootstrap",
        type=int_in(1),
        default=1000,
        help="trust report: bootstrap resamples of the recordings for the intervals",
    )
    evaluate.add_argument(
        "--no-trust",
        action="store_true",
        help="skip the trust report (trust.md: calibration, abstention, uncertainty signals)",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument("--out", default=str(DEFAULT_OUT / "evaluate"), help="output folder")
    evaluate.set_defaults(handler=_cmd_evaluate)


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CommandError(f"{option} takes comma-separated integers, got {text!r}") from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from app.evaluate.runner import EvaluationConfig, EvaluationError, run_evaluation
    from app.private_files import check_writable_folder

    try:  # before the model is loaded and hours of scoring, not after
        check_writable_folder(args.out)
    except OSError as exc:
        raise OutputError.cannot_write("the evaluation", Path(args.out), exc) from exc

    config = EvaluationConfig(
        data=Path(args.data),
        checkpoint=Path(args.checkpoint),
        out=Path(args.out),
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        passes=args.passes,
        every_k=args.every_k,
        max_frames=args.max_frames,
        t_values=_int_list(args.t_study, "--t-study"),
        t_study_frames=args.t_study_frames,
        t_study_methods=args.t_study_methods,
        seed=args.seed,
        device=args.device,
        backend=args.backend,
        batch_size=args.batch_size,
        figures=args.figures,
        progress=not args.quiet,
        trust=not args.no_trust,
        trust_window=args.trust_window,
        bootstrap=args.bootstrap,
    )
    try:
        report = run_evaluation(config)
    except EvaluationError as exc:
        raise CommandError(str(exc)) from exc
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print((Path(args.out) / "table.md").read_text())
    if report.get("trust") is not None:
        print(
            f"trust report (calibration, abstention, uncertainty signals): {report['trust']}, "
            "with reliability.png and risk_coverage.png"
        )
    print(
        f"scored {report['scored']} images, reused {report['reused']} from scores.jsonl; "
        f"wrote {args.out}/"
    )
    return 0
