"""The words drawn with an analysed frame: one spelling rule for the passes, headers, titles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.pipeline.settings import PipelineSettings
from app.render.captions import (
    format_mean_cv,
    map_titles,
    method_label,
    panel_headers,
    passes_label,
    prediction_caption,
)
from app.render.summary import FrameSummary


def summary(**changes: object) -> FrameSummary:
    """A recorded-looking frame: Grad-CAM++, T = 10, meningioma explained at p 0.8."""
    base = FrameSummary(
        frame_id=7,
        source_index=12,
        source_time_s=0.5,
        capture_s=1.25,
        result_s=1.3,
        latency_ms=50.0,
        class_names=("glioblastoma", "meningioma"),
        class_idx=1,
        probabilities=(0.2, 0.8),
        probability_std=(0.05, 0.05),
        entropy=0.5,
        mutual_information=0.01,
        mean_cv=0.214,
        method="gradcam++",
        passes=10,
        mc=True,
        fov=(20.0, 24.0, 18.0),
        fov_found=True,
        timings_ms={"read": 1.0},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_passes_label_spellings() -> None:
    assert passes_label(10, True) == "T = 10"
    assert passes_label(10, True, compact=True) == "T=10"
    assert passes_label(10, False) == passes_label(10, False, compact=True) == "original"
    assert passes_label(None, True, compact=True) == "T=None"  # a manifest may hold anything


def test_settings_and_headers_use_the_compact_spelling(tmp_path: Path) -> None:
    settings = PipelineSettings(tmp_path / "m.pt", passes=10)
    assert settings.describe() == "gradcam++ T=10 (predicted class) on auto"
    original = settings.replace(mc=False, target_class="x")
    assert original.describe() == "gradcam++ original (class x) on auto"
    assert panel_headers(summary()) == (
        "raw #12  0.50 s",
        "gradcam++ T=10: meningioma 0.80",
        "risk (CV), mean 0.21",
    )
    assert panel_headers(summary(mc=False, passes=1, mean_cv=None))[1:] == (
        "gradcam++ original: meningioma 0.80",
        "risk (CV), mean -",
    )


def test_titles_and_captions_on_screen() -> None:
    assert method_label("reciprocam") == "Recipro-CAM" and method_label("new") == "new"
    assert map_titles(summary()) == (
        ("Enhanced attribution", "Grad-CAM++ · T = 10"),
        ("Risk", "CV over T = 10"),
    )
    assert map_titles(summary(mc=False))[1] == ("Risk", "CV over original")
    assert prediction_caption(summary()) == "meningioma  p 0.80  ·  mean CV 0.21"
    assert prediction_caption(summary(mean_cv=None), uncertain=True) == (
        "meningioma  p 0.80  ·  mean CV -  ·  uncertain"
    )
    assert format_mean_cv(None) == "-" and format_mean_cv(1.5) == "1.50"


def test_a_black_frame_caption_names_no_class() -> None:
    black = summary(fov_source="no_signal", fov_found=False)
    assert black.no_tissue is not None and black.no_tissue.startswith("no signal")
    assert prediction_caption(black) == "no tissue  ·  model output meningioma, not a reading"
    assert summary(fov_source="detected").no_tissue is None
    assert summary(fov_source="no_surround").no_tissue is None  # a full-frame image is fine


def test_a_calibrated_caption_says_uncertain_or_gives_the_calibrated_probability() -> None:
    unsure = summary(
        calibrated_p=0.6, uncertain=True, prediction_set=("glioblastoma", "meningioma")
    )
    assert prediction_caption(unsure) == (
        "UNCERTAIN  ·  could be glioblastoma or meningioma  ·  mean CV 0.21"
    )
    sure = summary(calibrated_p=0.994, uncertain=False, prediction_set=("meningioma",))
    assert prediction_caption(sure) == "meningioma  calibrated p 0.99  ·  mean CV 0.21"
