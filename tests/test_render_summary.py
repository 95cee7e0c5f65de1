"""One frame summary: a live result and its recording describe the frame alike, in numbers,
words and the per-frame CSV."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.recording import SessionReader, SessionRecorder
from app.render.captions import map_titles, panel_headers, prediction_caption
from app.render.summary import FrameSummary
from app.render.table import csv_columns, csv_row
from app.ui.readouts import Prediction
from tests.test_recording import CLASSES, fake_result, fake_settings

STORED_AS_FLOAT32 = {
    "latency_ms",
    "entropy",
    "mutual_information",
    "mean_cv",
    "fov",
    "timings_ms",
}
"""Fields the recording keeps at float32 precision; every other one comes back exactly."""


def _assert_same_frame(live: FrameSummary, recorded: FrameSummary) -> None:
    for field in dataclasses.fields(FrameSummary):
        a, b = getattr(live, field.name), getattr(recorded, field.name)
        if field.name in STORED_AS_FLOAT32:
            assert b == pytest.approx(a, rel=1e-5, abs=1e-6), field.name
        else:
            assert b == a, field.name


def test_a_live_result_and_its_recorded_frame_give_the_same_summary(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    results = [fake_result(i, settings) for i in range(4)]
    with SessionRecorder(tmp_path / "s", settings=settings) as recorder:
        assert all(recorder.write(r) for r in results)
    session = SessionReader(tmp_path / "s")
    t0 = session.manifest["monotonic_start"]
    rows = session.table()
    for i, result in enumerate(results):
        live = result.summary(result.mean_cv_in_fov(), t0=t0)
        recorded = session.frame(i)[1].summary()
        _assert_same_frame(live, recorded)
        assert recorded.class_name == result.class_name
        assert recorded.predicted_idx == result.predicted_idx
        assert recorded.probability == result.probability
        # the same words either way
        assert panel_headers(recorded) == panel_headers(live)
        assert map_titles(recorded) == map_titles(live)
        assert prediction_caption(recorded) == prediction_caption(live)
        a, b = Prediction.of(live), Prediction.of(recorded)
        assert a.probability_text() == b.probability_text() and a.classes == b.classes
        assert a.entropy_text() == b.entropy_text() and a.mean_cv_text() == b.mean_cv_text()
        # the recording's table row is the live summary's row
        row = {k: str(v) for k, v in csv_row(live).items()}
        assert {k: rows[i][k] for k in row} == row
        assert (rows[i]["method"], rows[i]["passes"]) == ("gradcam++", "4")


def test_spread_is_zero_when_the_passes_were_not_kept(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    result = fake_result(0, settings)
    with SessionRecorder(tmp_path / "s", settings=settings, store_pass_probs=False) as recorder:
        recorder.write(result)
    recorded = SessionReader(tmp_path / "s").frame(0)[1].summary()
    assert recorded.probability_std == (0.0, 0.0, 0.0)
    assert result.summary(None).probability_std != recorded.probability_std


def test_csv_columns_follow_the_classes_and_stages(tmp_path: Path) -> None:
    summary = fake_result(0, fake_settings(tmp_path)).summary(None, t0=1.0)
    columns = csv_columns(summary)
    assert columns[:7] == [
        "frame_id",
        "source_index",
        "source_time_s",
        "capture_s",
        "result_s",
        "class",
        "class_index",
    ]
    assert columns[7:10] == [f"p_{name}" for name in CLASSES]
    assert columns[10:] == [
        "entropy_nats",
        "mutual_information_nats",
        "mean_cv_in_fov",
        "field_of_view",
        "calibrated_p",
        "uncertain",
        "prediction_set",
        "window_class",
        "window_p",
        "window_frames",
        "window_s",
        "window_restart",
        "latency_ms",
        "read_ms",
        "wait_ms",
        "preprocess_ms",
        "explain_ms",
        "explain_forward_ms",
        "total_ms",
    ]
    row = csv_row(summary)
    assert set(row) <= set(columns) and row["mean_cv_in_fov"] == ""
    assert "wait_ms" not in row  # a stage the frame lacks stays empty
