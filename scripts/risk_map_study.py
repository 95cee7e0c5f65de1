"""Does the risk map mark where the explanation is wrong? Phantom masks, and real labels.

``python scripts/risk_map_study.py --out OUT`` (the default run: about 7 minutes on a loaded
2-core CPU, 4 of them training; results in ``docs/evaluation.md``):

1. writes a phantom data set with ground-truth masks into ``OUT/phantom`` (3 classes x 7
   videos x 40 frames of 168 x 232 px, seed 1; ``--data ROOT`` takes yours);
2. trains a phantom model on it into ``OUT/phantom_model.pt`` with :data:`TRAINING` (ResNet-18
   from scratch at 128 px, Dropout p = 0.2 before the classifier, 6 epochs, every 2nd frame,
   3 videos per class held out; ``--checkpoint CKPT`` takes yours);
3. explains every 2nd frame (``--every-k``) of the checkpoint's held-out videos, which it did
   not train on (``--phantom-recordings a,b`` names others), with Grad-CAM++ and Recipro-CAM,
   T = 10 MC Dropout passes, the predicted class, as ``python -m app evaluate`` does;
4. scores each frame with :mod:`app.evaluate.risk_map` (per-pixel AUROC of CV for attribution
   error, pooled and per frame, stratified, against a threshold-margin baseline; mean CV vs
   IoU and pointing game; all frames and each class), with percentile bootstrap intervals
   over videos, and writes ``OUT/risk_map_study.json``; a summary goes to the terminal.

All 180 held-out frames of the default run are explained (no subsampling beyond every 2nd
frame); ``--max-frames N`` caps them.

``--real-checkpoint CKPT --real-data ROOT [--recordings a,b]`` adds the real-data part: mean
CV on misclassified vs correct frames of the held-out recordings (``--recordings``, else the
checkpoint's own held-out recordings), per recording and pooled. Without them it is skipped.
``--skip-phantom`` runs the real part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.evaluate.frames import EvalFrame, load_frames, to_input
from app.evaluate.localisation import upsampled
from app.evaluate.risk_map import (
    frame_figures,
    has_structure,
    outcome_figures,
    pixel_figures,
    score_frame,
)
from app.evaluate.tables import jsonable
from app.explain import Explainer
from app.pipeline.results import mean_cv_in_fov
from app.private_files import make_private_dirs, open_private
from models.checkpoint import CheckpointError, CheckpointMetadata, load_checkpoint
from models.data.frame_cache import FrameSampling
from models.data.index import DatasetError, Recording, discover
from models.data.phantom import CLASSES, PhantomConfig, write_dataset

METHODS = ("gradcam++", "reciprocam")
PASSES = 10
PHANTOM = {"videos_per_class": 7, "frames_per_video": 40, "seed": 1, "size": (168, 232)}
"""The phantom data set of the default run."""
TRAINING = [
    "--arch", "resnet18", "--epochs", "6", "--input-size", "128", "--batch-size", "32",
    "--every-k", "2", "--val-videos", "3", "--seed", "0", "--dropout", "0.2",
    "--workers", "0", "--no-progress", "--no-calibrate",
    "--intended-use", "phantom risk-map study, not for clinical use",
]  # fmt: skip
"""``models.train`` options of the phantom model (with ``--data`` and ``--out``)."""
BATCH = 8


def make_phantom(root: Path) -> Path:
    """Write the default phantom data set (videos and masks) under ``root``."""
    h, w = PHANTOM["size"]
    write_dataset(
        root,
        CLASSES,
        videos_per_class=PHANTOM["videos_per_class"],
        frames_per_video=PHANTOM["frames_per_video"],
        seed=PHANTOM["seed"],
        config=PhantomConfig(h, w),
    )
    return root


def train_phantom(data: Path, checkpoint: Path, options: Sequence[str] = TRAINING) -> float:
    """Train the phantom model with ``models.train``; returns the seconds it took."""
    from models.training.cli import main as train_main

    start = time.perf_counter()
    status = train_main(["--data", str(data), "--out", str(checkpoint), *options])
    if status:
        raise RuntimeError(f"models.train exited with status {status}")
    return time.perf_counter() - start


def held_out(
    root: Path, metadata: CheckpointMetadata, names: Sequence[str] | None
) -> list[Recording]:
    """The recordings of ``root`` to study: ``names``, else the checkpoint's held-out ones
    (those of classes the model does not have are left out).

    Raises:
        ValueError: none named and the checkpoint names none, or a name is not under ``root``.
    """
    index = discover(root)
    if not names:
        names = (metadata.training or {}).get("val_recordings") or []
        if not names:
            raise ValueError(
                "the checkpoint names no held-out recordings; name them with --recordings / "
                "--phantom-recordings (videos it did not train on)"
            )
    by_name = {r.name: r for r in index.recordings}
    absent = [n for n in names if n not in by_name]
    if absent:
        raise ValueError(f"recordings not found under {root}: {', '.join(absent)}")
    return [by_name[n] for n in names if by_name[n].class_name in metadata.class_names]


def _sampling(metadata: CheckpointMetadata, every_k: int) -> FrameSampling:
    hyper = (metadata.training or {}).get("hyperparameters", {})
    return FrameSampling(
        every_k, float(hyper.get("dedup_threshold", FrameSampling().dedup_threshold))
    )


def explained(
    model: torch.nn.Module,
    metadata: CheckpointMetadata,
    frames: Sequence[EvalFrame],
    method: str,
    passes: int,
    seed: int,
    device: str,
) -> Iterator[tuple[EvalFrame, np.ndarray, np.ndarray, int]]:
    """Each frame with its MC Dropout explanation at input size: ``(frame, enhanced map, risk
    map (NaN where undefined), predicted class)``; batches of :data:`BATCH`, each seeded."""
    side = int(metadata.input_size[0])
    for start in range(0, len(frames), BATCH):
        chunk = frames[start : start + BATCH]
        explainer = Explainer(
            model, method, passes, True, metadata.target_layer, device, seed=seed + start
        )
        r = explainer(to_input(chunk, metadata.mean, metadata.std))
        means, cvs, probs = (t if r.batched else t[None] for t in (r.mean, r.cv, r.mean_probs))
        for frame, mean, cv, p in zip(chunk, means, cvs, probs, strict=True):
            yield frame, upsampled(mean, side), upsampled(cv, side), int(p.argmax())


def phantom_study(
    checkpoint: Path,
    data: Path,
    *,
    recordings: Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    passes: int = PASSES,
    every_k: int = 2,
    max_frames: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """The phantom part: per method, :func:`pixel_figures` and :func:`frame_figures`.

    Frames whose mask has no pixel in the field of view are skipped and counted.
    """
    model, metadata = load_checkpoint(checkpoint, device=device)
    chosen = held_out(data, metadata, recordings)
    side = int(metadata.input_size[0])
    frames, skipped = load_frames(chosen, side, _sampling(metadata, every_k), max_frames)
    usable = [f for f in frames if f.mask is not None and has_structure(f.mask, f.fov_mask)]
    report: dict[str, Any] = {
        "checkpoint": {
            "arch": metadata.arch,
            "input_size": side,
            "target_layer": metadata.target_layer,
        },
        "recordings": [r.name for r in chosen],
        "unreadable_recordings": [s.name for s in skipped],
        "frames_loaded": len(frames),
        "frames_without_mask_in_fov": len(frames) - len(usable),
        "every_k": every_k,
        "passes": passes,
        "seed": seed,
        "methods": {},
    }
    classes = list(metadata.class_names)
    class_of = {r.name: r.class_name for r in chosen}
    for method in methods:
        start = time.perf_counter()
        scored, wrong = [], []
        for frame, map_up, cv_up, predicted in explained(
            model, metadata, usable, method, passes, seed, device
        ):
            assert frame.mask is not None
            scored.append(
                score_frame(frame.recording, frame.index, map_up, cv_up, frame.mask, frame.fov_mask)
            )
            wrong.append(predicted != classes.index(class_of[frame.recording]))
        seconds = time.perf_counter() - start
        report["methods"][method] = {
            "explain_seconds": seconds,
            "frame_accuracy": 1.0 - float(np.mean(wrong)) if wrong else None,
            "pixels": pixel_figures(scored, bootstrap, seed),
            "frames": frame_figures(scored, bootstrap, seed),
            # Mask size and structure differ by class: within a class, class is no confounder.
            "by_class": {
                name: {
                    "pixels": pixel_figures(subset, bootstrap, seed),
                    "frames": frame_figures(subset, bootstrap, seed),
                }
                for name in dict.fromkeys(class_of[f.recording] for f in scored)
                if (subset := [f for f in scored if class_of[f.recording] == name])
            },
        }
    return report


def real_study(
    checkpoint: Path,
    data: Path,
    *,
    recordings: Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    passes: int = PASSES,
    every_k: int = 2,
    max_frames: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """The real part: per method, :func:`outcome_figures` of the held-out recordings' frames
    (misclassified: the MC-mean softmax's argmax is not the recording's class)."""
    model, metadata = load_checkpoint(checkpoint, device=device)
    chosen = held_out(data, metadata, recordings)
    side = int(metadata.input_size[0])
    frames, skipped = load_frames(chosen, side, _sampling(metadata, every_k), max_frames)
    classes = list(metadata.class_names)
    class_of = {r.name: r.class_name for r in chosen}
    report: dict[str, Any] = {
        "recordings": [r.name for r in chosen],
        "unreadable_recordings": [s.name for s in skipped],
        "frames": len(frames),
        "every_k": every_k,
        "passes": passes,
        "methods": {},
    }
    for method in methods:
        mean_cv, wrong, names = [], [], []
        for frame, _, cv_up, predicted in explained(
            model, metadata, frames, method, passes, seed, device
        ):
            mean_cv.append(mean_cv_in_fov(cv_up, frame.fov_mask))
            wrong.append(predicted != classes.index(class_of[frame.recording]))
            names.append(frame.recording)
        report["methods"][method] = outcome_figures(mean_cv, wrong, names, bootstrap, seed)
    return report


def _estimate(figure: dict[str, Any]) -> str:
    v, lo, hi = figure["value"], figure["low"], figure["high"]
    if v is None or not np.isfinite(v):
        return "undefined"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def summary(report: dict[str, Any]) -> list[str]:
    """Terminal lines of the figures that matter (all of them are in the JSON)."""
    lines = []
    phantom = report.get("phantom")
    if phantom:
        lines.append(
            f"phantom: {len(phantom['recordings'])} held-out videos, "
            f"{phantom['frames_loaded']} frames ({phantom['frames_without_mask_in_fov']} "
            "without mask pixels skipped)"
        )
        for method, m in phantom["methods"].items():
            p, f = m["pixels"], m["frames"]
            hits = f["pointing"]
            lines.append(
                f"  {method}: frame accuracy {m['frame_accuracy']:.3f}, {p['pixels']['scored']} "
                f"pixels scored, {p['pixels']['undefined']} with undefined CV excluded, "
                f"{p['pixels']['errors'] / max(p['pixels']['scored'], 1):.1%} errors; "
                f"{hits['frames_miss']} pointing misses, {hits['frames_hit']} hits"
            )
            rows = (
                ("per-pixel AUROC of CV, pooled", p["pooled"]),
                ("per-pixel AUROC of CV, mean per frame", p["per_frame_mean"]),
                ("  within explained (false positives)", p["within_explained"]),
                ("  within unexplained (misses)", p["within_unexplained"]),
                ("baseline -|map - 0.5|, pooled", p["baseline_pooled"]),
                ("  within explained", p["baseline_within_explained"]),
                ("  within unexplained", p["baseline_within_unexplained"]),
                ("Spearman mean CV vs IoU", f["spearman_iou"]),
                ("Spearman mean CV vs pointing hit", f["spearman_pointing"]),
                ("mean CV on misses - hits", hits["difference_miss_minus_hit"]),
                ("AUROC of mean CV for misses", hits["auroc_miss"]),
            )
            lines += [f"    {label:<40} {_estimate(figure)}" for label, figure in rows]
            for name, c in m["by_class"].items():
                lines.append(
                    f"    {name:<12} pooled AUROC {_estimate(c['pixels']['pooled'])}, Spearman "
                    f"mean CV vs IoU {_estimate(c['frames']['spearman_iou'])}, vs hit "
                    f"{_estimate(c['frames']['spearman_pointing'])}"
                )
    real = report.get("real")
    if real:
        lines.append(
            f"real: {len(real['recordings'])} held-out recordings, {real['frames']} frames"
        )
        for method, m in real["methods"].items():
            lines.append(
                f"  {method}: mean CV wrong {_estimate(m['mean_cv_wrong'])} "
                f"({m['frames_wrong']}) vs right {_estimate(m['mean_cv_right'])} "
                f"({m['frames_right']}); "
                f"AUROC {_estimate(m['auroc_wrong'])}"
            )
    return lines


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def build_parser() -> argparse.ArgumentParser:
    """The script's command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for data, model and JSON")
    p.add_argument("--data", type=Path, help="phantom data set with masks (default: write one)")
    p.add_argument("--checkpoint", type=Path, help="phantom model (default: train one)")
    p.add_argument("--phantom-recordings", help="held-out phantom videos, comma-separated")
    p.add_argument("--methods", default=",".join(METHODS), help="default gradcam++,reciprocam")
    p.add_argument("--passes", type=int, default=PASSES, help="T (default 10)")
    p.add_argument("--every-k", type=int, default=2, help="every k-th frame (default 2)")
    p.add_argument("--max-frames", type=int, help="at most this many frames per part")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the videos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-phantom", action="store_true", help="run the real part only")
    p.add_argument("--real-checkpoint", type=Path, help="a model trained on real recordings")
    p.add_argument("--real-data", type=Path, help="the real data set root")
    p.add_argument("--recordings", help="held-out real recordings, comma-separated")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.real_checkpoint is None) != (args.real_data is None):
        print("--real-checkpoint and --real-data go together", file=sys.stderr)
        return 2
    out = make_private_dirs(args.out)
    common = {
        "methods": _names(args.methods) or list(METHODS),
        "passes": args.passes,
        "every_k": args.every_k,
        "max_frames": args.max_frames,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "device": args.device,
    }
    report: dict[str, Any] = {
        "arguments": list(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(),
        },
    }
    try:
        if not args.skip_phantom:
            data = args.data or make_phantom(out / "phantom")
            checkpoint = args.checkpoint
            if checkpoint is None:
                checkpoint = out / "phantom_model.pt"
                report["training"] = {
                    "options": TRAINING,
                    "phantom": PHANTOM,
                    "seconds": train_phantom(data, checkpoint),
                }
            start = time.perf_counter()
            report["phantom"] = phantom_study(
                checkpoint, data, recordings=_names(args.phantom_recordings), **common
            )
            report["phantom"]["seconds"] = time.perf_counter() - start
        if args.real_checkpoint is not None:
            report["real"] = real_study(
                args.real_checkpoint, args.real_data, recordings=_names(args.recordings), **common
            )
        else:
            report["real"] = None  # skipped: no --real-checkpoint / --real-data
    except (ValueError, DatasetError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = out / "risk_map_study.json"
    with open_private(path) as fh:
        json.dump(jsonable(report), fh, indent=2)
    print("\n".join(summary(jsonable(report))))
    if report["real"] is None:
        print("real: skipped (give --real-checkpoint CKPT --real-data ROOT)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
