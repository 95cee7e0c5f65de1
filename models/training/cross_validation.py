"""K-fold cross-validation by recording: every recording is validated on exactly once.

Each fold trains a model from scratch (:func:`models.training.loop.fit`) on the recordings of
the other folds; the report gives per-fold and mean/std metrics of the final and the best
epoch.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from app.private_files import write_atomic
from models.architectures import resolve_arch
from models.data.splits import kfold_splits
from models.training.config import TrainConfig, TrainingOutputError, resume_file_path
from models.training.distributed import DistributedContext
from models.training.loop import fit
from models.training.prepare import prepare_data

__all__ = ["cross_validate"]


def cross_validate(
    config: TrainConfig, ctx: DistributedContext, folds: int, report: Path
) -> dict[str, Any]:
    """K-fold cross-validation by recording; writes a JSON report (rank 0).

    Fold ``i`` trains a model from scratch on the other folds, saved as ``OUT`` with suffix
    ``.fold<i>.pt`` (plus its ``.last.pt`` and ``.resume.pt``). With ``config.resume`` set,
    each fold continues from its resume file when there is one.

    The report has, per fold and as mean and standard deviation over folds, the metrics of
    the *final* epoch (``final``: the unbiased estimate for a fixed epoch budget) and of the
    epoch that scored best on the fold's own validation videos (``best``: optimistic, since
    the choice used those videos), plus training time and images/s.

    Raises:
        DatasetError: If a class has fewer recordings than folds.
        TrainingOutputError: A checkpoint or the report cannot be written.
    """
    data = prepare_data(config, ctx)
    splits = kfold_splits(data.readable, folds, config.seed)
    out = Path(config.out)
    per_fold = []
    for i, split in enumerate(splits, start=1):
        fold_out = out.with_suffix(f".fold{i}.pt")
        resume = resume_file_path(fold_out)
        fold_config = replace(
            config, out=fold_out, resume=resume if config.resume and resume.exists() else None
        )
        if ctx.is_main:
            print(f"fold {i}/{folds}: validating on {', '.join(r.name for r in split.val)}")
        summary = fit(fold_config, ctx, data, split)
        per_fold.append(
            {
                "fold": i,
                "checkpoint": fold_out.name,
                "val_recordings": summary["val_recordings"],
                "frames": summary["frames"],
                "final": summary["final"],
                "best": summary["best"],
                "final_val_videos": summary["final_val_videos"],
                "train_time_s": summary["train_time_s"],
                "images_per_s": summary["images_per_s"],
            }
        )
    keys = ("val_frame_acc", "val_video_acc", "val_video_acc_majority", "val_loss")
    aggregate: dict[str, Any] = {}
    for stat, fn in (("mean", np.mean), ("std", np.std)):
        aggregate[stat] = {
            part: {k: float(fn([f[part][k] for f in per_fold])) for k in keys}
            for part in ("final", "best")
        }
        for k in ("train_time_s", "images_per_s"):
            aggregate[stat][k] = float(fn([f[k] for f in per_fold]))
    result = {
        "data": Path(config.data).resolve().name,
        "classes": list(data.index.class_names),
        "folds": folds,
        "arch": resolve_arch(config.arch),
        "seed": config.seed,
        "epochs": config.epochs,
        "input_size": config.input_size,
        "skipped": [{"name": s.name, "reason": s.reason} for s in data.skipped],
        "per_fold": per_fold,
        **aggregate,
    }
    if ctx.is_main:
        text = json.dumps(result, indent=2) + "\n"
        try:
            report.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(report, text.encode("utf-8"), private=False)  # the umask decides
        except OSError as exc:
            raise TrainingOutputError(
                f"cannot write the cross-validation report {report}: {exc.strerror or exc}; "
                f"the {folds} fold checkpoints are saved (rerun with --resume to write it)"
            ) from exc
        m = aggregate["mean"]["final"]
        print(
            f"{folds}-fold cross-validation: mean final val frame acc {m['val_frame_acc']:.3f}, "
            f"video acc {m['val_video_acc']:.3f}; report written to {report}"
        )
    return result
