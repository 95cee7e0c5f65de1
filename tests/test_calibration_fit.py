"""``python -m app calibrate``: fitted on a checkpoint's held-out recordings, stored in its
metadata, read back and applied to a frame's passes as the viewer will."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from app.calibration.abstention import AbstentionRule
from app.calibration.conformal import ConformalRule
from app.calibration.rules import Calibration, CalibrationError, ModeCalibration
from app.cli import main
from models.architectures import build_model
from models.checkpoint import CheckpointMetadata, load_checkpoint, read_metadata, save_checkpoint
from models.data.phantom import PhantomConfig, write_dataset

CLASSES = ("glioblastoma", "meningioma")
VALIDATION = [f"{c}/{c}_1.avi" for c in CLASSES]
TRAINING = [f"{c}/{c}_0.avi" for c in CLASSES]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibrate") / "data"
    write_dataset(
        root, CLASSES, videos_per_class=2, frames_per_video=12, config=PhantomConfig(96, 128)
    )
    return root


def make_checkpoint(path: Path, training: dict[str, object]) -> Path:
    metadata = CheckpointMetadata(
        arch="resnet18",
        class_names=list(CLASSES),
        input_size=(64, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4",
        dropout=0.5,
        provenance="random initialisation (test)",
        training=training,
    )
    save_checkpoint(path, build_model("resnet18", 2, 0.5), metadata)
    return path


def calibrate(data: Path, checkpoint: Path, *extra: str) -> int:
    argv = ["calibrate", "--data", str(data), "--checkpoint", str(checkpoint)]
    return main([*argv, "--passes", "4", "--coverage", "0.9", *extra])


def test_calibrate_writes_a_calibration_the_viewer_can_apply(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = make_checkpoint(
        tmp_path / "model.pt", {"val_recordings": VALIDATION, "train_recordings": TRAINING}
    )
    before = read_metadata(checkpoint)
    assert calibrate(data, checkpoint) == 0
    printed = capsys.readouterr().out
    assert (
        "calibration fitted on 24 frames of 2 recordings" in printed
        and "wrote the calibration" in printed
    )
    metadata = read_metadata(checkpoint)
    assert metadata.training == before.training  # only the calibration changed
    calibration = Calibration.from_metadata(metadata.calibration)
    assert calibration is not None
    assert calibration.fitted["recordings"] == VALIDATION and calibration.fitted["frames"] == 24
    for mode in (calibration.mc, calibration.deterministic):
        assert mode.temperature > 0 and mode.conformal.coverage == 0.9 and mode.conformal.n == 24
        assert mode.abstention.target_error == 0.01 and mode.abstention.n == 24
    assert load_checkpoint(checkpoint).metadata.calibration == metadata.calibration  # loads
    passes = np.array([[[0.9, 0.1], [0.7, 0.3], [0.8, 0.2], [0.95, 0.05]]])
    (frame,) = calibration.mc.apply(passes)
    assert frame.probabilities.shape == (2,) and math.isclose(frame.probabilities.sum(), 1.0)
    assert frame.predicted == 0 and 0 in frame.prediction_set
    assert frame.accepted == bool(calibration.mc.abstention.accepts(frame.score))


def test_dry_run_leaves_the_checkpoint_as_it_was(data: Path, tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "model.pt", {"val_recordings": VALIDATION})
    before = checkpoint.read_bytes()
    assert calibrate(data, checkpoint, "--dry-run", "--max-frames", "10") == 0
    assert checkpoint.read_bytes() == before


@pytest.mark.parametrize(
    ("training", "extra", "message"),
    [
        ({}, [], "names no validation recordings"),
        ({"val_recordings": VALIDATION, "train_recordings": TRAINING}, ["--recordings",
         ",".join(TRAINING)], "trained on these"),
        ({"val_recordings": ["glioblastoma/absent.avi"]}, [], "not found under"),
        ({"val_recordings": VALIDATION[:1]}, [], "one class only"),
    ],
)  # fmt: skip
def test_calibrate_refuses_what_it_cannot_fit_on(
    training: dict[str, object],
    extra: list[str],
    message: str,
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint = make_checkpoint(tmp_path / "model.pt", training)
    before = checkpoint.read_bytes()
    assert calibrate(data, checkpoint, *extra) == 2
    assert message in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


def rule(threshold: float, temperature: float = 1.0) -> ModeCalibration:
    return ModeCalibration(
        temperature,
        "max_probability",
        AbstentionRule(threshold, 0.01, 0.05, 0.9, 0.005, 0.01, 100),
        ConformalRule(0.65, 0.95, 100),  # a class is in the set from p >= 0.35 on
    )


def test_a_mode_calibration_abstains_below_its_threshold_and_gives_sets() -> None:
    mode = rule(threshold=0.8)
    sure, unsure = mode.apply(np.array([[[0.95, 0.05]], [[0.6, 0.4]]]))
    assert sure.accepted and list(sure.prediction_set) == [0]
    assert not unsure.accepted and list(unsure.prediction_set) == [0, 1]
    softer = rule(threshold=0.8, temperature=3.0).apply(np.array([[0.95, 0.05]]))[0]
    assert softer.probabilities[0] < sure.probabilities[0]  # tau > 1 softens


def test_a_stored_calibration_round_trips_and_bad_entries_are_refused() -> None:
    calibration = Calibration(rule(math.inf), rule(0.7), {"frames": 100})
    entry = calibration.to_metadata()
    assert entry["mc"]["abstention"]["threshold"] == "inf"  # JSON has no infinity
    again = Calibration.from_metadata(entry)
    assert again == calibration and again.mc.abstention.abstains_on_everything
    assert Calibration.from_metadata({}) is None
    with pytest.raises(CalibrationError, match="format"):
        Calibration.from_metadata({**entry, "format": 99})
    with pytest.raises(CalibrationError, match="invalid"):
        Calibration.from_metadata({**entry, "mc": {**entry["mc"], "signal": "vibes"}})
    with pytest.raises(CalibrationError, match="invalid"):
        Calibration.from_metadata({**entry, "deterministic": {}})
