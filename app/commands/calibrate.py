"""``python -m app calibrate --data ROOT --checkpoint CKPT``: fit temperatures, an abstention
threshold and conformal prediction sets on recordings the model did not train on, and store
them in the checkpoint's metadata (:mod:`app.calibration.fitting`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.argument_types import float_in, int_in
from app.commands.common import CommandError, OutputError

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``calibrate`` subcommand to the CLI's subparsers."""
    calibrate = sub.add_parser(
        "calibrate",
        help="fit calibrated probabilities, an UNCERTAIN threshold and prediction sets on "
        "held-out recordings, into the checkpoint",
    )
    calibrate.add_argument("--data", required=True, help="data set root: ROOT/<class>/<videos>")
    calibrate.add_argument("--checkpoint", required=True, help="checkpoint to calibrate (.pt)")
    calibrate.add_argument(
        "--recordings",
        help="comma-separated 'class/name' recordings to fit on (default: the checkpoint's "
        "validation recordings; training recordings are refused)",
    )
    calibrate.add_argument(
        "--target-error",
        type=float_in(0.0, 1.0, low_open=True, high_open=True),
        default=0.01,
        help="highest error among accepted frames (default 0.01)",
    )
    calibrate.add_argument(
        "--delta",
        type=float_in(0.0, 1.0, low_open=True, high_open=True),
        default=0.05,
        help="probability that the error bound fails (default 0.05: 95 %% confidence)",
    )
    calibrate.add_argument(
        "--coverage",
        type=float_in(0.0, 1.0, low_open=True, high_open=True),
        default=0.95,
        help="coverage of the prediction sets (default 0.95)",
    )
    calibrate.add_argument("--passes", type=int_in(2, 64), default=10, help="MC Dropout T")
    calibrate.add_argument("--every-k", type=int_in(1), default=1, help="every k-th frame")
    calibrate.add_argument("--max-frames", type=int_in(1), help="at most this many frames")
    calibrate.add_argument("--seed", type=int_in(0), default=0, help="seeds the Dropout masks")
    calibrate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    calibrate.add_argument(
        "--dry-run", action="store_true", help="fit and report, but leave the checkpoint as it is"
    )
    calibrate.set_defaults(handler=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from app.calibration.fitting import (
        CalibrationSettings,
        FitError,
        calibrate_checkpoint,
        describe_fit,
    )
    from app.private_files import check_writable_folder
    from models.checkpoint import CheckpointError

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CommandError(f"no such checkpoint: {checkpoint}")
    if not args.dry_run:
        try:
            check_writable_folder(checkpoint.parent)
        except OSError as exc:
            raise OutputError.cannot_write("the calibrated checkpoint", checkpoint, exc) from exc
    recordings = [r.strip() for r in args.recordings.split(",")] if args.recordings else None
    settings = CalibrationSettings(
        target_error=args.target_error,
        delta=args.delta,
        coverage=args.coverage,
        passes=args.passes,
        every_k=args.every_k,
        max_frames=args.max_frames,
        seed=args.seed,
        recordings=recordings,
    )
    try:
        calibration = calibrate_checkpoint(
            args.data, checkpoint, settings, args.device, write=not args.dry_run
        )
    except (FitError, CheckpointError) as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise OutputError.cannot_write("the calibrated checkpoint", checkpoint, exc) from exc
    print(describe_fit(calibration))
    if args.dry_run:
        print("dry run: the checkpoint is unchanged")
    else:
        print(f"wrote the calibration into {checkpoint}")
    return 0
