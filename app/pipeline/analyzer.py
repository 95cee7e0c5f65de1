"""One frame in, one :class:`FrameResult` out: preprocessing and the T-pass explanation.

The inference worker owns one :class:`FrameAnalyzer` and replaces it between frames when the
settings change; headless tools and tests can use one directly, without threads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from app.calibration.rules import CalibratedFrame, Calibration, CalibrationError
from app.calibration.window import WindowVerdict, WindowVerdictTracker
from app.explain import Explainer, ExplainerError
from app.explain.runtimes import default_cache_dir
from app.pipeline.results import FrameResult
from app.pipeline.settings import PipelineSettings, SettingsError
from app.pipeline.sources import SourceFrame
from app.preprocess.field_of_view import FieldOfViewTracker
from app.preprocess.model_input import FramePreprocessor, PreprocessConfig, PreprocessedFrame
from app.preprocess.site_change import SiteChangeDetector
from app.render.summary import NO_TISSUE
from models.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    LoadedCheckpoint,
    checkpoint_sha256,
    load_checkpoint,
)

__all__ = ["FrameAnalyzer"]


def _file_identity(path: Path) -> tuple[str, int, int] | None:
    """(resolved path, size, mtime) of a file, to notice that a checkpoint was rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


class LoadedModelFile(NamedTuple):
    """A checkpoint file as it was when loaded: its model and metadata, its SHA-256 and its
    identity (path, size, mtime), which stay true of the model when the file changes."""

    checkpoint: LoadedCheckpoint
    sha256: str
    identity: tuple[str, int, int] | None

    @classmethod
    def load(cls, path: Path) -> LoadedModelFile:
        """Load ``path``.

        Raises:
            SettingsError: the checkpoint cannot be loaded (missing, corrupt, another
                architecture's weights, ...).
        """
        identity = _file_identity(path)
        try:
            return cls(load_checkpoint(path, device="cpu"), checkpoint_sha256(path), identity)
        except CheckpointError as exc:
            raise SettingsError(str(exc)) from exc


class FrameAnalyzer:
    """Preprocesses frames and explains them with one set of settings.

    The frame goes through :class:`app.preprocess.model_input.FramePreprocessor` as the checkpoint's
    metadata says (field of view found once and tracked over the stream, cropped and masked,
    resized, normalised), then through :class:`app.explain.Explainer` with the settings'
    method, passes, class and device; the result is moved to the CPU.

    One analyzer serves one thread at a time.

    A checkpoint with a calibration (``python -m app calibrate``) has it applied to every
    frame (:attr:`FrameResult.calibrated`), for the settings' mode (MC Dropout or not).

    Every frame also gets the video-level verdict over the last ``settings.window_s`` seconds
    at the same site (:attr:`FrameResult.verdict`, :mod:`app.calibration.window`); the site
    changes where :class:`~app.preprocess.site_change.SiteChangeDetector` says so.

    Args:
        settings: what to do.
        loaded: ``settings.checkpoint`` already loaded (to skip loading the file); None loads
            it.

    Attributes:
        checkpoint_sha256: the SHA-256 of the checkpoint file, taken when it was loaded: what
            a recording names as the model, even if the file is replaced or deleted later.

    Raises:
        SettingsError: the checkpoint cannot be loaded (missing, corrupt, another
            architecture's weights, ...), the class is unknown to the model, the device is not
            available, or the model cannot be explained this way (e.g. MC without Dropout).
    """

    def __init__(
        self, settings: PipelineSettings, *, loaded: LoadedModelFile | None = None
    ) -> None:
        self.settings = settings
        self._loaded = loaded or LoadedModelFile.load(settings.checkpoint)
        self.checkpoint_sha256 = self._loaded.sha256
        self.model, self.metadata = self._loaded.checkpoint
        meta: CheckpointMetadata = self.metadata
        self.class_names: tuple[str, ...] = tuple(meta.class_names)
        self.class_idx = self._resolve_class(settings.target_class)
        try:
            calibration = Calibration.from_metadata(meta.calibration)
        except CalibrationError as exc:
            raise SettingsError(f"{settings.checkpoint.name}: {exc}") from exc
        self.calibration = None if calibration is None else calibration.for_mode(settings.mc)
        self.preprocessor = FramePreprocessor(
            PreprocessConfig(tuple(meta.input_size), tuple(meta.mean), tuple(meta.std)),
            tracker=FieldOfViewTracker(),
        )
        self.site_detector = SiteChangeDetector()
        self.verdict_tracker = WindowVerdictTracker(settings.window_s)
        try:
            self.explainer = Explainer(
                self.model,
                settings.method,
                passes=settings.passes,
                mc=settings.mc,
                target_layer=meta.target_layer,
                device=settings.device,
                seed=settings.seed,
                backend=settings.backend,
                cache_dir=default_cache_dir(),
            )
            self._warm_up(meta)
        except ExplainerError as exc:
            raise SettingsError(f"{settings.checkpoint.name}: {exc}") from exc

    def _warm_up(self, meta: CheckpointMetadata) -> None:
        """Explain one blank input now, so that the first real frame is not slow.

        The engine finds its cut point on the first input of a shape (a few trial forwards)
        and torch initialises its kernels on first use (and a runtime backend converts and
        checks the prefix): seconds on a busy CPU, which would otherwise land on the first
        frame's latency. It also surfaces a model that cannot be
        explained (e.g. a target layer without a spatial size) when the settings are applied.
        """
        height, width = (int(v) for v in meta.input_size)
        self.explainer(torch.zeros(1, 3, height, width))

    def _resolve_class(self, target: int | str | None) -> int | None:
        if target is None:
            return None
        if isinstance(target, str):
            if target in self.class_names:
                return self.class_names.index(target)
            if not target.strip().isdigit():
                raise SettingsError(
                    f"unknown class {target!r}; this model knows {', '.join(self.class_names)}"
                )
            target = int(target)
        if not 0 <= target < len(self.class_names):
            raise SettingsError(
                f"class index {target} is out of range; this model has {len(self.class_names)} "
                f"classes ({', '.join(self.class_names)})"
            )
        return target

    def same_checkpoint(self, path: str | os.PathLike[str]) -> bool:
        """True when ``path`` is the file this analyzer loaded, unchanged since."""
        identity = _file_identity(Path(path))
        return identity is not None and identity == self._loaded.identity

    def rebuilt(self, settings: PipelineSettings, *, reload: bool = False) -> FrameAnalyzer:
        """An analyzer for new settings, reusing the loaded model (and the field-of-view
        tracker and the site detector) when the checkpoint is the same file, unchanged, or,
        unless ``reload`` was asked for (the user chose a checkpoint), the same path: changing
        T must not swap in a file that was replaced since, or fail because it was deleted.
        The verdict's window goes on too when the mode (MC or not) and its length are the
        same, since its probabilities then mean the same; otherwise it restarts.

        Raises:
            SettingsError: as the constructor.
        """
        same_path = Path(settings.checkpoint) == Path(self.settings.checkpoint)
        if not (self.same_checkpoint(settings.checkpoint) or (same_path and not reload)):
            return FrameAnalyzer(settings)
        new = FrameAnalyzer(settings, loaded=self._loaded)
        new.preprocessor.tracker = self.preprocessor.tracker
        new.site_detector = self.site_detector
        old = self.settings
        if (settings.mc, settings.window_s) == (old.mc, old.window_s):
            new.verdict_tracker = self.verdict_tracker
        return new

    def __call__(self, frame: SourceFrame, picked_time: float | None = None) -> FrameResult:
        """Analyse one frame.

        Args:
            frame: the frame from the source.
            picked_time: ``time.monotonic()`` when the worker took the frame (for the "wait"
                stage); None means now.

        Raises:
            ValueError: the frame cannot be preprocessed (wrong shape, too small, NaN).
            ExplainerError: the engine refused the input.
        """
        picked = time.monotonic() if picked_time is None else picked_time
        start = time.perf_counter()
        pre = self.preprocessor(frame.image)
        preprocess_ms = (time.perf_counter() - start) * 1e3
        explanation = self.explainer(pre.tensor, class_idx=self.class_idx).cpu()
        calibrated = (
            None
            if self.calibration is None
            else self.calibration.apply(explanation.probs.numpy()[None])[0]
        )
        verdict = self._verdict(frame, pre, explanation.mean_probs.numpy(), calibrated)
        result_time = time.monotonic()
        timings = {
            "read": frame.read_ms,
            "wait": (picked - frame.capture_time) * 1e3,
            "preprocess": preprocess_ms,
            "explain": explanation.timings_ms.get("total", 0.0),
        }
        for stage, ms in explanation.timings_ms.items():
            if stage != "total":
                timings[f"explain.{stage}"] = ms
        timings["total"] = (result_time - frame.capture_time) * 1e3
        return FrameResult(
            frame_id=frame.frame_id,
            source_index=frame.source_index,
            capture_time=frame.capture_time,
            source_time=frame.source_time,
            result_time=result_time,
            raw=frame.image,
            display=pre.display,
            fov_mask=pre.fov_mask,
            fov=pre.fov,
            explanation=explanation,
            class_names=self.class_names,
            timings_ms=timings,
            settings=self.settings,
            metadata=self.metadata,
            calibrated=calibrated,
            verdict=verdict,
        )

    def _verdict(
        self,
        frame: SourceFrame,
        pre: PreprocessedFrame,
        mean_probs: np.ndarray,
        calibrated: CalibratedFrame | None,
    ) -> WindowVerdict:
        tissue = pre.fov.source not in NO_TISSUE
        if tissue:
            new_site = self.site_detector.update(pre.display)
        else:  # the probe was lifted: whatever comes next starts a site
            self.site_detector.reset()
            new_site = True
        if calibrated is None:
            return self.verdict_tracker.update(
                frame.source_time, mean_probs, new_site=new_site, tissue=tissue
            )
        return self.verdict_tracker.update(
            frame.source_time,
            calibrated.probabilities,
            accepted_class=calibrated.predicted if calibrated.accepted else None,
            calibrated=True,
            new_site=new_site,
            tissue=tissue,
        )
