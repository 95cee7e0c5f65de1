"""Command line: ``python -m app {run,explain,bench}``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.explain import METHODS

DEFAULT_OUT = Path("out")


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


def read_frame(path: Path, index: int = 0) -> np.ndarray:
    """One frame from an image file (any bit depth OpenCV reads) or a video (frame ``index``)."""
    import cv2

    if not path.exists():
        raise CommandError(f"no such file: {path}")
    if path.is_dir():
        raise CommandError(f"{path} is a folder, not an image or a video")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is not None:
        if index:
            raise CommandError(f"{path} is an image; --frame applies to videos only")
        return image
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise CommandError(f"{path} is neither a readable image nor a readable video")
        if index:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise CommandError(f"could not read frame {index} of {path} (corrupt or too short?)")
    return frame


def explain_file(
    image: Path,
    checkpoint: Path,
    out: Path,
    method: str = "gradcam++",
    passes: int = 10,
    mc: bool = True,
    device: str = "auto",
    class_name: str | None = None,
    frame_index: int = 0,
    seed: int | None = None,
) -> dict:
    """Explain one frame and write raw.png, enhanced.png, risk.png, maps.npz, summary.json.

    Returns:
        The summary written to summary.json.
    """
    import cv2

    from app.explain import Explainer
    from app.overlay import (
        ENHANCED_COLORMAP,
        ENHANCED_LEVELS,
        RISK_COLORMAP,
        RISK_LEVELS,
        blend,
        to_uint8_gray,
    )
    from models.checkpoint import CheckpointError, load_checkpoint
    from models.fov import to_gray_float
    from models.preprocess import FramePreprocessor, PreprocessConfig

    frame = read_frame(image, frame_index)
    try:
        model, meta = load_checkpoint(checkpoint, device="cpu")
    except CheckpointError as exc:
        raise CommandError(str(exc)) from exc
    class_idx = None
    if class_name is not None:
        if class_name in meta.class_names:
            class_idx = meta.class_names.index(class_name)
        elif class_name.isdigit() and int(class_name) < meta.num_classes:
            class_idx = int(class_name)
        else:
            raise CommandError(
                f"unknown class {class_name!r}; this model knows {', '.join(meta.class_names)}"
            )
    try:
        pre = FramePreprocessor(
            PreprocessConfig(tuple(meta.input_size), tuple(meta.mean), tuple(meta.std))
        )(frame)
    except ValueError as exc:
        raise CommandError(f"{image}: {exc}") from exc
    explainer = Explainer(
        model,
        method,
        passes=passes,
        mc=mc,
        target_layer=meta.target_layer,
        device=device,
        seed=seed,
    )
    result = explainer(pre.tensor, class_idx=class_idx).cpu()

    out.mkdir(parents=True, exist_ok=True)
    size = pre.display.shape
    mean_up, cv_up = (t.numpy() for t in result.upsampled(size))
    cv2.imwrite(str(out / "raw.png"), to_uint8_gray(to_gray_float(frame)))
    cv2.imwrite(
        str(out / "enhanced.png"),
        blend(pre.display, mean_up, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=pre.fov_mask),
    )
    cv2.imwrite(
        str(out / "risk.png"),
        blend(pre.display, cv_up, RISK_LEVELS, RISK_COLORMAP, mask=pre.fov_mask),
    )
    np.savez_compressed(
        out / "maps.npz",
        **result.to_numpy(),
        display=pre.display,
        class_names=np.array(meta.class_names),
    )
    summary = {
        "image": image.name,
        "checkpoint": checkpoint.name,
        "intended_use": meta.intended_use,
        "method": result.method,
        "passes": result.passes,
        "mc": result.mc,
        "target_layer": result.target_layer,
        "class": meta.class_names[result.class_idx],
        "probabilities": dict(zip(meta.class_names, map(float, result.mean_probs), strict=True)),
        "probability_std": float(result.probs[:, result.class_idx].std(unbiased=False)),
        "entropy_nats": result.entropy,
        "mutual_information_nats": result.mutual_information,
        "mean_cv_in_fov": float(np.nanmean(np.where(pre.fov_mask, cv_up, np.nan)))
        if np.any(pre.fov_mask & ~np.isnan(cv_up))
        else None,
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        "outputs": ["raw.png", "enhanced.png", "risk.png", "maps.npz"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _cmd_explain(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        raise CommandError(
            "explain needs a model: pass --checkpoint FILE, a checkpoint written by this project "
            "(it carries the architecture, classes and preprocessing the frame needs)"
        )
    summary = explain_file(
        Path(args.image),
        Path(args.checkpoint),
        Path(args.out),
        args.method,
        args.passes,
        not args.original,
        args.device,
        args.target_class,
        args.frame,
        args.seed,
    )
    print(
        f"{summary['class']} (p = {summary['probabilities'][summary['class']]:.3f}), "
        f"{summary['method']}, T = {summary['passes']}, "
        f"{summary['timings_ms']['total']:.1f} ms; wrote {args.out}/"
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from app.benchmark import benchmark_engine, format_table, write_report

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CommandError(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
    report = benchmark_engine(
        args.arch,
        methods,
        args.passes,
        args.device,
        args.input_size,
        repeats=args.repeats,
        budget_s=args.budget,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(format_table(report))
    if args.json:
        write_report(report, args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="pCLE explainability viewer: MC Dropout attribution and risk maps.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the main job on the shipped demo (what `make run` does)")
    run.add_argument("--out", default=str(DEFAULT_OUT / "demo"), help="output folder")
    run.set_defaults(handler=_cmd_run)

    explain = sub.add_parser("explain", help="explain one frame (image or video frame)")
    explain.add_argument("image", help="image file (PNG, TIFF, 8/16-bit, grey or colour) or video")
    explain.add_argument("--checkpoint", help="model checkpoint (.pt) written by this project")
    explain.add_argument("--method", default="gradcam++", choices=list(METHODS))
    explain.add_argument("--passes", type=int, default=10, help="MC Dropout passes T")
    explain.add_argument(
        "--original", action="store_true", help="Dropout off, one pass (the paper's 'original')"
    )
    explain.add_argument(
        "--class", dest="target_class", help="class to explain (name or index); default: predicted"
    )
    explain.add_argument("--frame", type=int, default=0, help="frame index, for a video")
    explain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    explain.add_argument("--seed", type=int, help="seed the dropout masks (reproducible)")
    explain.add_argument("--out", default=str(DEFAULT_OUT / "explain"), help="output folder")
    explain.set_defaults(handler=_cmd_explain)

    bench = sub.add_parser("bench", help="time the engine: forward, original, proposed, loop")
    bench.add_argument("--arch", default="resnet18")
    bench.add_argument(
        "--methods",
        default="gradcam++,reciprocam",
        help=f"comma-separated, from: {', '.join(METHODS)}",
    )
    bench.add_argument("--passes", type=int, default=10)
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--input-size", type=int, default=224)
    bench.add_argument("--repeats", type=int, default=7, help="timed runs per measurement")
    bench.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds per measurement before stopping early (at least one run)",
    )
    bench.add_argument("--json", help="write the report as JSON here")
    bench.set_defaults(handler=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
