"""Command line: ``python -m app {view,run,explain,bench,process,bench-pipeline,evaluate}``.

Without a subcommand, ``python -m app [options]`` is ``python -m app view [options]``: the
viewer, on the shipped demo unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.explain import METHODS
from app.review.command import add_review_parser

if TYPE_CHECKING:
    from app.pipeline import PipelineSettings

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

    The frame goes through the same :class:`~app.pipeline.FrameAnalyzer` as the viewer's
    frames (field of view, preprocessing as the checkpoint says, the T-pass engine).

    Returns:
        The summary written to summary.json.
    """
    import cv2

    from app.overlay import (
        ENHANCED_COLORMAP,
        ENHANCED_LEVELS,
        RISK_COLORMAP,
        RISK_LEVELS,
        blend,
        to_uint8_gray,
    )
    from app.pipeline import FrameAnalyzer, PipelineSettings, SettingsError, SourceFrame
    from models.fov import to_gray_float

    frame = read_frame(image, frame_index)
    try:
        analyzer = FrameAnalyzer(
            PipelineSettings(
                checkpoint,
                method=method,
                passes=passes,
                mc=mc,
                target_class=class_name,
                device=device,
                seed=seed,
            )
        )
        result = analyzer(SourceFrame(0, frame_index, time.monotonic(), 0.0, frame, 0.0))
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:
        raise CommandError(f"{image}: {exc}") from exc
    explanation = result.explanation

    out.mkdir(parents=True, exist_ok=True)
    mean_up, cv_up = result.maps()
    cv2.imwrite(str(out / "raw.png"), to_uint8_gray(to_gray_float(frame)))
    cv2.imwrite(
        str(out / "enhanced.png"),
        blend(result.display, mean_up, ENHANCED_LEVELS, ENHANCED_COLORMAP, mask=result.fov_mask),
    )
    cv2.imwrite(
        str(out / "risk.png"),
        blend(result.display, cv_up, RISK_LEVELS, RISK_COLORMAP, mask=result.fov_mask),
    )
    np.savez_compressed(
        out / "maps.npz",
        **explanation.to_numpy(),
        display=result.display,
        class_names=np.array(result.class_names),
    )
    summary = {
        "image": image.name,
        "checkpoint": checkpoint.name,
        "intended_use": result.metadata.intended_use,
        "method": explanation.method,
        "passes": explanation.passes,
        "mc": explanation.mc,
        "target_layer": explanation.target_layer,
        "class": result.class_name,
        "probabilities": result.probabilities,
        "probability_std": float(explanation.probs[:, result.class_idx].std(unbiased=False)),
        "entropy_nats": result.entropy,
        "mutual_information_nats": result.mutual_information,
        "mean_cv_in_fov": result.mean_cv_in_fov(cv_up),
        "timings_ms": {k: round(v, 2) for k, v in explanation.timings_ms.items()},
        "outputs": ["raw.png", "enhanced.png", "risk.png", "maps.npz"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _cmd_explain(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        raise CommandError(
            "explain needs a model: pass --checkpoint FILE, a checkpoint written by this project "
            "(it carries the architecture, classes and preprocessing the frame needs); the "
            "phantom demo model, for trying things out only, is assets/demo_model.pt"
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
            seed=args.seed,
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
    if args.max_frames is not None and args.max_frames < 1:
        raise CommandError(f"--max-frames must be at least 1, got {args.max_frames}")
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
        report = process(
            args.video,
            settings,
            Path(args.out),
            max_frames=args.max_frames,
            panel_height=args.panel_height,
            progress=not args.quiet,
            on_result=None if recorder is None else recorder.write,
        )
    except (SourceError, SettingsError, RuntimeError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        if recorder is not None:
            recorder.close()
    for message in report.failed:
        print(f"warning: {message}", file=sys.stderr)
    print(
        f"{report.frames} frames in {report.seconds:.1f} s "
        f"({report.frames_per_second:.1f} frames/s); wrote {report.video} ({report.codec}) "
        f"and {report.table}"
    )
    if recorder is not None:
        if recorder.error:
            print(f"warning: {recorder.error}", file=sys.stderr)
        print(f"recorded {recorder.frames_saved} frames into {recorder.folder}")
    return 0


def _cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from app.pipeline import SettingsError, SourceError
    from app.pipeline.benchmark import benchmark_pipeline, format_report, write_report

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
            speed=args.speed,
            rss_every=args.rss_every,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except (SourceError, SettingsError) as exc:
        raise CommandError(str(exc)) from exc
    print(format_report(report))
    if args.json:
        write_report(report, args.json)
        print(f"wrote {args.json}")
    return 0


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CommandError(f"{option} takes comma-separated integers, got {text!r}") from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from app.evaluate.runner import EvaluationConfig, EvaluationError, run_evaluation

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
        batch_size=args.batch_size,
        figures=args.figures,
        progress=not args.quiet,
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
    print(
        f"scored {report['scored']} images, reused {report['reused']} from scores.jsonl; "
        f"wrote {args.out}/"
    )
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from app.pipeline import SettingsError

    try:
        from app.ui.options import resolve_options
        from app.ui.recent import PreferencesStore
        from app.ui.viewer import run_viewer
    except ImportError as exc:  # e.g. a Qt library missing on the system
        raise CommandError(f"the viewer cannot start: {exc}") from exc

    if args.passes is not None and not 1 <= args.passes <= 64:
        raise CommandError(f"--passes must be from 1 to 64, got {args.passes}")
    if args.checkpoint is not None and not Path(args.checkpoint).expanduser().is_file():
        raise CommandError(f"no such checkpoint file: {args.checkpoint}")
    store = PreferencesStore(args.settings)
    try:
        options = resolve_options(
            store.load(),
            source=args.source,
            checkpoint=args.checkpoint,
            method=args.method,
            passes=args.passes,
            mode=args.mode,
            device=args.device,
            target_class=args.target_class,
            loop=args.loop,
            snapshot_dir=args.snapshots,
            recordings_dir=args.recordings,
        )
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc
    return run_viewer(options, store, fullscreen=args.fullscreen)


def _cmd_run(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(Path(args.out), headless=True if args.headless else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="pCLE explainability viewer: MC Dropout attribution and risk maps.",
    )
    sub = parser.add_subparsers(dest="command", required=False, metavar="COMMAND")

    view = sub.add_parser(
        "view", help="the live viewer (the default): raw | enhanced map | risk map, latency"
    )
    view.add_argument(
        "--source",
        help="VIDEO | DEVICE_INDEX | /dev/videoN | FOLDER of images; default: the demo video",
    )
    view.add_argument(
        "--checkpoint", help="model checkpoint (.pt); default: the last model used, else the demo"
    )
    view.add_argument(
        "--method", choices=list(METHODS), help="attribution method; default: the last used"
    )
    view.add_argument("--passes", type=int, help="MC Dropout passes T (1-64); default: last used")
    view.add_argument("--mode", choices=["live", "analysis"], help="default: the last used")
    view.add_argument("--device", help="auto, cpu, cuda, cuda:N (default auto)")
    view.add_argument(
        "--class", dest="target_class", help="class to explain (name or index); default: predicted"
    )
    view.add_argument(
        "--loop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay files in a loop (default: as last time, on at first)",
    )
    view.add_argument("--snapshots", help="folder for snapshots (S key); default ~/pcle-snapshots")
    view.add_argument(
        "--recordings", help="folder for recorded sessions (Ctrl+R); default ~/pcle-sessions"
    )
    view.add_argument(
        "--settings", help="INI file for remembered settings and recent sources (default: per user)"
    )
    view.add_argument("--fullscreen", action="store_true", help="start full screen")
    view.set_defaults(handler=_cmd_view)

    run = sub.add_parser("run", help="the main job on the shipped demo (what `make run` does)")
    run.add_argument("--out", default=str(DEFAULT_OUT / "demo"), help="output folder (headless)")
    run.add_argument(
        "--headless",
        action="store_true",
        help="process the demo to files even when a display is available",
    )
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

    process = sub.add_parser(
        "process", help="explain every frame of a recording: panel video and per-frame CSV"
    )
    process.add_argument("video", help="video file (mp4, avi, mpg, mkv, mov) or image folder")
    process.add_argument("--checkpoint", help="model checkpoint (.pt) written by this project")
    process.add_argument("--method", default="gradcam++", choices=list(METHODS))
    process.add_argument("--passes", type=int, default=10, help="MC Dropout passes T (1-64)")
    process.add_argument(
        "--original", action="store_true", help="Dropout off, one pass (the paper's 'original')"
    )
    process.add_argument(
        "--class", dest="target_class", help="class to explain (name or index); default: predicted"
    )
    process.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    process.add_argument("--seed", type=int, help="seed the dropout masks (reproducible)")
    process.add_argument("--max-frames", type=int, help="stop after this many frames")
    process.add_argument(
        "--panel-height", type=int, help="panel height in the video (default: model input)"
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

    bench_pipeline = sub.add_parser(
        "bench-pipeline", help="time the frame pipeline: throughput, live latency, memory"
    )
    bench_pipeline.add_argument("--source", required=True, help="video file (looped)")
    bench_pipeline.add_argument("--checkpoint", help="model checkpoint; default: random --arch")
    bench_pipeline.add_argument("--arch", default="resnet18", help="random model's architecture")
    bench_pipeline.add_argument("--input-size", type=int, default=224, help="random model's input")
    bench_pipeline.add_argument("--mode", default="analysis", choices=["analysis", "live"])
    bench_pipeline.add_argument("--method", default="gradcam++", choices=list(METHODS))
    bench_pipeline.add_argument("--passes", type=int, default=10)
    bench_pipeline.add_argument(
        "--frames",
        type=int,
        default=300,
        help="frames to measure: results (analysis) or frames read (live)",
    )
    bench_pipeline.add_argument("--warmup", type=int, default=10, help="results not measured")
    bench_pipeline.add_argument("--device", default="cpu")
    bench_pipeline.add_argument("--speed", type=float, default=1.0, help="live playback speed")
    bench_pipeline.add_argument("--threads", type=int, help="torch intra-op threads")
    bench_pipeline.add_argument(
        "--rss-every", type=int, default=500, help="sample resident memory every N frames"
    )
    bench_pipeline.add_argument("--json", help="write the report as JSON here")
    bench_pipeline.set_defaults(handler=_cmd_bench_pipeline)

    evaluate = sub.add_parser(
        "evaluate",
        help="original vs proposed: Poppi et al.'s metrics on held-out videos, T study, figures",
    )
    evaluate.add_argument("--data", required=True, help="data set root (one folder per class)")
    evaluate.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    evaluate.add_argument(
        "--methods",
        default="gradcam,gradcam++,reciprocam",
        help=f"comma-separated, from: {', '.join(METHODS)}",
    )
    evaluate.add_argument("--passes", type=int, default=10, help="MC Dropout passes T (proposed)")
    evaluate.add_argument("--every-k", type=int, default=10, help="keep every k-th frame")
    evaluate.add_argument("--max-frames", type=int, help="score at most this many frames")
    evaluate.add_argument(
        "--t-study",
        default=",".join(str(t) for t in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 40, 80, 100)),
        help="T values of the ADCC-vs-T study (empty: no study)",
    )
    evaluate.add_argument(
        "--t-study-frames", type=int, default=50, help="frames of the T study (the first ones)"
    )
    evaluate.add_argument(
        "--t-study-methods", type=int, default=1, help="how many of --methods the T study covers"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    evaluate.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:N; under torchrun each process takes cuda:LOCAL_RANK",
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=8, help="frames per explainer call (1: viewer latency)"
    )
    evaluate.add_argument("--figures", type=int, default=4, help="example figures per method")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument("--out", default=str(DEFAULT_OUT / "evaluate"), help="output folder")
    evaluate.set_defaults(handler=_cmd_evaluate)

    add_review_parser(sub)
    return parser


def _with_default_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with ``view`` in front when it names no subcommand (``python -m app``, or
    ``python -m app --source 0``); ``-h`` alone still shows the overall help."""
    commands = {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }
    if argv and (argv[0] in commands or argv[0] in ("-h", "--help")):
        return argv
    return ["view", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(
        _with_default_command(parser, list(sys.argv[1:] if argv is None else argv))
    )
    try:
        return args.handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
