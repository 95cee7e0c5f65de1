"""``python -m app evaluate``: original vs proposed explanations on a checkpoint's held-out videos.

For each method, the original (Dropout off, one pass) and the proposed (MC Dropout, T passes)
explainer score every frame with Poppi et al.'s metrics (:func:`app.evaluate.score_explanations`,
a batch at a time). Each scored frame is appended at once to ``scores.jsonl`` (one line per
(method, mode, recording, frame)); a rerun into the same folder skips what is there, so an
interrupted run resumes. ``run.json`` pins the settings the scores depend on, and a rerun with
other settings is refused rather than mixed in.

Seeding: the proposed explainer's dropout masks for batch ``i`` are drawn from
``SeedSequence((seed, i))``, so a run is reproducible for a given ``--batch-size``; the second
call on the explanation map E reuses the masks of the call on x (the same sub-networks).

Latency: the ``total`` of the explainer's own timings for the call on x, divided by the frames
in the batch (``--batch-size 1`` measures single-frame latency as in the viewer).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from app.evaluate.figures import compose_figure
from app.evaluate.frames import EvalFrame, load_frames, to_input
from app.evaluate.localisation import iou, pointing_hit, upsampled
from app.evaluate.scoring import score_explanations
from app.evaluate.tables import jsonable, summarise, write_t_study, write_table
from app.explain import METHODS, Explainer, ExplainerError, Explanation, resolve_device
from models.checkpoint import CheckpointError, checkpoint_sha256, load_checkpoint
from models.datasets import DatasetError, discover
from models.frame_cache import FrameSampling

ORIGINAL, PROPOSED = "original", "proposed"
DEFAULT_T_VALUES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 40, 80, 100)


class EvaluationError(Exception):
    """A user-facing failure (bad data root, checkpoint, method or option)."""


@dataclass(frozen=True)
class EvaluationConfig:
    """What ``python -m app evaluate`` was asked to do (see the CLI help for each option)."""

    data: Path
    checkpoint: Path
    out: Path
    methods: tuple[str, ...] = ("gradcam", "gradcam++", "reciprocam")
    passes: int = 10
    every_k: int = 10
    max_frames: int | None = None
    t_values: tuple[int, ...] = DEFAULT_T_VALUES
    t_study_frames: int = 50
    t_study_methods: int = 1
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    figures: int = 4
    progress: bool = True


@dataclass(frozen=True)
class _Job:
    method: str
    mode: str
    mc: bool
    passes: int
    frames: Sequence[EvalFrame] = field(repr=False)


class _Recorder:
    """Calls an explainer and keeps the first result (the call on x)."""

    def __init__(self, explainer: Explainer) -> None:
        self.explainer = explainer
        self.first: Explanation | None = None

    def __call__(self, x: torch.Tensor, class_idx: Any = None) -> Explanation:
        result = self.explainer(x, class_idx=class_idx)
        if self.first is None:
            self.first = result
        return result


def _check(config: EvaluationConfig) -> None:
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown or not config.methods:
        raise EvaluationError(
            f"unknown method(s) {unknown or '(none given)'}; available: {', '.join(METHODS)}"
        )
    for name, value in (
        ("--passes", config.passes),
        ("--every-k", config.every_k),
        ("--batch-size", config.batch_size),
        ("--max-frames", config.max_frames or 1),
    ):
        if value < 1:
            raise EvaluationError(f"{name} must be at least 1, got {value}")
    if any(t < 1 for t in config.t_values):
        raise EvaluationError(f"--t-study values must be at least 1, got {config.t_values}")
    if not config.data.is_dir():
        raise EvaluationError(f"no such data folder: {config.data}")


def _load_model(config: EvaluationConfig) -> tuple[torch.nn.Module, Any, torch.device]:
    try:
        device = resolve_device(config.device)
    except (ExplainerError, RuntimeError) as exc:
        raise EvaluationError(f"--device {config.device}: {exc}") from None
    try:
        model, metadata = load_checkpoint(config.checkpoint, device=device)
    except CheckpointError as exc:
        raise EvaluationError(f"bad checkpoint: {exc}") from None
    h, w = metadata.input_size
    if h != w:
        raise EvaluationError(f"evaluate needs a square input size, the checkpoint has {h}x{w}")
    return model, metadata, device


def _settings(config: EvaluationConfig, metadata: Any, dedup: float) -> dict[str, Any]:
    return {
        "checkpoint_sha256": checkpoint_sha256(config.checkpoint),
        "data": str(config.data.resolve()),
        "every_k": config.every_k,
        "dedup_threshold": dedup,
        "passes": config.passes,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "input_size": list(metadata.input_size),
    }


def _pin_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(k for k in settings if old.get(k) != settings[k])
        if changed:
            raise EvaluationError(
                f"{out} holds scores made with other settings ({', '.join(changed)}); "
                "use another --out or delete it"
            )
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by an interrupted run: rescored
            continue
    return records


def _key(method: str, mode: str, recording: str, frame: int) -> tuple[str, str, str, int]:
    return method, mode, recording, int(frame)


def _batch_seed(seed: int, batch: int) -> int:
    return int(np.random.SeedSequence((seed, batch)).generate_state(1)[0])


def _score_batch(
    explainer: Explainer, job: _Job, frames: Sequence[EvalFrame], mean: Any, std: Any
) -> list[dict[str, Any]]:
    recorder = _Recorder(explainer)
    scores = score_explanations(recorder, to_input(frames, mean, std))
    result = recorder.first
    assert result is not None
    maps = result.mean if result.batched else result.mean.unsqueeze(0)
    latency = result.timings_ms.get("total", math.nan) / len(frames)
    records = []
    for frame, score, map_ in zip(frames, scores, maps, strict=True):
        loc_iou = loc_hit = math.nan
        if frame.mask is not None:
            up = upsampled(map_, frame.image.shape[-1])
            loc_iou = iou(up, frame.mask, frame.fov_mask)
            loc_hit = pointing_hit(up, frame.mask, frame.fov_mask)
        records.append(
            {
                "method": job.method,
                "mode": job.mode,
                "passes": job.passes,
                "recording": frame.recording,
                "frame": frame.index,
                "label": frame.label,
                "average_drop": score.average_drop,
                "coherency": score.coherency,
                "complexity": score.complexity,
                "adcc": score.adcc,
                "class_idx": score.class_idx,
                "y": score.y,
                "o": score.o,
                "map_size": list(score.map_size),
                "input_size": list(score.input_size),
                "flags": list(score.flags),
                "latency_ms": latency,
                "iou": loc_iou,
                "pointing": loc_hit,
            }
        )
    return records


def _run_jobs(
    jobs: Sequence[_Job],
    model: torch.nn.Module,
    metadata: Any,
    device: torch.device,
    config: EvaluationConfig,
    records: dict[tuple[str, str, str, int], dict[str, Any]],
    sink: Callable[[dict[str, Any]], None],
) -> int:
    """Score what ``records`` lacks; returns the number of frames scored."""
    todo = sum(_key(j.method, j.mode, *f.key) not in records for j in jobs for f in j.frames)
    scored = 0
    with tqdm(total=todo, desc="scoring", unit="img", disable=not config.progress) as bar:
        for job in jobs:
            explainer = Explainer(
                model, job.method, job.passes, job.mc, metadata.target_layer, device
            )
            for start in range(0, len(job.frames), config.batch_size):
                chunk = job.frames[start : start + config.batch_size]
                missing = [f for f in chunk if _key(job.method, job.mode, *f.key) not in records]
                if not missing:
                    continue
                explainer.seed = _batch_seed(config.seed, start // config.batch_size)
                bar.set_postfix_str(f"{job.method} {job.mode}")
                for record in _score_batch(explainer, job, missing, metadata.mean, metadata.std):
                    records[_key(job.method, job.mode, record["recording"], record["frame"])] = (
                        record
                    )
                    sink(record)
                scored += len(missing)
                bar.update(len(missing))
    return scored


def _write_figures(
    frames: Sequence[EvalFrame],
    model: torch.nn.Module,
    metadata: Any,
    device: torch.device,
    config: EvaluationConfig,
) -> list[Path]:
    if not frames:
        return []
    folder = config.out / "figures"
    folder.mkdir(exist_ok=True)
    x = to_input(frames, metadata.mean, metadata.std)
    side = frames[0].image.shape[-1]
    paths = []
    for method in config.methods:
        names = [
            folder
            / (re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{method}_{f.recording}_{f.index}") + ".png")
            for f in frames
        ]
        if all(p.exists() for p in names):  # a resumed run keeps its figures
            paths += names
            continue
        results = [
            Explainer(model, method, passes, mc, metadata.target_layer, device, seed=config.seed)(x)
            for mc, passes in ((False, 1), (True, config.passes))
        ]
        original, proposed = (
            (r.mean, r.cv) if r.batched else (r.mean[None], r.cv[None]) for r in results
        )
        for b, frame in enumerate(frames):
            image = compose_figure(
                frame.image,
                upsampled(original[0][b], side),
                upsampled(proposed[0][b], side),
                upsampled(proposed[1][b], side),
                frame.fov_mask,
                frame.mask,
                (
                    "frame",
                    f"{method} original",
                    f"{method} proposed T={config.passes}",
                    "risk (CV)",
                ),
            )
            cv2.imwrite(str(names[b]), image)
            paths.append(names[b])
    return paths


def run_evaluation(config: EvaluationConfig) -> dict[str, Any]:
    """Run the evaluation and write its outputs into ``config.out``.

    Outputs: ``table.md/.csv/.json`` (rows: method x {original, proposed}), ``t_study.csv/.json``
    and ``t_study.png`` (ADCC vs T), ``figures/*.png`` (frame | original | proposed | CV),
    ``scores.jsonl`` (per-image scores, the resume log) and ``run.json`` (pinned settings).

    Returns:
        ``{"rows", "t_study", "scored", "reused", "outputs", "notes"}``.

    Raises:
        EvaluationError: a missing data root, a bad checkpoint, unknown methods, bad options,
            no readable frame, or an output folder holding other settings' scores.
    """
    _check(config)
    model, metadata, device = _load_model(config)
    try:
        index = discover(config.data)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None

    notes: list[str] = []
    held_out = metadata.training.get("val_recordings") if metadata.training else None
    if held_out:
        by_name = {r.name: r for r in index.recordings}
        absent = [n for n in held_out if n not in by_name]
        recordings = [by_name[n] for n in held_out if n in by_name]
        if absent:
            notes.append(f"held-out recordings not found under the data root: {absent}")
        if not recordings:
            raise EvaluationError(
                f"none of the checkpoint's held-out recordings ({held_out}) is in {config.data}"
            )
        notes.append(f"frames: the checkpoint's {len(recordings)} held-out recordings")
    else:
        recordings = list(index.recordings)
        notes.append(
            "frames: ALL recordings of the data root: the checkpoint names no held-out "
            "recordings, so these may include training data"
        )

    hyper = metadata.training.get("hyperparameters", {}) if metadata.training else {}
    dedup = float(hyper.get("dedup_threshold", FrameSampling().dedup_threshold))
    frames, skipped = load_frames(
        recordings,
        int(metadata.input_size[0]),
        FrameSampling(config.every_k, dedup),
        config.max_frames,
    )
    notes += [f"skipped unreadable recording {s}" for s in skipped]
    if not frames:
        raise EvaluationError("no readable frame in the selected recordings")

    config.out.mkdir(parents=True, exist_ok=True)
    _pin_settings(config.out, _settings(config, metadata, dedup))
    log = config.out / "scores.jsonl"
    records = {
        _key(r["method"], r["mode"], r["recording"], r["frame"]): r for r in _read_records(log)
    }
    reused = len(records)

    t_frames = frames[: config.t_study_frames]
    t_methods = config.methods[: max(config.t_study_methods, 0)]
    jobs = [
        _Job(m, mode, mc, passes, frames)
        for m in config.methods
        for mode, mc, passes in ((ORIGINAL, False, 1), (PROPOSED, True, config.passes))
    ]
    jobs += [_Job(m, f"T={t}", True, t, t_frames) for m in t_methods for t in config.t_values]
    with log.open("a") as fh:

        def sink(record: dict[str, Any]) -> None:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        scored = _run_jobs(jobs, model, metadata, device, config, records, sink)

    def rows_of(job: _Job) -> list[dict[str, Any]]:
        return [records[_key(job.method, job.mode, *f.key)] for f in job.frames]

    main_jobs = [j for j in jobs if j.mode in (ORIGINAL, PROPOSED)]
    rows = [summarise(rows_of(j)) for j in main_jobs]
    localisation = any(f.mask is not None for f in frames)
    info = {
        "checkpoint": config.checkpoint.name,
        "arch": metadata.arch,
        "data": str(config.data),
        "notes": "; ".join(notes),
        "recordings": [r.name for r in recordings],
        "frames": len(frames),
        "every_k": config.every_k,
        "passes": config.passes,
        "seed": config.seed,
        "device": str(device),
        "batch_size": config.batch_size,
        "scored_this_run": scored,
        "reused_from_scores_jsonl": reused,
    }
    outputs = write_table(rows, config.out, info, localisation)

    t_rows = [summarise(rows_of(j)) for j in jobs if j.mode.startswith("T=")]
    t_keys = {f.key for f in t_frames}
    references = {m: summarise([records[_key(m, ORIGINAL, *k)] for k in t_keys]) for m in t_methods}
    if t_rows:
        outputs += write_t_study(t_rows, references, config.out)
    outputs += _write_figures(frames[: config.figures], model, metadata, device, config)
    return {
        "rows": rows,
        "t_study": t_rows,
        "scored": scored,
        "reused": reused,
        "outputs": outputs,
        "notes": notes,
        "info": jsonable(info),
    }
