"""A training run's summary, JSON-like, and the lines printed from it.

The summary, built by the training loop (:mod:`models.training.loop`), goes into every
checkpoint's metadata (``training``) and is printed at the end of a run
(:func:`format_summary`); one line per epoch is printed as it ends (:func:`epoch_line`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from models.data.index import Recording
from models.training.config import Recipe

__all__ = ["epoch_line", "format_summary", "per_class", "recipe_fields", "scalar_metrics"]


def recipe_fields(recipe: Recipe) -> dict[str, Any]:
    """The recipe's fields as stored in a summary (``momentum`` only for SGD)."""
    fields = asdict(recipe)
    if recipe.optimizer != "sgd":
        del fields["momentum"]
    return fields


def per_class(recordings: Sequence[Recording], class_names: Sequence[str]) -> dict[str, int]:
    """Number of ``recordings`` of each class, in ``class_names`` order."""
    return {c: sum(r.class_name == c for r in recordings) for c in class_names}


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers of an epoch's metrics (without the per-video breakdown)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def epoch_line(record: dict[str, Any], epochs: int, improved: bool, has_val: bool) -> str:
    """The line printed when an epoch ends: its losses, accuracies and speed."""
    text = (
        f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f} "
        f"acc {record['train_acc']:.3f}"
    )
    if has_val:
        text += (
            f" | val loss {record['val_loss']:.4f} frame acc {record['val_frame_acc']:.3f} "
            f"video acc {record['val_video_acc']:.3f}"
        )
    text += f" | {record['images_per_s']:.1f} img/s"
    return text + (" | saved as best" if improved and has_val else "")


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable block of a run's summary (as printed at the end of training)."""
    hp = summary["hyperparameters"]
    rec, frames = summary["recordings"], summary["frames"]
    lines = [
        f"data        {summary['data']}: classes {', '.join(summary['classes'])}",
        "recordings  train "
        + ", ".join(f"{c} {n}" for c, n in rec["train"].items())
        + " | val "
        + (", ".join(f"{c} {n}" for c, n in rec["val"].items()) if frames["val"] else "none"),
        f"frames      train {frames['train']} | val {frames['val']}",
    ]
    for skipped in summary["skipped"]:
        lines.append(f"skipped     {skipped['name']}: {skipped['reason']}")
    lines += [
        f"model       {summary['arch']}, input {hp['input_size']} px, dropout {hp['dropout']}"
        + (f", trunk dropout {hp['trunk_dropout']}" if hp.get("trunk_dropout") else ""),
        f"recipe      {hp['optimizer']} lr {hp['lr']:g} wd {hp['weight_decay']:g}"
        + (f" step {hp['lr_step']} x{hp['lr_gamma']:g}" if hp["lr_step"] else "")
        + f", batch {hp['batch_size']}, {summary['processes']} process(es) on {summary['device']}",
        f"epochs      {summary['epochs_completed']}/{summary['epochs']} ({summary['steps']} steps)",
    ]
    for name in ("final", "best"):
        m = summary[name]
        if "val_frame_acc" in m:
            lines.append(
                f"{name:<12}epoch {m['epoch']}: val frame acc {m['val_frame_acc']:.3f}, "
                f"video acc {m['val_video_acc']:.3f}, loss {m['val_loss']:.4f}"
            )
        elif "train_acc" in m:
            lines.append(
                f"{name:<12}epoch {m['epoch']}: train acc {m['train_acc']:.3f} (no validation)"
            )
    lines.append(
        f"speed       {summary['images_per_s']:.1f} images/s training; "
        f"{summary['train_time_s']:.1f} s training, {summary['decode_time_s']:.1f} s decoding, "
        f"{summary['wall_time_s']:.1f} s in all"
    )
    return "\n".join(lines)
