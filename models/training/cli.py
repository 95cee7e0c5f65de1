"""The training command line: ``python -m models.train`` (also ``python -m app train``).

::

    python -m models.train --data ROOT --arch resnet18 --out model.pt
    torchrun --nproc_per_node 4 -m models.train --data ROOT --arch resnet50 --out model.pt
    python -m models.train --data ROOT --arch resnet18 --out cv.pt --folds 5

ROOT holds one folder per class (see :mod:`models.data.index`). Without ``--folds`` one model
is trained on a split by recording (:func:`models.training.loop.train`); with ``--folds K``,
K-fold cross-validation writes a report (:mod:`models.training.cross_validation`). The options
fill a :class:`models.training.config.TrainConfig`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.argument_types import float_in, int_in
from app.commands.common import EXIT_BAD_INPUT, EXIT_OUTPUT_FAILED, CommandError, OutputError
from app.interrupt import Interrupted, exit_status
from app.private_files import check_writable_folder
from models.architectures import resolve_arch
from models.checkpoint import CheckpointError
from models.data.augment import AugmentConfig
from models.data.index import DatasetError
from models.training.config import (
    DEFAULT_INTENDED_USE,
    TrainConfig,
    TrainingError,
    TrainingOutputError,
    resume_file_path,
)
from models.training.cross_validation import cross_validate
from models.training.distributed import DistributedContext, init_distributed
from models.training.loop import train
from models.training.resume import ResumeError
from models.training.summary import format_summary

__all__ = ["build_parser", "config_from_args", "main"]


_positive_int = int_in(1)
_non_negative_int = int_in(0)
_fraction = float_in(0.0, 1.0, high_open=True)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m models.train``."""
    p = argparse.ArgumentParser(
        prog="python -m models.train",
        description=(
            "Train a pCLE frame classifier (from scratch, Dropout before the classifier) on "
            "ROOT/<class>/<videos or patient folders>, split by video, never by frame. "
            "Runs unchanged under torchrun for several processes or machines."
        ),
    )
    p.add_argument("--data", type=Path, required=True, metavar="ROOT", help="data set root")
    p.add_argument("--out", type=Path, required=True, metavar="CKPT", help="best checkpoint")
    p.add_argument("--arch", default="resnet18", help="resnet18 | mobilenet_v2 | resnet50")
    p.add_argument("--epochs", type=_positive_int, default=30, help="default 30")
    p.add_argument(
        "--input-size", type=int_in(32, 1024), default=224, help="square side in px (default 224)"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=256,
        help="total over all processes (default 256; on CUDA halved until it fits)",
    )
    p.add_argument(
        "--every-k", type=_positive_int, default=1, help="keep every k-th frame (default 1)"
    )
    p.add_argument(
        "--dedup",
        type=_fraction,
        default=0.005,
        help="drop frames this close to the last kept one (mean abs. grey difference of "
        "32x32 thumbnails; default 0.005; 0 keeps all)",
    )
    held_out = p.add_mutually_exclusive_group()
    held_out.add_argument(
        "--val-fraction",
        type=_fraction,
        default=None,
        help="share of each class's recordings held out for validation (default 0.2; 0: none)",
    )
    held_out.add_argument("--val-videos", type=_positive_int, help="recordings held out per class")
    held_out.add_argument(
        "--folds", type=int, help="K-fold cross-validation by recording; writes --report"
    )
    p.add_argument("--report", type=Path, help="cross-validation report (default CKPT.folds.json)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="split, init, shuffle")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="threads decoding recordings (frames are served from memory)",
    )
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        help="stop after this many optimizer steps in all; the epoch in progress is then "
        "validated and saved (smoke runs)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="FILE",
        help="continue from the last finished epoch (default file: CKPT.resume.pt)",
    )
    p.add_argument("--dropout", type=_fraction, default=0.2, help="before the classifier (0.2)")
    p.add_argument(
        "--trunk-dropout",
        type=_fraction,
        default=0.0,
        help="Dropout2d on the target layer's input, so MC passes vary its maps (default 0: none)",
    )
    recipe = p.add_argument_group(
        "recipe",
        "defaults by architecture: resnet18, mobilenet_v2: AdamW lr 1e-3, weight decay 0.01; "
        "resnet50: SGD lr 0.1, momentum 0.9, weight decay 1e-4, lr x0.1 every 30 epochs",
    )
    recipe.add_argument("--optimizer", choices=("adamw", "sgd"))
    recipe.add_argument("--lr", type=float_in(0.0, low_open=True))
    recipe.add_argument("--weight-decay", type=float_in(0.0))
    recipe.add_argument("--momentum", type=_fraction, help="SGD only")
    recipe.add_argument(
        "--lr-step", type=_non_negative_int, help="epochs between rate drops (0: constant)"
    )
    recipe.add_argument(
        "--lr-gamma", type=float_in(0.0, 1.0, low_open=True), help="factor of each rate drop"
    )
    p.add_argument(
        "--normalization",
        choices=("dataset", "imagenet"),
        default="dataset",
        help="mean/std stored in the checkpoint: the training frames' grey statistics "
        "(default) or ImageNet's",
    )
    p.add_argument("--no-augment", action="store_true", help="no rotation, flips or jitter")
    p.add_argument(
        "--brightness", type=_fraction, default=0.4, help="brightness jitter (default 0.4)"
    )
    p.add_argument("--contrast", type=_fraction, default=0.3, help="contrast jitter (default 0.3)")
    p.add_argument(
        "--intended-use",
        default=DEFAULT_INTENDED_USE,
        help=f"shown by the viewer (default: {DEFAULT_INTENDED_USE!r})",
    )
    p.add_argument("--cache-dir", type=Path, help="keep decoded frames here between runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="do not calibrate the checkpoint on the validation recordings at the end",
    )
    # Testing aid: every process writes a hash of its final weights into this folder.
    p.add_argument("--weights-digest", type=Path, help=argparse.SUPPRESS)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed command-line arguments."""
    resume = None
    if args.resume is not None:
        resume = resume_file_path(args.out) if args.resume == "auto" else Path(args.resume)
    return TrainConfig(
        data=args.data,
        out=args.out,
        arch=args.arch,
        epochs=args.epochs,
        input_size=args.input_size,
        batch_size=args.batch_size,
        every_k=args.every_k,
        dedup_threshold=args.dedup,
        val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
        val_videos=args.val_videos,
        seed=args.seed,
        device=args.device,
        workers=max(0, args.workers),
        max_steps=args.max_steps,
        resume=resume,
        dropout=args.dropout,
        trunk_dropout=args.trunk_dropout,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        lr_step=args.lr_step,
        lr_gamma=args.lr_gamma,
        normalization=args.normalization,
        augment=None
        if args.no_augment
        else AugmentConfig(brightness=args.brightness, contrast=args.contrast),
        intended_use=args.intended_use,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        weights_digest=args.weights_digest,
    )


def _check_destination(option: str, path: Path, what: str) -> None:
    """Refuse an output file that could not be written, before any training: a folder where
    the file should go (:class:`CommandError`, bad input) or a folder that refuses new files
    (:class:`OutputError`)."""
    if path.is_dir():
        raise CommandError(
            f"{option} {path} is a folder; give the file to write, e.g. {path / 'model.pt'}"
        )
    try:
        check_writable_folder(path.parent)
    except OSError as exc:
        raise OutputError.cannot_write(what, path, exc) from None


def _check_destinations(paths: dict[str, tuple[Path, str]], ctx: DistributedContext) -> None:
    """:func:`_check_destination` for each ``option: (path, what)`` on rank 0 (the one that
    writes), its verdict shared so that every process stops together."""
    failure: CommandError | None = None
    if ctx.is_main:
        try:
            for option, (path, what) in paths.items():
                _check_destination(option, path, what)
        except CommandError as exc:
            failure = exc
    failure = ctx.broadcast_object(failure)
    if failure is not None:
        raise failure


def _calibrate(config: TrainConfig, summary: dict[str, Any], device: str) -> None:
    """Calibrate the saved checkpoint on the validation recordings it held out (``python -m
    app calibrate`` with its defaults); a model trained without any is left uncalibrated,
    and a calibration that cannot be fitted is reported, not fatal."""
    from app.calibration.fitting import (
        CalibrationSettings,
        FitError,
        calibrate_checkpoint,
        describe_fit,
    )

    if not summary.get("val_recordings"):
        print("not calibrated: no validation recordings were held out")
        return
    settings = CalibrationSettings(every_k=config.every_k, seed=config.seed)
    try:
        calibration = calibrate_checkpoint(config.data, config.out, settings, device)
    except (FitError, CheckpointError, OSError) as exc:
        print(f"warning: not calibrated: {exc}", file=sys.stderr)
        return
    print(describe_fit(calibration))
    print(f"calibration stored in {config.out} (python -m app calibrate refits it)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 done, 2 bad input (options, data,
    resume file), 3 an output cannot be written (checked before training, and on each save),
    130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        arch = resolve_arch(args.arch)
    except ValueError as exc:
        parser.error(str(exc))
    if args.folds is not None and args.folds < 2:
        parser.error("--folds needs at least 2")
    config = replace(config_from_args(args), arch=arch)
    try:
        ctx = init_distributed(config.device)
    except ValueError as exc:
        parser.error(str(exc))
    report = args.report or config.out.with_suffix(".folds.json")
    destinations = {"--out": (config.out, "the checkpoint")}
    if args.folds is not None:
        destinations["--report"] = (report, "the cross-validation report")
    try:
        _check_destinations(destinations, ctx)
        if args.folds is not None:
            cross_validate(config, ctx, args.folds, report)
        else:
            summary = train(config, ctx)
            if ctx.is_main:
                print(format_summary(summary))
                print(f"best checkpoint: {config.out}")
                if not args.no_calibrate:
                    _calibrate(config, summary, str(ctx.device))
    except (CommandError, DatasetError, TrainingError, ResumeError, CheckpointError) as exc:
        if ctx.is_main:
            print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, CommandError):
            return exc.exit_status
        return EXIT_OUTPUT_FAILED if isinstance(exc, TrainingOutputError) else EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        if ctx.is_main:
            print(
                "interrupted; the files of the last finished epoch are intact: rerun with "
                "--resume to continue from there",
                file=sys.stderr,
            )
        return exit_status(exc.signum) if isinstance(exc, Interrupted) else 130
    finally:
        ctx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
