"""Settings changed at runtime: applied between frames; a bad checkpoint is reported and the
previous model keeps running."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from app.pipeline import (
    EventKind,
    FrameResult,
    IterableSource,
    Pipeline,
    PipelineEvent,
    PipelineSettings,
    SettingsError,
)
from models.architectures import build_model
from models.checkpoint import FORMAT, FORMAT_VERSION, CheckpointMetadata, checkpoint_sha256
from tests.pipeline_support import CLASSES, numbered_frames, tiny_checkpoint, wait_until


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def live_pipeline(checkpoint: Path) -> Pipeline:
    settings = PipelineSettings(checkpoint, method="gradcam++", passes=3, device="cpu")
    return Pipeline(IterableSource(numbered_frames(50_000), fps=100.0), settings, mode="live")


def next_result_where(
    pipeline: Pipeline, condition: Callable[[FrameResult], bool], timeout: float = 20.0
) -> FrameResult:
    found: list[FrameResult] = []

    def check() -> bool:
        result = pipeline.wait_result(0.05)
        if result is not None and condition(result):
            found.append(result)
        return bool(found)

    assert wait_until(check, timeout=timeout, every=0.0)
    return found[0]


def events_of(pipeline: Pipeline, kind: EventKind, timeout: float = 20.0) -> list[PipelineEvent]:
    seen: list[PipelineEvent] = []

    def check() -> bool:
        seen.extend(e for e in pipeline.events() if e.kind is kind)
        return bool(seen)

    assert wait_until(check, timeout=timeout)
    return seen


def test_method_and_passes_change_on_the_next_results(checkpoint: Path) -> None:
    with live_pipeline(checkpoint) as pipeline:
        first = next_result_where(pipeline, lambda r: True)
        assert (first.explanation.method, first.explanation.passes) == ("gradcam++", 3)
        version = pipeline.update_settings(method="Grad-CAM", passes=5)
        applied = events_of(pipeline, EventKind.SETTINGS_APPLIED)
        assert applied[0].version == version == pipeline.settings_version
        changed = next_result_where(pipeline, lambda r: r.settings.method == "gradcam")
        assert changed.explanation.method == "gradcam" and changed.explanation.passes == 5
        assert changed.explanation.maps.shape[0] == 5
        # Once applied, never back: every later result uses the new settings.
        for _ in range(3):
            later = next_result_where(pipeline, lambda r: True)
            assert later.settings.passes == 5
        pipeline.update_settings(target_class="metastasis", mc=False)
        chosen = next_result_where(pipeline, lambda r: not r.settings.mc)
        assert chosen.class_name == "metastasis" and chosen.explanation.passes == 1


def test_invalid_values_are_refused_at_once(checkpoint: Path) -> None:
    pipeline = live_pipeline(checkpoint)
    try:
        with pytest.raises(SettingsError, match="from 1 to 64"):
            pipeline.update_settings(passes=65)
        with pytest.raises(SettingsError, match="unknown method"):
            pipeline.update_settings(method="lime")
        with pytest.raises(SettingsError, match="unknown setting"):
            pipeline.update_settings(colour="red")
        with pytest.raises(SettingsError, match=r"unknown backend 'tensorrt'; use auto, torch"):
            pipeline.update_settings(backend="tensorrt")
    finally:
        assert pipeline.stop()


def test_a_bad_checkpoint_is_reported_and_the_old_model_keeps_running(
    checkpoint: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    # Weights of one architecture under metadata claiming another.
    mismatched = tmp_path / "mismatched.pt"
    meta = CheckpointMetadata(
        arch="mobilenet_v2",
        class_names=["a", "b", "c"],
        input_size=(64, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="features.18",
        dropout=0.2,
        provenance="test",
    )
    torch.save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metadata": meta.to_dict(),
            "state_dict": build_model("resnet18", 3).state_dict(),
        },
        mismatched,
    )
    with live_pipeline(checkpoint) as pipeline:
        next_result_where(pipeline, lambda r: True)
        for bad, words in ((garbage, "garbage.pt"), (mismatched, "mismatched.pt")):
            version = pipeline.update_settings(checkpoint=bad)
            failed = events_of(pipeline, EventKind.SETTINGS_FAILED)
            assert failed[0].version == version and words in failed[0].message
            assert "still using" in failed[0].message
            assert pipeline.last_error is not None
            assert pipeline.settings.checkpoint == checkpoint
            after = next_result_where(pipeline, lambda r, t=failed[0].time: r.capture_time > t)
            assert after.settings.checkpoint == checkpoint
        # The next change builds on the settings in use, not on the refused checkpoint.
        pipeline.update_settings(passes=2)
        events_of(pipeline, EventKind.SETTINGS_APPLIED)
        assert pipeline.settings.checkpoint == checkpoint and pipeline.settings.passes == 2
        assert pipeline.running


def test_swapping_to_another_checkpoint_changes_model_and_preprocessing(
    checkpoint: Path, tmp_path: Path
) -> None:
    other = tiny_checkpoint(tmp_path / "other.pt", input_size=(48, 48), classes=["x", "y"])
    with live_pipeline(checkpoint) as pipeline:
        assert next_result_where(pipeline, lambda r: True).display.shape == (64, 64)
        pipeline.update_settings(checkpoint=other)
        swapped = next_result_where(pipeline, lambda r: r.settings.checkpoint == other)
        assert swapped.display.shape == (48, 48) and swapped.class_names == ("x", "y")
        assert pipeline.metadata.class_names == ["x", "y"]


def test_an_unavailable_device_or_unknown_class_is_reported(checkpoint: Path) -> None:
    with live_pipeline(checkpoint) as pipeline:
        pipeline.update_settings(target_class="astrocytoma")
        failed = events_of(pipeline, EventKind.SETTINGS_FAILED)
        assert "unknown class 'astrocytoma'" in failed[0].message
        if not torch.cuda.is_available():
            pipeline.update_settings(device="cuda")
            failed = events_of(pipeline, EventKind.SETTINGS_FAILED)
            assert "cuda" in failed[0].message.lower()
        assert pipeline.settings.device == "cpu"


def test_a_checkpoint_replaced_or_deleted_while_in_use_changes_nothing_until_chosen(
    tmp_path: Path,
) -> None:
    path = tiny_checkpoint(tmp_path / "in_use.pt")
    loaded_sha = checkpoint_sha256(path)
    with live_pipeline(path) as pipeline:
        next_result_where(pipeline, lambda r: True)
        assert pipeline.checkpoint_sha256 == loaded_sha
        path.unlink()  # deleted: changing T still works, on the model in memory
        pipeline.update_settings(passes=2)
        events_of(pipeline, EventKind.SETTINGS_APPLIED)
        assert next_result_where(pipeline, lambda r: r.settings.passes == 2).class_names == tuple(
            CLASSES
        )
        tiny_checkpoint(path, input_size=(48, 48), classes=["x", "y"])  # replaced by another
        pipeline.update_settings(passes=4)
        kept = next_result_where(pipeline, lambda r: r.settings.passes == 4)
        assert kept.class_names == tuple(CLASSES) and kept.display.shape == (64, 64)
        assert pipeline.checkpoint_sha256 == loaded_sha  # what a recording names as the model
        pipeline.update_settings(checkpoint=path)  # the user chooses the file: now it loads
        reloaded = next_result_where(pipeline, lambda r: r.class_names == ("x", "y"))
        assert reloaded.display.shape == (48, 48)
        assert pipeline.checkpoint_sha256 == checkpoint_sha256(path) != loaded_sha
