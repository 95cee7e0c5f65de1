"""The viewer's text: prediction and spread, latency, sources, notices; and snapshots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pytestqt.qtbot import QtBot

from app.explain import Explanation
from app.explain.statistics import pass_statistics, predictive_uncertainty
from app.pipeline import (
    EventKind,
    FrameResult,
    IterableSource,
    PipelineEvent,
    PipelineSettings,
    StallReason,
    StatsSnapshot,
    WatchdogStatus,
    WindowSummary,
)
from app.preprocess.field_of_view import FieldOfView
from app.render.captions import method_label
from app.ui.notices import Level, event_notice, failure_notice, stall_notice
from app.ui.options import DEMO_CHECKPOINT
from app.ui.readouts import (
    Prediction,
    describe_frame_format,
    describe_source,
    format_age,
    format_window,
    map_caption,
    stats_text,
)
from app.ui.snapshot import save_snapshot, snapshot_record
from models.checkpoint import CheckpointMetadata


@pytest.fixture(scope="module")
def result() -> FrameResult:
    """A small hand-made result: 4 passes, 3 classes, 4x4 maps, a 16x16 display."""
    torch.manual_seed(0)
    maps = torch.rand(4, 4, 4)
    mean, std, cv = pass_statistics(maps, min_mean=1e-3)
    probs = torch.softmax(torch.randn(4, 3) + torch.tensor([0.0, 3.0, 0.0]), dim=-1)
    mean_probs, entropy, mutual_information = predictive_uncertainty(probs)
    explanation = Explanation(
        maps=maps,
        mean=mean,
        std=std,
        cv=cv,
        probs=probs,
        mean_probs=mean_probs,
        class_idx=int(mean_probs.argmax()),
        entropy=float(entropy),
        mutual_information=float(mutual_information),
        method="gradcam++",
        passes=4,
        mc=True,
        target_layer="features.18",
    )
    classes = ("glioblastoma", "meningioma", "metastasis")
    metadata = CheckpointMetadata(
        arch="mobilenet_v2",
        class_names=list(classes),
        input_size=(16, 16),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="features.18",
        dropout=0.2,
        provenance="test",
        intended_use="test only",
    )
    display = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    now = time.monotonic()
    return FrameResult(
        frame_id=7,
        source_index=5,
        capture_time=now - 0.05,
        source_time=0.2,
        result_time=now,
        raw=(display * 255).astype(np.uint8),
        display=display,
        fov_mask=np.ones((16, 16), bool),
        fov=FieldOfView(7.5, 7.5, 8.0),
        explanation=explanation,
        class_names=classes,
        timings_ms={"explain": 10.0, "total": 50.0},
        settings=PipelineSettings(DEMO_CHECKPOINT, passes=4),
        metadata=metadata,
    )


def _stats(display: list[float]) -> StatsSnapshot:
    return StatsSnapshot(
        latency_ms=WindowSummary.of([10.0, 20.0, 30.0]),
        display_latency_ms=WindowSummary.of(display),
        input_fps=24.0,
        output_fps=12.5,
        display_fps=12.0,
        frames_read=100,
        frames_processed=50,
        dropped_frames=50,
        results_not_taken=0,
        frame_errors=0,
    )


def test_prediction_has_mc_mean_spread_and_entropy(result: FrameResult) -> None:
    prediction = Prediction.of(result.summary(mean_cv=0.25))
    probs = result.explanation.probs.numpy()
    k = result.predicted_idx
    assert prediction.predicted.name == result.class_names[k]
    assert prediction.predicted.mean == pytest.approx(float(probs[:, k].mean()), abs=1e-6)
    assert prediction.predicted.std == pytest.approx(float(probs[:, k].std()), abs=1e-6)
    assert [c.name for c in prediction.classes] == list(result.class_names)
    assert prediction.entropy == pytest.approx(result.entropy)
    assert prediction.max_entropy == pytest.approx(math.log(3))
    assert prediction.passes == 4
    assert "over T = 4" in prediction.probability_text()
    assert "±" in prediction.probability_text()
    assert prediction.mean_cv_text() == "0.25"
    assert not prediction.explains_other_class


def test_stats_text_and_windows() -> None:
    text = stats_text(_stats([40.0, 50.0, 60.0]))
    assert text.display_latency.endswith("ms") and text.display_latency.startswith("50 / ")
    assert text.input_fps == "24.0 fps" and text.output_fps == "12.5 fps"
    assert text.dropped == "50 of 100 (50 %)"
    assert stats_text(_stats([])).display_latency == "-"
    assert format_window(WindowSummary.of([])) == "-"


def test_small_formatters(result: FrameResult) -> None:
    assert method_label("gradcam++") == "Grad-CAM++" and method_label("x") == "x"
    assert format_age(0.085) == "85 ms" and format_age(2.94) == "2.9 s"
    assert format_age(12.3) == "12 s"
    caption = map_caption(result, result.capture_time + 0.2)
    assert f"frame {result.frame_id}" in caption and "200 ms" in caption
    assert describe_frame_format(np.zeros((48, 64), np.uint16)) == "64×48 16-bit grey"
    assert describe_frame_format(np.zeros((48, 64, 3), np.uint8)) == "64×48 8-bit colour"
    source = IterableSource([np.zeros((48, 64), np.uint8)] * 3, fps=10, name="seq")
    assert describe_source(source) == "seq · frame sequence · 10 fps · 3 frames"


def test_stall_notices() -> None:
    def status(reason: StallReason | None) -> WatchdogStatus:
        return WatchdogStatus(reason is not None, reason, 2.0, 1.0, False, "no frame for 2.0 s")

    assert stall_notice(status(None)) is None
    stalled = stall_notice(status(StallReason.STALLED))
    assert stalled is not None and stalled.level is Level.WARNING and "stalled" in stalled.text
    lost = stall_notice(status(StallReason.DEVICE_LOST))
    assert lost is not None and lost.level is Level.ERROR and "lost" in lost.text
    ended = stall_notice(status(StallReason.END_OF_SOURCE))
    assert ended is not None and "End of the recording" in ended.text


def test_event_and_failure_notices() -> None:
    def event(kind: EventKind, message: str) -> PipelineEvent:
        return PipelineEvent(kind, message, time.monotonic())

    failed = event_notice(event(EventKind.SETTINGS_FAILED, "could not apply: bad weights"))
    assert failed is not None and failed.banner and failed.level is Level.ERROR
    assert failed.text.startswith("Could not apply")
    applied = event_notice(event(EventKind.SETTINGS_APPLIED, "settings applied"))
    assert applied is not None and not applied.banner
    frame = event_notice(event(EventKind.FRAME_FAILED, "frame 3 could not be analysed: x"))
    assert frame is not None and frame.banner and frame.text == "Frames could not be analysed: x"
    # a run of failing frames is one notice (the banner counts repeats)
    assert event_notice(event(EventKind.FRAME_FAILED, "frame 4 could not be analysed: x")) == frame
    notice = failure_notice("video a.mp4", "no such file: a.mp4", "Still showing b.mp4.")
    assert notice.text == "Cannot open video a.mp4: no such file: a.mp4. Still showing b.mp4."
    assert notice.banner and notice.level is Level.ERROR


class _Picture:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def save(self, path: str) -> bool:
        Path(path).write_bytes(b"\x89PNG fake")
        self.saved.append(path)
        return True


def test_snapshot_record_and_files(result: FrameResult, tmp_path: Path) -> None:
    taken = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    record = snapshot_record(
        result,
        _stats([40.0, 50.0]),
        source="seq",
        mode="live",
        device="cpu",
        mean_cv=float("nan"),
        opacity=0.5,
        displayed_age_ms=80.0,
        taken_at=taken,
    )
    assert record["result"]["frame_id"] == result.frame_id
    assert record["result"]["settings"]["passes"] == 4
    assert set(record["result"]["probabilities"]) == set(result.class_names)
    assert record["latency"]["capture_to_display_ms"]["count"] == 2
    picture = _Picture()
    files = save_snapshot(tmp_path / "snaps", picture, record, taken_at=taken)
    again = save_snapshot(tmp_path / "snaps", picture, record, taken_at=taken)
    assert files.png.name == f"snapshot-20260102-030405-678-frame{result.frame_id}.png"
    assert again.png != files.png and again.png.exists()
    data = json.loads(files.json.read_text())  # valid JSON: the NaN became null
    assert data["result"]["mean_cv_in_fov"] is None
    assert data["taken_at"].startswith("2026-01-02T03:04:05.678")
    empty = snapshot_record(None, None, source="", mode="live", device="cpu")
    assert empty["result"] is None and empty["latency"] is None


def test_a_black_frame_names_no_class(result: FrameResult, qtbot: QtBot) -> None:
    """A frame without signal gets "No tissue" where the class goes, and says why."""
    from app.ui.latency_plot import LatencyHistory
    from app.ui.readout_panel import ReadoutPanel

    black = dataclasses.replace(result, fov=FieldOfView.inscribed((16, 16), "no_signal"))
    prediction = Prediction.of(black.summary(mean_cv=None))
    assert prediction.no_tissue is not None and "no signal" in prediction.no_tissue
    assert Prediction.of(result.summary(mean_cv=0.25)).no_tissue is None
    panel = ReadoutPanel(LatencyHistory())
    qtbot.addWidget(panel)
    panel.show_prediction(prediction)
    assert panel.class_name.text() == "No tissue"
    assert "not a reading" in panel.probability.text()
    assert panel.explained.text().startswith("No signal") and not panel.explained.isHidden()
    panel.show_prediction(Prediction.of(result.summary(mean_cv=0.25)))
    assert panel.class_name.text() == result.class_names[result.predicted_idx]
    assert panel.explained.isHidden()


def test_the_readout_shows_uncertain_the_set_and_not_calibrated(
    result: FrameResult, qtbot: QtBot
) -> None:
    from app.ui.latency_plot import LatencyHistory
    from app.ui.readout_panel import ReadoutPanel

    panel = ReadoutPanel(LatencyHistory())
    qtbot.addWidget(panel)
    raw = result.summary(mean_cv=0.25)
    panel.show_prediction(Prediction.of(raw))
    assert "not calibrated" in panel.probability.text()
    names = result.class_names
    unsure = dataclasses.replace(
        raw, calibrated_p=0.61, uncertain=True, prediction_set=(names[0], names[1])
    )
    panel.show_prediction(Prediction.of(unsure))
    assert panel.class_name.text() == "UNCERTAIN"
    assert panel.class_name.property("state") == "uncertain"
    assert panel.probability.text().startswith("calibrated p 0.61")
    assert panel.explained.text() == f"Could be {names[0]} or {names[1]}: do not rely on this frame"
    sure = dataclasses.replace(
        unsure, calibrated_p=0.99, uncertain=False, prediction_set=(names[1],)
    )
    panel.show_prediction(Prediction.of(sure))
    assert panel.class_name.text() == names[raw.predicted_idx]
    assert panel.class_name.property("state") == "" and panel.explained.isHidden()
    assert panel.probability.text().startswith("calibrated p 0.99  (raw ")


def test_the_readout_shows_the_verdict_and_marks_an_uncertain_one(
    result: FrameResult, qtbot: QtBot
) -> None:
    from app.calibration.window import WindowVerdict
    from app.ui.latency_plot import LatencyHistory
    from app.ui.readout_panel import ReadoutPanel

    panel = ReadoutPanel(LatencyHistory())
    qtbot.addWidget(panel)
    summary = result.summary(mean_cv=0.25)
    panel.show_prediction(Prediction.of(summary))
    assert panel.verdict.isHidden()  # no verdict known
    sure = dataclasses.replace(summary, verdict=WindowVerdict(1, 0.93, 48, 2.0, False, True))
    panel.show_prediction(Prediction.of(sure))
    name = result.class_names[1]
    assert panel.verdict.text() == f"Verdict: {name} 0.93 over the last 2.0 s (48 frames)"
    assert not panel.verdict.isHidden() and panel.verdict.property("state") == ""
    unsure = dataclasses.replace(summary, verdict=WindowVerdict(1, 0.6, 20, 0.8, True, True))
    panel.show_prediction(Prediction.of(unsure))
    assert panel.verdict.text().startswith("Verdict: UNCERTAIN")
    assert panel.verdict.property("state") == "uncertain"
    panel.show_prediction(None)
    assert panel.verdict.isHidden()
