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

Many processes or GPUs: started under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set),
the processes join one ``gloo`` process group (:func:`models.training.distributed.init_distributed`)
and share out the batches still to score, ``(method, mode, batch index)`` each, balanced by their
cost. Process r runs on ``cuda:LOCAL_RANK`` (modulo the GPU count: processes may share a GPU) for
``--device auto`` or ``cuda`` where CUDA exists, else on the CPU. A batch draws its masks from its
own seed wherever it runs, so the scores, tables and figures are those of a single-process run with
the same ``--batch-size``; only the order of the lines of ``scores.jsonl`` and the latencies differ.
Rank 0 appends its scores to ``scores.jsonl``, rank r > 0 to ``scores.rank{r}.jsonl``; at the end
rank 0 gathers the others' scores into ``scores.jsonl``, the rank files are removed, and rank 0
alone writes the tables and figures. A rerun with any number of processes first folds the rank files
an interrupted run left into ``scores.jsonl``. ``--out`` must be a folder every process sees (one
machine, or a shared file system). Only rank 0's command prints the table::

    torchrun --standalone --nproc_per_node 4 -m app evaluate \\
        --data DATA --checkpoint CKPT --out OUT

Trust report (:mod:`app.evaluate.trust`, unless ``--no-trust``): rank 0 alone runs the model once
with Dropout off and ``--passes`` times with Dropout on over every evaluated frame (torch seeded
with ``--seed`` first, so a rerun gives the same report), takes each frame's mean CV in the field
of view from the first method's proposed scores (``mean_cv`` of the MC records), and writes
``trust.json``, ``trust.md``, ``reliability.png`` and ``risk_coverage.png``: calibration,
abstention, conformal sets and how well each uncertainty signal flags errors, with intervals from
a bootstrap over recordings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from app.calibration.fitting import passes_probabilities
from app.calibration.rules import Calibration, CalibrationError
from app.evaluate.comparison import paired_comparison
from app.evaluate.frames import EvalFrame, load_frames, to_input
from app.evaluate.localisation import iou, pointing_hit, upsampled
from app.evaluate.scoring import score_explanations
from app.evaluate.tables import jsonable, summarise, write_t_study, write_table, write_trust
from app.evaluate.trust import trust_report
from app.explain import METHODS, Explainer, ExplainerError, Explanation, resolve_device
from app.explain.runtimes import default_cache_dir
from app.pipeline.results import mean_cv_in_fov
from app.render.figures import compose_figure
from models.checkpoint import CheckpointError, checkpoint_sha256, load_checkpoint
from models.data.frame_cache import FrameSampling, SkippedRecording
from models.data.index import DatasetError, Recording, discover
from models.training.distributed import DistributedContext, init_distributed

ORIGINAL, PROPOSED = "original", "proposed"
DEFAULT_T_VALUES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 40, 80, 100)
RANK_LOG = re.compile(r"scores\.rank(\d+)\.jsonl")
"""Name of the scores log of rank r > 0 under torchrun (rank 0 writes ``scores.jsonl``)."""
WAIT = timedelta(hours=12)
"""How long a process that finished its share waits for the others under torchrun."""

_RecordKey = tuple[str, str, str, int]
"""(method, mode, recording, frame): one line of ``scores.jsonl``."""
_Records = dict[_RecordKey, dict[str, Any]]


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
    backend: str = "torch"
    batch_size: int = 8
    figures: int = 4
    progress: bool = True
    trust: bool = True
    trust_window: int = 5
    bootstrap: int = 1000


@dataclass(frozen=True)
class _Job:
    method: str
    mode: str
    mc: bool
    passes: int
    frames: Sequence[EvalFrame] = field(repr=False)


@dataclass(frozen=True)
class _Batch:
    """The frames of batch ``index`` of ``job`` still to score; ``index`` seeds its masks."""

    job: _Job
    index: int
    frames: tuple[EvalFrame, ...] = field(repr=False)

    @property
    def cost(self) -> int:
        return len(self.frames) * (self.job.passes + 1)


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
        ("--max-frames", 1 if config.max_frames is None else config.max_frames),
        ("--trust-window", config.trust_window),
        ("--bootstrap", config.bootstrap),
    ):
        if value < 1:
            raise EvaluationError(f"{name} must be at least 1, got {value}")
    if any(t < 1 for t in config.t_values):
        raise EvaluationError(f"--t-study values must be at least 1, got {config.t_values}")
    if not config.data.is_dir():
        raise EvaluationError(f"no such data folder: {config.data}")


def _join(config: EvaluationConfig) -> tuple[DistributedContext, bool]:
    """This process's place and device; joins torchrun's process group when started by it.

    Returns the context and whether this call created the process group (and so ends it).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        try:
            device = resolve_device(config.device)
        except (ExplainerError, RuntimeError) as exc:
            raise EvaluationError(f"--device {config.device}: {exc}") from None
        return DistributedContext(0, 1, 0, device), False
    if not torch.distributed.is_available():
        raise EvaluationError("started by torchrun, but this torch has no torch.distributed")
    owned = not torch.distributed.is_initialized()
    try:
        ctx = init_distributed(config.device, backend="gloo", timeout=WAIT)
    except ValueError as exc:
        raise EvaluationError(f"--device {config.device}: {exc}") from None
    return ctx, owned


def _load_model(config: EvaluationConfig, device: torch.device) -> tuple[torch.nn.Module, Any]:
    try:
        model, metadata = load_checkpoint(config.checkpoint, device=device)
    except CheckpointError as exc:
        raise EvaluationError(f"bad checkpoint: {exc}") from None
    h, w = metadata.input_size
    if h != w:
        raise EvaluationError(f"evaluate needs a square input size, the checkpoint has {h}x{w}")
    return model, metadata


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


def _find(jobs: Sequence[_Job], method: str, mode: str) -> _Job:
    return next(j for j in jobs if j.method == method and j.mode == mode)


def _key(method: str, mode: str, recording: str, frame: int) -> _RecordKey:
    return method, mode, recording, int(frame)


def _record_key(record: dict[str, Any]) -> _RecordKey:
    return _key(record["method"], record["mode"], record["recording"], record["frame"])


@contextlib.contextmanager
def _appender(path: Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A function appending one record as a line to ``path``, flushed at once."""
    torn = False  # a last line cut short by an interrupted run: new lines start on their own
    if path.exists() and path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with path.open("a") as fh:
        if torn:
            fh.write("\n")

        def write(record: dict[str, Any]) -> None:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        yield write


def _rank_log(out: Path, rank: int) -> Path:
    return out / ("scores.jsonl" if rank == 0 else f"scores.rank{rank}.jsonl")


def _consolidate(log: Path) -> _Records:
    """The records of ``log``, after folding in (and removing) the rank logs beside it."""
    records = {_record_key(r): r for r in _read_records(log)}
    leftovers = sorted(p for p in log.parent.iterdir() if RANK_LOG.fullmatch(p.name))
    if leftovers:
        with _appender(log) as write:
            for path in leftovers:
                for record in _read_records(path):
                    if _record_key(record) not in records:
                        records[_record_key(record)] = record
                        write(record)
        for path in leftovers:
            path.unlink()
    return records


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
    cvs = result.cv if result.batched else result.cv.unsqueeze(0)
    latency = result.timings_ms.get("total", math.nan) / len(frames)
    records = []
    for frame, score, map_, cv in zip(frames, scores, maps, cvs, strict=True):
        loc_iou = loc_hit = math.nan
        if frame.mask is not None:
            up = upsampled(map_, frame.image.shape[-1])
            loc_iou = iou(up, frame.mask, frame.fov_mask)
            loc_hit = pointing_hit(up, frame.mask, frame.fov_mask)
        # The risk map's mean in the field of view (MC jobs: one pass has no variation).
        extra: dict[str, float] = {}
        if job.mc:
            mean_cv = mean_cv_in_fov(upsampled(cv, frame.image.shape[-1]), frame.fov_mask)
            extra["mean_cv"] = math.nan if mean_cv is None else mean_cv
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
                **extra,
            }
        )
    return records


def _pending(jobs: Sequence[_Job], batch_size: int, done: Collection[_RecordKey]) -> list[_Batch]:
    """The batches with frames not in ``done``, in run order; each keeps only those frames."""
    batches = []
    for job in jobs:
        for start in range(0, len(job.frames), batch_size):
            chunk = job.frames[start : start + batch_size]
            missing = tuple(f for f in chunk if _key(job.method, job.mode, *f.key) not in done)
            if missing:
                batches.append(_Batch(job, start // batch_size, missing))
    return batches


def _share(batches: Sequence[_Batch], rank: int, world_size: int) -> list[_Batch]:
    """Process ``rank``'s batches, in run order.

    The costliest batch goes first, each to the process with the least work so far (the lowest
    rank on ties), so every process computes the same split.
    """
    if world_size == 1:
        return list(batches)
    load = [0] * world_size
    owner = [0] * len(batches)
    for i in sorted(range(len(batches)), key=lambda i: -batches[i].cost):
        owner[i] = min(range(world_size), key=load.__getitem__)
        load[owner[i]] += batches[i].cost
    return [b for b, r in zip(batches, owner, strict=True) if r == rank]


def _run_batches(
    batches: Sequence[_Batch],
    model: torch.nn.Module,
    metadata: Any,
    device: torch.device,
    config: EvaluationConfig,
    sink: Callable[[dict[str, Any]], None],
    progress: bool,
) -> int:
    """Score ``batches`` and pass each record to ``sink``; returns the number of frames."""
    scored = 0
    explainers: dict[int, Explainer] = {}  # one per job, as its batches come in a row
    todo = sum(len(b.frames) for b in batches)
    with tqdm(total=todo, desc="scoring", unit="img", disable=not progress) as bar:
        for batch in batches:
            job = batch.job
            if id(job) not in explainers:
                explainers = {
                    id(job): Explainer(
                        model,
                        job.method,
                        job.passes,
                        job.mc,
                        metadata.target_layer,
                        device,
                        backend=config.backend,
                        cache_dir=default_cache_dir(),
                    )
                }
            explainer = explainers[id(job)]
            explainer.seed = _batch_seed(config.seed, batch.index)
            bar.set_postfix_str(f"{job.method} {job.mode}")
            for record in _score_batch(explainer, job, batch.frames, metadata.mean, metadata.std):
                sink(record)
            scored += len(batch.frames)
            bar.update(len(batch.frames))
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
    ``trust.json/.md``, ``reliability.png`` and ``risk_coverage.png`` (the trust report, unless
    ``config.trust`` is False), ``scores.jsonl`` (per-image scores, the resume log) and
    ``run.json`` (pinned settings).

    Under ``torchrun`` every process calls this; they share the scoring, rank 0 writes the
    outputs, and every process returns rank 0's report (the notes on rank 0 only, so that they
    are printed once).

    Returns:
        ``{"rows", "comparisons", "t_study", "scored", "reused", "outputs", "trust", "notes",
        "info"}``; ``trust`` is the path of ``trust.md``, or None when it was not written.

    Raises:
        EvaluationError: a missing data root, a bad checkpoint, unknown methods, bad options,
            no readable frame, a class none of whose recordings can be read, or an output
            folder holding other settings' scores.
    """
    _check(config)
    ctx, owned = _join(config)
    try:
        report = _evaluate(config, ctx)
    finally:
        if owned:
            ctx.shutdown()
    return report


def _evaluate(config: EvaluationConfig, ctx: DistributedContext) -> dict[str, Any]:
    """The run on one process: select the frames, resume, plan, score this process's share,
    gather the scores, then (rank 0) write the tables and figures."""
    model, metadata = _load_model(config, ctx.device)
    selection = _select_frames(config, metadata)
    log = config.out / "scores.jsonl"
    records, done = _resume(log, config, ctx, metadata, selection.dedup)
    reused = len(done)
    plan = _Plan.of(config, selection.frames)
    mine, scored = _score_share(plan, done, model, metadata, config, ctx)
    others = _gather_scores(mine, log, ctx)
    if ctx.enabled and not ctx.is_main:
        _rank_log(config.out, ctx.rank).unlink(missing_ok=True)
        report = ctx.broadcast_object(None)  # once rank 0 has written everything
        return {**report, "notes": []}
    records.update((_record_key(r), r) for r in mine + others)
    scored += len(others)
    info = _info(config, ctx, metadata, selection, scored, reused)
    rows, comparisons, outputs = _write_table(plan, records, info, selection.frames, config)
    t_rows, t_outputs = _write_t_study(plan, records, config)
    outputs += t_outputs
    figure_frames = selection.frames[: config.figures]
    outputs += _write_figures(figure_frames, model, metadata, ctx.device, config)
    trust_paths: list[Path] = []
    trust_notes: list[str] = []
    if config.trust:
        trust_paths, trust_notes = _write_trust(selection, records, model, metadata, ctx, config)
    outputs += trust_paths
    report = {
        "rows": rows,
        "comparisons": comparisons,
        "t_study": t_rows,
        "scored": scored,
        "reused": reused,
        "outputs": outputs,
        "trust": next((p for p in trust_paths if p.name == "trust.md"), None),
        "notes": selection.notes + trust_notes,
        "info": jsonable(info),
    }
    ctx.broadcast_object(report)  # no-op for one process; releases the others
    return report


@dataclass(frozen=True)
class _Selection:
    """The frames to score, the sampling's deduplication threshold, and notes on the choice."""

    recordings: list[Recording]
    frames: list[EvalFrame]
    dedup: float
    notes: list[str]


def _select_frames(config: EvaluationConfig, metadata: Any) -> _Selection:
    """The checkpoint's held-out recordings (all of the data root when it names none),
    sampled as its training sampled them."""
    recordings, notes = _select_recordings(config, metadata)
    hyper = metadata.training.get("hyperparameters", {}) if metadata.training else {}
    dedup = float(hyper.get("dedup_threshold", FrameSampling().dedup_threshold))
    frames, skipped = load_frames(
        recordings,
        int(metadata.input_size[0]),
        FrameSampling(config.every_k, dedup),
        config.max_frames,
    )
    notes += [f"skipped unreadable recording {s.name}: {s.reason}" for s in skipped]
    if not frames:
        raise EvaluationError("no readable frame in the selected recordings")
    _check_classes(recordings, skipped)
    return _Selection(recordings, frames, dedup, notes)


def _check_classes(recordings: Sequence[Recording], skipped: Sequence[SkippedRecording]) -> None:
    """Refuse a selection in which every recording of a class is unreadable: the tables would
    describe the other classes only, as if they were the whole held-out set (as a data root of
    one class is refused)."""
    unreadable = {s.name: s.reason for s in skipped}
    for class_name in dict.fromkeys(r.class_name for r in recordings):
        names = [r.name for r in recordings if r.class_name == class_name]
        if all(n in unreadable for n in names):
            raise EvaluationError(
                f"every recording of class {class_name!r} is unreadable ({len(names)}: "
                f"{names[0]}: {unreadable[names[0]]}"
                f"{'; ...' if len(names) > 1 else ''}), so only the other classes would be "
                "scored; replace or remove the damaged files"
            )


def _select_recordings(
    config: EvaluationConfig, metadata: Any
) -> tuple[list[Recording], list[str]]:
    """The recordings to score, and notes on the choice."""
    try:
        index = discover(config.data)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    notes: list[str] = []
    held_out = metadata.training.get("val_recordings") if metadata.training else None
    if not held_out:
        notes.append(
            "frames: ALL recordings of the data root: the checkpoint names no held-out "
            "recordings, so these may include training data"
        )
        return list(index.recordings), notes
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
    return recordings, notes


def _resume(
    log: Path, config: EvaluationConfig, ctx: DistributedContext, metadata: Any, dedup: float
) -> tuple[_Records, Collection[_RecordKey]]:
    """Pin the settings and read what earlier runs scored into ``log`` (rank 0; the others
    wait for it).

    Returns the earlier records (empty on ranks > 0) and, on every process, their keys.
    """
    config.out.mkdir(parents=True, exist_ok=True)
    records: _Records = {}
    failure = None
    if ctx.is_main:
        try:
            _pin_settings(config.out, _settings(config, metadata, dedup))
            records = _consolidate(log)
        except EvaluationError as exc:
            failure = str(exc)
    failure, done = ctx.broadcast_object((failure, set(records) if ctx.enabled else records))
    if failure:
        raise EvaluationError(failure)
    return records, done


@dataclass(frozen=True)
class _Plan:
    """The jobs of a run: every method original and proposed on every frame, then the
    T-study's (the first methods at each T on the first frames)."""

    jobs: tuple[_Job, ...]
    t_frames: Sequence[EvalFrame]
    t_methods: tuple[str, ...]

    @classmethod
    def of(cls, config: EvaluationConfig, frames: Sequence[EvalFrame]) -> _Plan:
        t_frames = frames[: config.t_study_frames]
        t_methods = config.methods[: max(config.t_study_methods, 0)]
        jobs = [
            _Job(m, mode, mc, passes, frames)
            for m in config.methods
            for mode, mc, passes in ((ORIGINAL, False, 1), (PROPOSED, True, config.passes))
        ]
        jobs += [_Job(m, f"T={t}", True, t, t_frames) for m in t_methods for t in config.t_values]
        return cls(tuple(jobs), t_frames, t_methods)

    @property
    def main_jobs(self) -> list[_Job]:
        return [j for j in self.jobs if j.mode in (ORIGINAL, PROPOSED)]

    @property
    def t_jobs(self) -> list[_Job]:
        return [j for j in self.jobs if j.mode.startswith("T=")]


def _score_share(
    plan: _Plan,
    done: Collection[_RecordKey],
    model: torch.nn.Module,
    metadata: Any,
    config: EvaluationConfig,
    ctx: DistributedContext,
) -> tuple[list[dict[str, Any]], int]:
    """Score this process's share of the frames not ``done``, each record appended at once
    to its scores log; returns the records and the number of frames scored."""
    batches = _share(_pending(plan.jobs, config.batch_size, done), ctx.rank, ctx.world_size)
    mine: list[dict[str, Any]] = []
    with _appender(_rank_log(config.out, ctx.rank)) as write:

        def sink(record: dict[str, Any]) -> None:
            write(record)
            mine.append(record)

        progress = config.progress and ctx.is_main  # rank 0's share stands for the others'
        scored = _run_batches(batches, model, metadata, ctx.device, config, sink, progress)
    return mine, scored


def _gather_scores(
    mine: list[dict[str, Any]], log: Path, ctx: DistributedContext
) -> list[dict[str, Any]]:
    """Under torchrun, collect the other processes' records on rank 0 into ``log``, and wait
    until every process is there (their rank logs can go then).

    Returns the others' records on rank 0, else none.
    """
    gathered = ctx.gather_objects([] if ctx.is_main else mine)
    if not ctx.enabled:
        return []
    others: list[dict[str, Any]] = []
    if ctx.is_main:
        assert gathered is not None
        others = [r for part in gathered for r in part]
        with _appender(log) as write:
            for record in others:
                write(record)
    ctx.barrier()  # every score is in scores.jsonl
    return others


def _rows_of(records: _Records, job: _Job) -> list[dict[str, Any]]:
    return [records[_key(job.method, job.mode, *f.key)] for f in job.frames]


def _info(
    config: EvaluationConfig,
    ctx: DistributedContext,
    metadata: Any,
    selection: _Selection,
    scored: int,
    reused: int,
) -> dict[str, Any]:
    """What the table says about the run."""
    info = {
        "checkpoint": config.checkpoint.name,
        "arch": metadata.arch,
        "data": str(config.data),
        "notes": "; ".join(selection.notes),
        "recordings": [r.name for r in selection.recordings],
        "frames": len(selection.frames),
        "every_k": config.every_k,
        "passes": config.passes,
        "seed": config.seed,
        "device": str(ctx.device),
        "batch_size": config.batch_size,
        "scored_this_run": scored,
        "reused_from_scores_jsonl": reused,
    }
    if ctx.enabled:
        info["processes"] = ctx.world_size
    return info


def _write_table(
    plan: _Plan,
    records: _Records,
    info: dict[str, Any],
    frames: Sequence[EvalFrame],
    config: EvaluationConfig,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[Path]]:
    """The table of original vs proposed per method, with their paired comparisons; returns
    the rows, the comparisons and the files written."""
    main_jobs = plan.main_jobs
    rows = [summarise(_rows_of(records, j)) for j in main_jobs]
    localisation = any(f.mask is not None for f in frames)
    comparisons = {
        method: paired_comparison(
            _rows_of(records, _find(main_jobs, method, ORIGINAL)),
            _rows_of(records, _find(main_jobs, method, PROPOSED)),
            seed=config.seed,
        )
        for method in config.methods
    }
    return rows, comparisons, write_table(rows, config.out, info, localisation, comparisons)


def _write_t_study(
    plan: _Plan, records: _Records, config: EvaluationConfig
) -> tuple[list[dict[str, Any]], list[Path]]:
    """ADCC against T, each method's original on the same frames for reference; returns the
    rows and the files written (none without a T-study)."""
    t_rows = [summarise(_rows_of(records, j)) for j in plan.t_jobs]
    t_keys = {f.key for f in plan.t_frames}
    references = {
        m: summarise([records[_key(m, ORIGINAL, *k)] for k in t_keys]) for m in plan.t_methods
    }
    if not t_rows:
        return t_rows, []
    return t_rows, write_t_study(t_rows, references, config.out)


def _trust_probabilities(
    frames: Sequence[EvalFrame],
    model: torch.nn.Module,
    metadata: Any,
    device: torch.device,
    config: EvaluationConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) deterministic and (N, T, K) MC Dropout probabilities of ``frames``, with torch's
    generators seeded from ``config.seed`` (and restored afterwards)."""
    cuda: list[int] = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    chunk = 16 * config.batch_size  # frames made into model input at a time
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        parts = [
            passes_probabilities(
                model,
                to_input(frames[i : i + chunk], metadata.mean, metadata.std).to(device),
                config.passes,
                config.batch_size,
            )
            for i in range(0, len(frames), chunk)
        ]
    return np.concatenate([d for d, _ in parts]), np.concatenate([m for _, m in parts])


def _write_trust(
    selection: _Selection,
    records: _Records,
    model: torch.nn.Module,
    metadata: Any,
    ctx: DistributedContext,
    config: EvaluationConfig,
) -> tuple[list[Path], list[str]]:
    """The trust report of the evaluated frames (:mod:`app.evaluate.trust`); returns the files
    written and notes for the terminal."""
    classes = list(metadata.class_names)
    class_of = {r.name: r.class_name for r in selection.recordings}
    frames = [f for f in selection.frames if class_of[f.recording] in classes]
    notes: list[str] = []
    if len(frames) < len(selection.frames):
        notes.append(
            f"trust report: {len(selection.frames) - len(frames)} frames of classes the model "
            "does not have are left out"
        )
    if not frames:
        return [], notes
    labels = np.array([classes.index(class_of[f.recording]) for f in frames], dtype=np.int64)
    deterministic, sampled = _trust_probabilities(frames, model, metadata, ctx.device, config)
    first = config.methods[0]
    mean_cv = np.array(
        [records[_key(first, PROPOSED, *f.key)].get("mean_cv") for f in frames], dtype=np.float64
    )  # None (a record from before mean_cv was stored) becomes NaN
    try:
        calibration = Calibration.from_metadata(metadata.calibration)
    except CalibrationError as exc:
        calibration = None
        notes.append(f"trust report: the stored calibration is left out: {exc}")
    report = trust_report(
        deterministic,
        sampled,
        labels,
        [f.recording for f in frames],
        [f.index for f in frames],
        mean_cv,
        calibration,
        window=config.trust_window,
        bootstrap=config.bootstrap,
        seed=config.seed,
    )
    notes += [f"trust report: {note}" for note in report.notes]
    return write_trust(report.to_dict(), config.out), notes
