"""Train a classifier on a hospital's own pCLE recordings: ``python -m models.train``.

::

    python -m models.train --data ROOT --arch resnet18 --out model.pt
    torchrun --nproc_per_node 4 -m models.train --data ROOT --arch resnet50 --out model.pt
    python -m models.train --data ROOT --arch resnet18 --out cv.pt --folds 5

ROOT holds one folder per class (see :mod:`models.datasets`). Every recording is decoded once
into FOV-cropped grey frames at the input size (:mod:`models.frame_cache`), split by recording
(never by frame), and the network (:func:`models.architectures.build_model`, from scratch,
Dropout before the classifier) is trained with the paper's recipe for its architecture:
AdamW (lr 1e-3, weight decay 0.01) for ResNet-18 and MobileNetV2, SGD (lr 0.1, momentum 0.9,
weight decay 1e-4, the torchvision ImageNet value; the recipe leaves it open) with the rate
divided by 10 every 30 epochs for ResNet-50. Frames are rotated by any angle, mirrored and
jittered in brightness and contrast (:mod:`models.augment`).

Files written (by rank 0 only), all atomically, so an interruption or a full disk never
leaves a damaged file and never destroys an earlier one:

- ``OUT``: the best epoch (highest validation frame accuracy, ties broken by lower validation
  loss; the last epoch without validation), a :mod:`models.checkpoint` file for the viewer
  whose metadata ``training`` entry holds the run's summary;
- ``OUT`` with suffix ``.last.pt``: the last finished epoch, also a viewer checkpoint;
- ``OUT`` with suffix ``.resume.pt``: the resume file (:mod:`models.resume`).

``--resume`` continues from the last finished epoch and gives the same weights an
uninterrupted run would (bit for bit on the CPU): every random stream (frame order,
augmentation, dropout) is derived from ``(seed, epoch, ...)``, not from generator state.

Normalisation: by default the mean and standard deviation of the training frames' grey levels
(surround included: that is what the network sees), the same for the three channels, are
stored in the checkpoint; ``--normalization imagenet`` uses the ImageNet constants instead.

Under ``torchrun`` the same command trains with DistributedDataParallel (``gloo`` on the CPU,
``nccl`` on CUDA, one or many machines): each process trains on its share of every epoch
(``DistributedSampler``), metrics are summed over processes, ``--batch-size`` is the total over
all processes, and only rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from models.architectures import build_model, default_target_layer, resolve_arch
from models.augment import AugmentConfig, augment, normalize
from models.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    save_checkpoint,
)
from models.datasets import (
    DatasetError,
    DatasetIndex,
    FrameDataset,
    Recording,
    Split,
    discover,
    kfold_splits,
    split_train_val,
)
from models.distributed import DistributedContext, init_distributed
from models.frame_cache import DecodedRecording, FrameCache, FrameSampling, SkippedRecording
from models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from models.resume import ResumeError, ResumeState, load_resume_state, save_resume_state

__all__ = [
    "RECIPES",
    "PreparedData",
    "Recipe",
    "TrainConfig",
    "TrainingError",
    "build_parser",
    "config_from_args",
    "cross_validate",
    "fit",
    "format_summary",
    "last_checkpoint_path",
    "main",
    "prepare_data",
    "resume_file_path",
    "train",
]

DEFAULT_INTENDED_USE = "research use only, not for clinical use"


class TrainingError(Exception):
    """Training cannot go on; the message says why and what is left on disk."""


@dataclass(frozen=True)
class Recipe:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: ``"adamw"`` or ``"sgd"`` (SGD with momentum).
        lr: Initial learning rate.
        weight_decay: Weight decay (decoupled for AdamW).
        momentum: SGD momentum (unused by AdamW).
        lr_step: Multiply the rate by ``lr_gamma`` every ``lr_step`` epochs; 0: constant rate.
        lr_gamma: The factor of each step.
    """

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float = 0.9
    lr_step: int = 0
    lr_gamma: float = 0.1


RECIPES: dict[str, Recipe] = {
    "resnet18": Recipe("adamw", 1e-3, 0.01),
    "mobilenet_v2": Recipe("adamw", 1e-3, 0.01),
    "resnet50": Recipe("sgd", 0.1, 1e-4, momentum=0.9, lr_step=30, lr_gamma=0.1),
}
"""The default recipe of each architecture (Roddan et al.; see the module docstring)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the command line fills it (see ``--help``).

    ``None`` in a recipe field (``optimizer`` ... ``lr_gamma``) means the architecture's
    default from :data:`RECIPES`. ``batch_size`` is the total over all processes; on CUDA it
    is halved until a training step fits in memory. ``augment=None`` switches augmentation
    off. ``weights_digest`` (a testing aid) names a folder where every process writes a hash
    of its final weights.
    """

    data: Path
    out: Path
    arch: str = "resnet18"
    epochs: int = 30
    input_size: int = 224
    batch_size: int = 256
    every_k: int = 1
    dedup_threshold: float = 0.005
    val_fraction: float = 0.2
    val_videos: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    max_steps: int | None = None
    resume: Path | None = None
    dropout: float = 0.2
    trunk_dropout: float = 0.0
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    lr_step: int | None = None
    lr_gamma: float | None = None
    normalization: str = "dataset"
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    intended_use: str = DEFAULT_INTENDED_USE
    cache_dir: Path | None = None
    progress: bool = True
    weights_digest: Path | None = None

    def recipe(self) -> Recipe:
        """The architecture's recipe with this config's overrides applied."""
        base = RECIPES[resolve_arch(self.arch)]
        overrides = {
            name: getattr(self, name)
            for name in ("optimizer", "lr", "weight_decay", "momentum", "lr_step", "lr_gamma")
            if getattr(self, name) is not None
        }
        return replace(base, **overrides)


def last_checkpoint_path(out: str | os.PathLike[str]) -> Path:
    """``model.pt`` -> ``model.last.pt``: the checkpoint of the last finished epoch."""
    return Path(out).with_suffix(".last.pt")


def resume_file_path(out: str | os.PathLike[str]) -> Path:
    """``model.pt`` -> ``model.resume.pt``: the resume file of a run."""
    return Path(out).with_suffix(".resume.pt")


# ----------------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class PreparedData:
    """A discovered and decoded data set.

    Attributes:
        index: What the data set root holds.
        decoded: The readable recordings' frames.
        skipped: The unreadable recordings and why.
        decode_time_s: Seconds spent decoding (or reading the cache).
    """

    index: DatasetIndex
    decoded: tuple[DecodedRecording, ...]
    skipped: tuple[SkippedRecording, ...]
    decode_time_s: float

    @property
    def readable(self) -> tuple[Recording, ...]:
        """The recordings that decoded."""
        return tuple(d.recording for d in self.decoded)


def prepare_data(config: TrainConfig, ctx: DistributedContext) -> PreparedData:
    """Discover the data set and decode every recording once (skipping unreadable ones).

    With a cache folder, the first process on each machine decodes and fills the cache
    before the others read it.

    Raises:
        DatasetError: For an unusable layout (see :func:`models.datasets.discover`), or a
            class none of whose recordings can be read.
    """
    index = discover(config.data)
    cache = FrameCache(
        config.input_size, FrameSampling(config.every_k, config.dedup_threshold), config.cache_dir
    )
    start = time.perf_counter()
    first = config.cache_dir is None or ctx.local_rank == 0
    if not first:
        ctx.barrier()
    decoded, skipped = cache.load_all(
        index.recordings, workers=config.workers, progress=config.progress and _tty(ctx)
    )
    if first and config.cache_dir is not None:
        ctx.barrier()
    empty = [c for c in index.class_names if not any(d.recording.class_name == c for d in decoded)]
    if empty:
        raise DatasetError(
            f"no readable recording in class {', '.join(map(repr, empty))}; skipped: "
            + "; ".join(f"{s.name}: {s.reason}" for s in skipped)
        )
    return PreparedData(index, tuple(decoded), tuple(skipped), time.perf_counter() - start)


def _tty(ctx: DistributedContext) -> bool:
    return ctx.is_main and sys.stderr.isatty()


# ------------------------------------------------------------------------------ training


def _seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (independent streams for different tuples)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> 1)


# Stream tags, so that e.g. the augmentation and dropout streams of an epoch differ.
_DROPOUT, _AUGMENT = 1, 2


def _build_optimizer(
    model: nn.Module, recipe: Recipe
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    if recipe.optimizer == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
    elif recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
        )
    else:
        raise TrainingError(f"unknown optimizer {recipe.optimizer!r}; use adamw or sgd")
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, recipe.lr_step, recipe.lr_gamma)
        if recipe.lr_step > 0
        else None
    )
    return optimizer, scheduler


def _largest_fitting_batch(
    model: nn.Module, batch: int, size: int, device: torch.device, warn: bool
) -> int:
    """Halve ``batch`` until a training step of ``model`` fits in GPU memory.

    The model's weights and buffers are restored afterwards.
    """
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    while True:
        failed = False
        try:
            x = torch.zeros(batch, 3, size, size, device=device)
            model(x).float().logsumexp(dim=1).mean().backward()
        except torch.cuda.OutOfMemoryError:
            failed = True
        x = None
        model.zero_grad(set_to_none=True)
        if not failed:
            break
        torch.cuda.empty_cache()
        if batch == 1:
            raise TrainingError(f"a batch of 1 frame at {size} px does not fit in GPU memory")
        batch //= 2
        if warn:
            print(f"out of GPU memory: trying a batch of {batch} per process", file=sys.stderr)
    model.load_state_dict(saved)
    return batch


def _batches(order: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Consecutive index chunks of ``size`` from ``order``."""
    chunks = list(order.split(size))
    # BatchNorm cannot train on a batch of one frame; that frame waits for the next epoch.
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks


def _run_settings(
    config: TrainConfig, class_names: Sequence[str], split: Split, recipe: Recipe
) -> dict[str, Any]:
    """The settings that define a run; a resume under other settings is refused."""
    return {
        "arch": resolve_arch(config.arch),
        "classes": list(class_names),
        "input_size": config.input_size,
        "dropout": config.dropout,
        # only when used, so that runs started before the option existed still resume
        **({"trunk_dropout": config.trunk_dropout} if config.trunk_dropout else {}),
        "recipe": asdict(recipe),
        "batch_size": config.batch_size,
        "every_k": config.every_k,
        "dedup_threshold": config.dedup_threshold,
        "train_recordings": [r.name for r in split.train],
        "val_recordings": [r.name for r in split.val],
        "seed": config.seed,
        "normalization": config.normalization,
        "augment": asdict(config.augment) if config.augment is not None else None,
    }


class _Trainer:
    """One training run on one split (one process of it under DDP)."""

    def __init__(
        self, config: TrainConfig, ctx: DistributedContext, data: PreparedData, split: Split
    ) -> None:
        self.config, self.ctx, self.data, self.split = config, ctx, data, split
        self.arch = resolve_arch(config.arch)
        self.recipe = config.recipe()
        self.class_names = data.index.class_names
        by_name = {d.recording.name: d for d in data.decoded}
        self.train_set = FrameDataset([by_name[r.name] for r in split.train])
        self.val_set = FrameDataset([by_name[r.name] for r in split.val]) if split.val else None
        if config.normalization == "imagenet":
            self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        elif config.normalization == "dataset":
            m, s = self.train_set.grey_stats()
            self.mean, self.std = (m, m, m), (max(s, 1e-3),) * 3
        else:
            raise TrainingError(f"unknown normalization {config.normalization!r}")
        self.settings = _run_settings(config, self.class_names, split, self.recipe)
        self.out = Path(config.out)
        self.device = ctx.device

        torch.manual_seed(config.seed)  # the same initial weights in every process
        self.module = build_model(
            self.arch, len(self.class_names), config.dropout, config.trunk_dropout
        ).to(self.device)
        self.optimizer, self.scheduler = _build_optimizer(self.module, self.recipe)
        self.epoch = 0
        self.global_step = 0
        self.best: dict[str, Any] = {}
        self.saved_best_epoch: int | None = None  # the epoch whose weights are at --out
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self.earlier_wall_s = 0.0  # wall time of earlier invocations (before a resume)
        self.images_seen = 0
        self.batch_size = 0
        self.started = time.perf_counter()
        if config.resume is not None:
            self._restore(config.resume)
        if self.batch_size == 0:
            self.batch_size = self._choose_batch_size()
        self.model = ctx.wrap(self.module)

    # -------------------------------------------------------------------------- set-up

    def _choose_batch_size(self) -> int:
        per_process = math.ceil(len(self.train_set) / self.ctx.world_size)
        batch = max(1, min(self.config.batch_size // self.ctx.world_size, per_process))
        if self.device.type == "cuda":
            batch = _largest_fitting_batch(
                self.module, batch, self.config.input_size, self.device, self.ctx.is_main
            )
        return self.ctx.all_reduce_min(batch)

    def _restore(self, path: Path) -> None:
        state = load_resume_state(path, expected_arch=self.arch)
        if state.arch != self.arch:
            raise ResumeError(
                f"cannot resume from {path}: it was trained as {state.arch}, but this run asks "
                f"for {self.arch} (--arch); pass --arch {state.arch} or start a new run"
            )
        diffs = [
            f"{key}: {state.run.get(key)!r} in the resume file, {value!r} now"
            for key, value in self.settings.items()
            if state.run.get(key) != value
        ]
        if diffs:
            raise ResumeError(
                f"cannot resume from {path}: the run had other settings, so continuing would mix "
                "two runs. Differences: " + "; ".join(_shorten(d) for d in diffs)
            )
        self.module.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        self.epoch, self.global_step = state.epoch, state.global_step
        self.best, self.history = dict(state.best), list(state.history)
        self.saved_best_epoch = self.best.get("epoch")
        self.train_time_s, self.images_seen = state.train_time_s, state.images_seen
        self.earlier_wall_s = state.wall_time_s
        self.batch_size = state.batch_size * state.run.get("world_size", 1) // self.ctx.world_size
        self.batch_size = max(1, self.batch_size)
        self._say(f"resuming from {path.name}: {self.epoch} epochs done")

    # ---------------------------------------------------------------------------- loop

    def run(self) -> dict[str, Any]:
        """Train the remaining epochs; return the summary (also stored in the checkpoints)."""
        cfg = self.config
        if self.epoch >= cfg.epochs:
            self._say(f"all {cfg.epochs} epochs were already done")
        while self.epoch < cfg.epochs and not self._step_limit_reached():
            train_metrics = self._train_epoch()
            self.ctx.broadcast_buffers(self.module)
            if self.scheduler is not None:
                self.scheduler.step()
            val_metrics = self._evaluate() if self.val_set is not None else {}
            self.epoch += 1
            record = {"epoch": self.epoch, **train_metrics, **val_metrics}
            self.history.append(record)
            improved = self._is_better(val_metrics)
            if improved:
                self.best = {"epoch": self.epoch, **(val_metrics or train_metrics)}
            self._save_epoch(improved)
            self._say(_epoch_line(record, cfg.epochs, improved, self.val_set is not None))
        summary = self.summary()
        if self.ctx.is_main:
            self._finalize(summary)
        self._write_digest()
        return summary

    def _step_limit_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def _train_epoch(self) -> dict[str, Any]:
        cfg, ctx = self.config, self.ctx
        sampler = DistributedSampler(
            self.train_set,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=False,
        )
        sampler.set_epoch(self.epoch)
        batches = _batches(torch.tensor(list(sampler), dtype=torch.int64), self.batch_size)
        torch.manual_seed(_seed(cfg.seed, _DROPOUT, self.epoch, ctx.rank))
        self.model.train()
        # Loss sum, correct, frames; kept on the device so that a step never waits for the GPU.
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        show = cfg.progress and _tty(ctx)
        bar = tqdm(
            total=len(batches),
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not show,
            leave=False,
        )
        start = time.perf_counter()
        with bar:
            for step, chunk in enumerate(batches):
                frames, labels = self.train_set.batch(chunk)
                frames = frames.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                x = frames.float().div_(255.0)
                if cfg.augment is not None:
                    gen = torch.Generator().manual_seed(
                        _seed(cfg.seed, _AUGMENT, self.epoch, step, ctx.rank)
                    )
                    x = augment(x, cfg.augment, gen)
                logits = self.model(normalize(x, self.mean, self.std))
                loss = F.cross_entropy(logits, labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.global_step += 1
                with torch.no_grad():
                    n = len(chunk)
                    sums[0] += loss.detach().double() * n
                    sums[1] += (logits.argmax(dim=1) == labels).sum()
                    sums[2] += n
                if show and (step % 10 == 0 or step == len(batches) - 1):
                    loss_sum, correct, seen = sums.tolist()
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
                bar.update()
                if self._step_limit_reached():
                    break
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - start
        totals = ctx.all_reduce_sum(sums).cpu()
        if not math.isfinite(float(totals[0])):
            raise TrainingError(
                f"training diverged in epoch {self.epoch + 1} (the loss is not finite); "
                f"lower the learning rate (now {self.recipe.lr:g}, --lr)"
            )
        images = int(totals[2].item())
        self.train_time_s += elapsed
        self.images_seen += images
        frames_seen = max(float(totals[2]), 1.0)
        return {
            "train_loss": float(totals[0]) / frames_seen,
            "train_acc": float(totals[1]) / frames_seen,
            "lr": self.optimizer.param_groups[0]["lr"],
            "steps": self.global_step,
            "train_time_s": round(elapsed, 3),
            "images_per_s": round(images / elapsed, 2) if elapsed > 0 else 0.0,
        }

    @torch.no_grad()
    def _evaluate(self) -> dict[str, Any]:
        """Validation metrics: frame accuracy and loss, video accuracy by vote.

        A recording's prediction is the argmax of its frames' mean softmax probability
        (``video_acc``), or of their predicted-class counts (``video_acc_majority``).
        """
        assert self.val_set is not None
        ctx, val = self.ctx, self.val_set
        n_rec, n_cls = len(val.recordings), len(self.class_names)
        prob_sum = torch.zeros(n_rec, n_cls, dtype=torch.float64)
        votes = torch.zeros(n_rec, n_cls, dtype=torch.float64)
        sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, frames
        self.module.eval()
        mine = torch.arange(ctx.rank, len(val), ctx.world_size)
        for chunk in mine.split(max(1, 2 * self.batch_size)):
            frames, labels = val.batch(chunk)
            logits = self.module(normalize(frames.to(self.device), self.mean, self.std)).float()
            labels = labels.to(self.device)
            loss = F.cross_entropy(logits, labels, reduction="sum")
            probs = logits.softmax(dim=1).double().cpu()
            pred = probs.argmax(dim=1)
            rec = val.recording_index[chunk]
            prob_sum.index_add_(0, rec, probs)
            votes.index_add_(0, rec, F.one_hot(pred, n_cls).double())
            sums += torch.tensor(
                [loss.item(), (pred == labels.cpu()).sum().item(), len(chunk)], dtype=torch.float64
            )
        self.module.train()
        sums, prob_sum, votes = (ctx.all_reduce_sum(t) for t in (sums, prob_sum, votes))
        rec_labels = torch.tensor([r.label for r in val.recordings])
        video_pred = prob_sum.argmax(dim=1)
        return {
            "val_loss": float(sums[0] / sums[2]),
            "val_frame_acc": float(sums[1] / sums[2]),
            "val_video_acc": float((video_pred == rec_labels).double().mean()),
            "val_video_acc_majority": float((votes.argmax(dim=1) == rec_labels).double().mean()),
            "val_videos": {
                r.name: {
                    "label": r.class_name,
                    "predicted": self.class_names[int(video_pred[i])],
                    "frame_acc": round(float(votes[i, r.label] / votes[i].sum()), 4),
                }
                for i, r in enumerate(val.recordings)
            },
        }

    def _is_better(self, val: dict[str, Any]) -> bool:
        if not val or not self.best:
            return True
        acc, best_acc = val["val_frame_acc"], self.best["val_frame_acc"]
        return acc > best_acc or (acc == best_acc and val["val_loss"] < self.best["val_loss"])

    # -------------------------------------------------------------------------- saving

    def _metadata(self, summary: dict[str, Any]) -> CheckpointMetadata:
        return CheckpointMetadata(
            arch=self.arch,
            class_names=list(self.class_names),
            input_size=(self.config.input_size, self.config.input_size),
            mean=self.mean,
            std=self.std,
            target_layer=default_target_layer(self.arch),
            dropout=self.config.dropout,
            trunk_dropout=self.config.trunk_dropout,
            provenance=(
                f"trained from scratch by models.train on {summary['data']} "
                f"({len(self.split.train)} training recordings)"
            ),
            intended_use=self.config.intended_use,
            training=summary,
        )

    def _save_epoch(self, improved: bool) -> None:
        """Write the best (if improved) and last checkpoints and the resume file (rank 0).

        All processes learn whether rank 0 succeeded, so that all stop together.
        """
        error: Exception | None = None
        if self.ctx.is_main:
            try:
                meta = self._metadata(self.summary())
                if improved:
                    save_checkpoint(self.out, self.module, meta)
                save_checkpoint(last_checkpoint_path(self.out), self.module, meta)
                save_resume_state(resume_file_path(self.out), self._resume_state())
            except (CheckpointError, OSError) as exc:
                error = exc
        failed = self.ctx.all_reduce_sum(torch.tensor([1.0 if error else 0.0])).item() > 0
        if error is not None:
            done = self.epoch - 1
            kept = (
                f"the files of epoch {done} are intact ({self.out.name}: best epoch "
                f"{self.saved_best_epoch}; {resume_file_path(self.out).name}: epoch {done})"
                if done > 0
                else "no earlier epoch had been saved"
            )
            cause = _os_error(error)
            advice = "Free disk space" if cause and cause.errno == errno.ENOSPC else "Fix this"
            advice += ", then rerun with --resume to continue" if done > 0 else ", then rerun"
            raise TrainingError(
                f"could not save the checkpoints of epoch {self.epoch}: {_reason(error)}. "
                f"Nothing already saved was damaged: {kept}. {advice}."
            ) from error
        if failed:
            raise TrainingError("rank 0 could not save the checkpoints; see its message")
        if improved:
            self.saved_best_epoch = self.epoch

    def _resume_state(self) -> ResumeState:
        return ResumeState(
            arch=self.arch,
            run={**self.settings, "world_size": self.ctx.world_size},
            epoch=self.epoch,
            global_step=self.global_step,
            model={k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            best=self.best,
            history=self.history,
            batch_size=self.batch_size,
            train_time_s=self.train_time_s,
            wall_time_s=self._wall_time_s(),
            images_seen=self.images_seen,
        )

    def _finalize(self, summary: dict[str, Any]) -> None:
        """Rewrite the best checkpoint with the run's final summary (same weights)."""
        if not self.out.exists():
            return
        try:
            best = load_checkpoint(self.out).model
            save_checkpoint(self.out, best, self._metadata(summary))
        except CheckpointError as exc:
            raise TrainingError(
                f"could not store the final summary in {self.out}: {_reason(exc)}; the "
                f"checkpoint of epoch {self.best.get('epoch')} is unchanged"
            ) from exc

    def _write_digest(self) -> None:
        if self.config.weights_digest is None:
            return
        digest = hashlib.sha256()
        for name, tensor in sorted(self.module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        folder = Path(self.config.weights_digest)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{self.ctx.rank}.sha256").write_text(digest.hexdigest() + "\n")

    # ------------------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        """The run so far, JSON-like: data, split, hyper-parameters, metrics, speed."""
        split, data = self.split, self.data
        last = self.history[-1] if self.history else {}
        return {
            "data": Path(self.config.data).resolve().name,
            "classes": list(self.class_names),
            "recordings": {
                "train": _per_class(split.train, self.class_names),
                "val": _per_class(split.val, self.class_names),
            },
            "train_recordings": [r.name for r in split.train],
            "val_recordings": [r.name for r in split.val],
            "frames": {
                "train": len(self.train_set),
                "val": len(self.val_set) if self.val_set is not None else 0,
            },
            "skipped": [{"name": s.name, "reason": s.reason} for s in data.skipped],
            "epochs": self.config.epochs,
            "epochs_completed": self.epoch,
            "steps": self.global_step,
            "best_epoch": self.best.get("epoch"),
            "final": _scalars(last),
            "best": _scalars(self.best),
            "final_val_videos": last.get("val_videos", {}),
            "images_per_s": round(self.images_seen / self.train_time_s, 2)
            if self.train_time_s > 0
            else 0.0,
            "train_time_s": round(self.train_time_s, 2),
            "wall_time_s": round(self._wall_time_s(), 2),
            "decode_time_s": round(data.decode_time_s, 2),
            "arch": self.arch,
            "hyperparameters": {
                **_recipe_fields(self.recipe),
                "batch_size": self.batch_size * self.ctx.world_size,
                "epochs": self.config.epochs,
                "input_size": self.config.input_size,
                "dropout": self.config.dropout,
                "trunk_dropout": self.config.trunk_dropout,
                "every_k": self.config.every_k,
                "dedup_threshold": self.config.dedup_threshold,
                "augment": asdict(self.config.augment) if self.config.augment else None,
                "normalization": self.config.normalization,
                "seed": self.config.seed,
            },
            "processes": self.ctx.world_size,
            "device": self.device.type,
            "torch": str(torch.__version__),
        }

    def _wall_time_s(self) -> float:
        """Wall time of the run: decoding, training, validation, saving, over all resumes."""
        return self.earlier_wall_s + self.data.decode_time_s + time.perf_counter() - self.started

    def _say(self, text: str) -> None:
        if self.ctx.is_main:
            print(text, flush=True)


def _recipe_fields(recipe: Recipe) -> dict[str, Any]:
    fields = asdict(recipe)
    if recipe.optimizer != "sgd":
        del fields["momentum"]
    return fields


def _per_class(recordings: Sequence[Recording], class_names: Sequence[str]) -> dict[str, int]:
    return {c: sum(r.class_name == c for r in recordings) for c in class_names}


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_error(exc: BaseException) -> OSError | None:
    """The operating-system error behind ``exc`` (itself or its direct cause), if any."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError):
            return candidate
    return None


def _reason(exc: BaseException) -> str:
    cause = _os_error(exc)
    if cause is not None and cause.strerror:
        return f"{cause.strerror} (errno {cause.errno})"
    return str(exc)


def _epoch_line(record: dict[str, Any], epochs: int, improved: bool, has_val: bool) -> str:
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


def fit(
    config: TrainConfig, ctx: DistributedContext, data: PreparedData, split: Split
) -> dict[str, Any]:
    """Train on ``split.train``, validate on ``split.val``, write the checkpoints.

    Args:
        config: The run's settings.
        ctx: This process's place in the run.
        data: The decoded data set (from :func:`prepare_data`).
        split: Which recordings to train and validate on.

    Returns:
        The run's summary (see the module docstring); it is also stored in the checkpoints'
        metadata.

    Raises:
        TrainingError: If a checkpoint cannot be saved (earlier files stay intact).
        ResumeError: If ``config.resume`` is set and cannot be continued from.
    """
    return _Trainer(config, ctx, data, split).run()


def train(config: TrainConfig, ctx: DistributedContext) -> dict[str, Any]:
    """Discover, decode and split the data set, then :func:`fit`.

    Raises:
        DatasetError: For an unusable data set (e.g. an empty class folder, or a class with a
            single readable recording when validating).
        TrainingError, ResumeError: As :func:`fit`.
    """
    data = prepare_data(config, ctx)
    split = split_train_val(data.readable, config.val_fraction, config.val_videos, config.seed)
    return fit(config, ctx, data, split)


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
        _write_json(report, result)
        m = aggregate["mean"]["final"]
        print(
            f"{folds}-fold cross-validation: mean final val frame acc {m['val_frame_acc']:.3f}, "
            f"video acc {m['val_video_acc']:.3f}; report written to {report}"
        )
    return result


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


# ----------------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


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
        "--input-size", type=_positive_int, default=224, help="square side in px (default 224)"
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
    recipe.add_argument("--lr", type=float)
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--momentum", type=float, help="SGD only")
    recipe.add_argument("--lr-step", type=int, help="epochs between rate drops (0: constant)")
    recipe.add_argument("--lr-gamma", type=float, help="factor of each rate drop")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage error)."""
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
    try:
        if args.folds is not None:
            report = args.report or config.out.with_suffix(".folds.json")
            cross_validate(config, ctx, args.folds, report)
        else:
            summary = train(config, ctx)
            if ctx.is_main:
                print(format_summary(summary))
                print(f"best checkpoint: {config.out}")
    except (DatasetError, TrainingError, ResumeError, CheckpointError) as exc:
        if ctx.is_main:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if ctx.is_main:
            print(
                "interrupted; the files of the last finished epoch are intact: rerun with "
                "--resume to continue from there",
                file=sys.stderr,
            )
        return 130
    finally:
        ctx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
