"""Frames, UNCERTAIN, prediction sets and the video-level verdict on videos the model never saw,
through the product's own path (calibrate, then process).

``python scripts/held_out_study.py --data ROOT --checkpoints FOLD1.pt FOLD2.pt ... --out DIR``
takes each checkpoint's held-out (validation) recordings, e.g. the folds of
``models.train --folds 4``, and for each held-out recording ``v``:

1. calibrates a copy of the checkpoint on the checkpoint's *other* held-out recordings
   (``app.calibration.fitting.calibrate_checkpoint`` with ``recordings=``: cross-fitting, so
   no frame is judged by a calibration fitted on its own video);
2. processes ``v`` with that copy exactly as ``python -m app process`` does (MC Dropout,
   ``--passes``, every frame up to ``--max-frames``), collecting every frame's summary:
   class, calibrated probability, UNCERTAIN, prediction set, the verdict.

It prints and writes ``DIR/held_out_study.json`` and ``.md``: per recording and pooled,
frame accuracy, the share of frames accepted (not UNCERTAIN), the error among accepted
frames, the conformal sets' coverage and mean size, the top-label ECE of the MC-mean
probabilities before and after the calibration (pooled only: one video is mostly one
confidence), and for the verdict the share of frames
at which it names the right class, names a wrong one (without UNCERTAIN), or names none, and
the share at which its pooled class (named or not) is right.
Pass the ``.last.pt`` checkpoints of a cross-validation (the final epoch), not the "best"
ones, which were chosen on these very videos.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.calibration.fitting import CalibrationSettings, calibrate_checkpoint
from app.calibration.reliability import expected_calibration_error
from app.pipeline.headless import process
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings
from models.checkpoint import read_metadata


@dataclass
class Counts:
    """What happened on the frames of one recording (or of all)."""

    frames: int = 0
    right: int = 0
    accepted: int = 0
    accepted_wrong: int = 0
    covered: int = 0
    set_size: int = 0
    verdict_right: int = 0
    verdict_wrong: int = 0
    verdict_none: int = 0
    pooled_right: int = 0
    labels: list[int] = field(default_factory=list)
    raw: list[tuple[float, ...]] = field(default_factory=list)
    calibrated: list[tuple[float, ...]] = field(default_factory=list)

    def add(self, result: FrameResult, label: str) -> None:
        s = result.summary(None)
        self.frames += 1
        right = s.class_name == label
        self.labels.append(s.class_names.index(label))
        self.raw.append(s.probabilities)
        if result.calibrated is not None:
            self.calibrated.append(tuple(result.calibrated.probabilities))
        self.right += right
        if s.uncertain is False:
            self.accepted += 1
            self.accepted_wrong += not right
        self.covered += label in s.prediction_set
        self.set_size += len(s.prediction_set)
        v = s.verdict
        self.pooled_right += (
            v is not None and v.class_idx is not None and (s.class_names[v.class_idx] == label)
        )
        if v is None or v.class_idx is None or v.uncertain:
            self.verdict_none += 1
        elif s.class_names[v.class_idx] == label:
            self.verdict_right += 1
        else:
            self.verdict_wrong += 1

    def merged(self, other: Counts) -> Counts:
        return Counts(
            *(a + b for a, b in zip(vars(self).values(), vars(other).values(), strict=True))
        )

    def ece(self) -> dict[str, float | None]:
        """Top-label ECE (15 bins) of the MC mean, raw and calibrated."""
        calibrated = len(self.calibrated) == self.frames > 0
        return {
            "ece_raw": expected_calibration_error(self.raw, self.labels) if self.frames else None,
            "ece_calibrated": (
                expected_calibration_error(self.calibrated, self.labels) if calibrated else None
            ),
        }

    def figures(self) -> dict[str, float | int]:
        n = max(self.frames, 1)
        return {
            "frames": self.frames,
            "frame_accuracy": self.right / n,
            "accepted": self.accepted / n,
            "error_among_accepted": self.accepted_wrong / max(self.accepted, 1),
            "wrong_without_uncertain_frames": self.accepted_wrong,
            "set_coverage": self.covered / n,
            "mean_set_size": self.set_size / n,
            "verdict_right": self.verdict_right / n,
            "verdict_wrong": self.verdict_wrong / n,
            "verdict_none": self.verdict_none / n,
            "verdict_wrong_frames": self.verdict_wrong,
            "pooled_class_right": self.pooled_right / n,
        }


def study_recording(
    data: Path,
    checkpoint: Path,
    recording: str,
    others: list[str],
    out: Path,
    args: argparse.Namespace,
) -> Counts:
    """Calibrate a copy of ``checkpoint`` on ``others``, process ``recording`` with it."""
    folder = out / checkpoint.stem / recording.replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "calibrated.pt"
    shutil.copyfile(checkpoint, copy)
    settings = CalibrationSettings(
        target_error=args.target_error,
        passes=args.passes,
        every_k=args.calibrate_every_k,
        recordings=others,
        seed=args.seed,
    )
    calibrate_checkpoint(data, copy, settings, "cpu")
    counts = Counts()
    label = recording.split("/", 1)[0]
    pipeline = PipelineSettings(
        copy, method=args.method, passes=args.passes, device="cpu", seed=args.seed
    )
    process(
        data / recording,
        pipeline,
        folder,
        max_frames=args.max_frames,
        progress=False,
        on_result=lambda result: counts.add(result, label),
    )
    copy.unlink()  # weights trained on real data stay out of the output folder
    return counts


def markdown(per_recording: dict[str, dict[str, Any]], pooled: dict[str, Any]) -> str:
    keys = [
        "frames",
        "frame_accuracy",
        "accepted",
        "error_among_accepted",
        "set_coverage",
        "mean_set_size",
        "verdict_right",
        "verdict_wrong",
        "verdict_none",
        "pooled_class_right",
    ]
    lines = ["| recording | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, figures in [*per_recording.items(), ("**all**", pooled)]:
        cells = [
            f"{figures[k]:.3f}" if isinstance(figures[k], float) else str(figures[k]) for k in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="data set root")
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--passes", type=int, default=10, help="MC Dropout passes T")
    parser.add_argument("--method", default="gradcam++")
    parser.add_argument("--max-frames", type=int, help="frames per recording (default: all)")
    parser.add_argument(
        "--calibrate-every-k", type=int, default=1, help="calibrate on every k-th frame"
    )
    parser.add_argument("--target-error", type=float, default=0.01, help="calibrate's target")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    per_recording: dict[str, dict[str, Any]] = {}
    pooled = Counts()
    by_class: dict[str, Counts] = defaultdict(Counts)
    for checkpoint in args.checkpoints:
        held_out = list(read_metadata(checkpoint).training.get("val_recordings") or [])
        if len(held_out) < 2:
            print(f"{checkpoint}: needs at least two held-out recordings", file=sys.stderr)
            return 2
        for recording in held_out:
            others = [r for r in held_out if r != recording]
            counts = study_recording(args.data, checkpoint, recording, others, args.out, args)
            per_recording[recording] = {"checkpoint": checkpoint.name, **counts.figures()}
            pooled = pooled.merged(counts)
            label = recording.split("/", 1)[0]
            by_class[label] = by_class[label].merged(counts)
            print(recording, json.dumps(counts.figures()), flush=True)
    report = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "recordings": per_recording,
        "pooled": {**pooled.figures(), **pooled.ece()},
        "by_class": {k: v.figures() for k, v in by_class.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "held_out_study.json").write_text(json.dumps(report, indent=2))
    ece = pooled.ece()
    table = markdown(per_recording, pooled.figures()) + (
        f"\nMC-mean top-label ECE, all frames: {ece['ece_raw']} raw, "
        f"{ece['ece_calibrated']} calibrated\n"
    )
    (args.out / "held_out_study.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
