"""One training run on one split: the epoch loop, validation, checkpoints and resume.

The network (:func:`models.architectures.build_model`, from scratch, Dropout before the
classifier) is trained with its architecture's recipe (:data:`models.training.config.RECIPES`).
Frames are rotated by any angle, mirrored and jittered in brightness and contrast
(:mod:`models.data.augment`).

Files written (by rank 0 only), all atomically, so an interruption or a full disk never
leaves a damaged file and never destroys an earlier one:

- ``OUT``: the best epoch (highest validation frame accuracy, ties broken by lower validation
  loss; the last epoch without validation), a :mod:`models.checkpoint` file for the viewer
  whose metadata ``training`` entry holds the run's summary (:mod:`models.training.summary`);
- ``OUT`` with suffix ``.last.pt``: the last finished epoch, also a viewer checkpoint;
- ``OUT`` with suffix ``.resume.pt``: the resume file (:mod:`models.training.resume`).

``--resume`` continues from the last finished epoch and gives the same weights an
uninterrupted run would (bit for bit on the CPU): every random stream (frame order,
augmentation, dropout) is derived from ``(seed, epoch, ...)``, not from generator state.

Normalisation: by default the mean and standard deviation of the training frames' grey levels
(surround included: that is what the network sees), the same for the three channels, are
stored in the checkpoint; ``--normalization imagenet`` uses the ImageNet constants instead.

Under ``torchrun`` the same command trains with DistributedDataParallel (``gloo`` on the CPU,
``nccl`` on CUDA, one or many machines): each process trains on its share of every epoch
(``DistributedSampler``), metrics are summed over processes, ``--batch-size`` is the total over
all processes, and only rank 0 prints and writes files (:mod:`models.training.distributed`).
"""

from __future__ import annotations

import errno
import hashlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from app.preprocess.model_input import IMAGENET_MEAN, IMAGENET_STD
from models.architectures import build_model, default_target_layer, resolve_arch
from models.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    save_checkpoint,
)
from models.data.augment import augment, normalize
from models.data.frame_dataset import FrameDataset
from models.data.splits import Split, split_train_val
from models.training.config import (
    Recipe,
    TrainConfig,
    TrainingError,
    TrainingOutputError,
    last_checkpoint_path,
    resume_file_path,
)
from models.training.distributed import DistributedContext
from models.training.prepare import PreparedData, prepare_data
from models.training.resume import (
    ResumeError,
    ResumeState,
    load_resume_state,
    save_resume_state,
)
from models.training.summary import epoch_line, per_class, recipe_fields, scalar_metrics

__all__ = ["fit", "train"]


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
            self._say(epoch_line(record, cfg.epochs, improved, self.val_set is not None))
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
        show = cfg.shows_progress(ctx)
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
            advice = {
                errno.ENOSPC: "Free disk space",
                errno.EDQUOT: "Free disk space",
                errno.EACCES: "Make the folder writable",
                errno.EROFS: "Make the folder writable",
            }.get(cause.errno if cause else None, "Free disk space or make the folder writable")
            advice += ", then rerun with --resume to continue" if done > 0 else ", then rerun"
            raise TrainingOutputError(
                f"could not save the checkpoints of epoch {self.epoch}: {_reason(error)}. "
                f"Nothing already saved was damaged: {kept}. {advice}."
            ) from error
        if failed:
            raise TrainingOutputError("rank 0 could not save the checkpoints; see its message")
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
            raise TrainingOutputError(
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
                "train": per_class(split.train, self.class_names),
                "val": per_class(split.val, self.class_names),
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
            "final": scalar_metrics(last),
            "best": scalar_metrics(self.best),
            "final_val_videos": last.get("val_videos", {}),
            "images_per_s": round(self.images_seen / self.train_time_s, 2)
            if self.train_time_s > 0
            else 0.0,
            "train_time_s": round(self.train_time_s, 2),
            "wall_time_s": round(self._wall_time_s(), 2),
            "decode_time_s": round(data.decode_time_s, 2),
            "arch": self.arch,
            "hyperparameters": {
                **recipe_fields(self.recipe),
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


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_error(exc: BaseException) -> OSError | None:
    """The operating-system error behind ``exc`` (itself or its direct cause), if any."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError):
            return candidate
    return None


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: a CheckpointError names its file and reason itself."""
    if isinstance(exc, CheckpointError):
        return str(exc)
    cause = _os_error(exc)
    if cause is not None and cause.strerror:
        return f"{cause.strerror} (errno {cause.errno})"
    return str(exc)


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
        TrainingOutputError: If a checkpoint cannot be saved (earlier files stay intact).
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
