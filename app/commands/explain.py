"""``python -m app explain IMAGE``: explain one frame (an image, or a video's frame) and write
raw.png, enhanced.png, risk.png, maps.npz and summary.json.

:func:`explain_file` and :func:`read_frame` are the library side, usable without the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from app.argument_types import int_in
from app.commands.common import (
    DEFAULT_OUT,
    CommandError,
    OutputError,
    add_backend_option,
    add_explanation_options,
)

if TYPE_CHECKING:
    from app.pipeline.sources import SourceFrame

__all__ = ["add_parser", "explain_file", "read_frame"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``explain`` subcommand to the CLI's subparsers."""
    explain = sub.add_parser("explain", help="explain one frame (image or video frame)")
    explain.add_argument("image", help="image file (PNG, TIFF, 8/16-bit, grey or colour) or video")
    add_explanation_options(explain, passes_help="MC Dropout passes T")
    explain.add_argument(
        "--frame", type=int_in(0), default=0, help="frame index, for a video (0 is the first)"
    )
    explain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_backend_option(explain)
    explain.add_argument("--seed", type=int, help="seed the dropout masks (reproducible)")
    explain.add_argument("--out", default=str(DEFAULT_OUT / "explain"), help="output folder")
    explain.set_defaults(handler=_cmd_explain)


def read_frame(path: Path, index: int = 0) -> np.ndarray:
    """One frame from an image file (any bit depth OpenCV reads) or a video (frame ``index``,
    the frame-exact seek of :func:`~app.pipeline.sources.open_recording`'s sources)."""
    return _read_source_frame(path, index).image


def _read_source_frame(path: Path, index: int) -> SourceFrame:
    """:func:`read_frame` with the frame's index and time in its source."""
    import cv2

    from app.pipeline.sources import IMAGE_SUFFIXES, SourceError, SourceFrame, open_recording

    if not path.exists():
        raise CommandError(f"no such file: {path}")
    if path.is_dir():
        raise CommandError(f"{path} is a folder, not an image or a video")
    if index < 0:
        raise CommandError(f"--frame must be 0 or more, got {index}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is not None:
        if index:
            raise CommandError(f"{path} is an image; --frame applies to videos only")
        return SourceFrame(0, 0, time.monotonic(), 0.0, image, 0.0)
    if path.suffix.lower() in IMAGE_SUFFIXES:  # not a video: say so rather than "frame 0"
        raise CommandError(
            f"cannot decode {path} as an image: it is corrupt, truncated or not really a "
            f"{path.suffix} file"
        )
    try:
        with open_recording(path) as video:
            video.seek(index)
            frame = video.read()
    except SourceError as exc:
        raise CommandError(str(exc)) from exc
    if frame is None or frame.source_index != index:
        raise CommandError(f"frame {index} of {path} does not decode (the file is damaged there)")
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
    backend: str = "torch",
) -> dict:
    """Explain one frame and write raw.png, enhanced.png, risk.png, maps.npz, summary.json.

    The frame goes through the same :class:`~app.pipeline.FrameAnalyzer` as the viewer's
    frames (field of view, preprocessing as the checkpoint says, the T-pass engine).

    Returns:
        The summary written to summary.json.
    """
    import cv2

    from app.pipeline import FrameAnalyzer, PipelineSettings, SettingsError
    from app.preprocess.field_of_view import to_gray_float
    from app.private_files import check_writable_folder, make_private_dirs, write_files_atomic
    from app.render.overlay import (
        ENHANCED_COLORMAP,
        ENHANCED_LEVELS,
        RISK_COLORMAP,
        RISK_LEVELS,
        blend,
        to_uint8_gray,
    )
    from app.render.summary import NO_TISSUE

    try:
        check_writable_folder(out)
    except OSError as exc:
        raise OutputError.cannot_write("the explanation", out, exc) from exc
    frame = _read_source_frame(image, frame_index)
    try:
        analyzer = FrameAnalyzer(
            PipelineSettings(
                checkpoint,
                method=method,
                passes=passes,
                mc=mc,
                target_class=class_name,
                device=device,
                backend=backend,
                seed=seed,
            )
        )
        result = analyzer(frame)
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:
        raise CommandError(f"{image}: {exc}") from exc
    explanation = result.explanation

    mean_up, cv_up = result.maps()
    pictures = {
        "raw.png": to_uint8_gray(to_gray_float(frame.image)),
        "enhanced.png": blend(
            result.display, mean_up, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=result.fov_mask
        ),
        "risk.png": blend(result.display, cv_up, RISK_LEVELS, RISK_COLORMAP, mask=result.fov_mask),
    }
    files: dict[str, bytes | Callable[[BinaryIO], None]] = {}
    for name, picture in pictures.items():
        ok, png = cv2.imencode(".png", picture)
        if not ok:
            raise CommandError(f"OpenCV cannot encode {name}")
        files[name] = png.tobytes()
    arrays = {
        **explanation.to_numpy(),
        "display": result.display,
        "class_names": np.array(result.class_names),
    }
    files["maps.npz"] = lambda fh: np.savez_compressed(fh, **arrays)
    summary = {
        "image": image.name,
        "frame": frame.source_index,
        "source_time_s": round(frame.source_time, 4),
        "checkpoint": checkpoint.name,
        "intended_use": result.metadata.intended_use,
        "method": explanation.method,
        "passes": explanation.passes,
        "backend": explanation.backend,
        "mc": explanation.mc,
        "target_layer": explanation.target_layer,
        "class": result.class_name,
        "probabilities": result.probabilities,
        "probability_std": float(explanation.probs[:, result.class_idx].std(unbiased=False)),
        "entropy_nats": result.entropy,
        "mutual_information_nats": result.mutual_information,
        "mean_cv_in_fov": result.mean_cv_in_fov(cv_up),
        "field_of_view": result.fov.source,
        "warning": NO_TISSUE.get(result.fov.source),
        "timings_ms": {k: round(v, 2) for k, v in explanation.timings_ms.items()},
        "outputs": [*files],
    }
    files["summary.json"] = (json.dumps(summary, indent=2) + "\n").encode()
    try:
        make_private_dirs(out)
        write_files_atomic(out, files, sync=False)  # all five or none: the old set stays whole
    except OSError as exc:
        raise OutputError.cannot_write("the explanation", out, exc) from exc
    return summary


def _cmd_explain(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        raise CommandError(
            "explain needs a model: pass --checkpoint FILE, a checkpoint written by this project "
            "(it carries the architecture, classes and preprocessing the frame needs); the "
            "phantom demo model, for trying things out only, is app/assets/demo_model.pt"
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
        args.backend,
    )
    if summary["warning"]:
        print(f"warning: {summary['warning']}", file=sys.stderr)
    print(
        f"{summary['class']} (p = {summary['probabilities'][summary['class']]:.3f}), "
        f"{summary['method']}, T = {summary['passes']}, "
        f"{summary['timings_ms']['total']:.1f} ms; wrote {args.out}/"
    )
    return 0
