"""``python -m app evaluate`` end to end on a tiny phantom data set and a random checkpoint."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.evaluate import runner
from app.evaluate.frames import load_frames
from app.evaluate.localisation import iou, pointing_hit
from models.architectures import build_model
from models.checkpoint import CheckpointMetadata, save_checkpoint
from models.data.frame_cache import FrameSampling
from models.data.index import discover
from models.data.phantom import PhantomConfig, write_dataset
from tests.output_support import read_only

CLASSES = ("glioblastoma", "meningioma")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "data"
    write_dataset(
        data, CLASSES, videos_per_class=2, frames_per_video=6, config=PhantomConfig(96, 128)
    )
    model = build_model("resnet18", 2)
    metadata = CheckpointMetadata(
        arch="resnet18",
        class_names=list(CLASSES),
        input_size=(64, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4",
        dropout=0.2,
        provenance="random initialisation (test)",
        training={"val_recordings": [f"{c}/{c}_1.avi" for c in CLASSES]},
    )
    checkpoint = root / "model.pt"
    save_checkpoint(checkpoint, model, metadata)
    return data, checkpoint


def _args(data: Path, checkpoint: Path, out: Path) -> list[str]:
    return [
        "evaluate",
        "--data", str(data),
        "--checkpoint", str(checkpoint),
        "--methods", "gradcam,reciprocam",
        "--passes", "3",
        "--every-k", "3",
        "--t-study", "1,2,3",
        "--t-study-frames", "2",
        "--figures", "1",
        "--device", "cpu",
        "--quiet",
        "--out", str(out),
    ]  # fmt: skip


def _in_unit(value: object) -> bool:
    return value is None or (isinstance(value, float) and 0.0 <= value <= 1.0)


def test_evaluate_end_to_end_and_resume(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, checkpoint = setup
    out = tmp_path / "out"
    assert main(_args(data, checkpoint, out)) == 0
    for name in ("table.md", "table.csv", "table.json", "t_study.csv", "t_study.json"):
        assert (out / name).is_file(), name
    for name in ("t_study.png", "scores.jsonl", "run.json"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "figures").glob("*.png"))) == 2

    table = json.loads((out / "table.json").read_text())
    rows = table["rows"]
    assert [(r["method"], r["mode"]) for r in rows] == [
        ("gradcam", "original"),
        ("gradcam", "proposed"),
        ("reciprocam", "original"),
        ("reciprocam", "proposed"),
    ]
    assert "held-out" in table["info"]["notes"]
    assert table["info"]["recordings"] == [f"{c}/{c}_1.avi" for c in CLASSES]
    for row in rows:
        assert row["images"] == table["info"]["frames"] == 4  # 2 videos x frames 0, 3
        for key in ("coherency", "complexity", "average_drop", "iou", "pointing_game"):
            assert _in_unit(row[key]), (key, row[key])
        for key in ("adcc_mean_of_per_image", "adcc_of_mean_components"):
            assert _in_unit(row[key]), (key, row[key])
            if row[key] is None:
                assert any(row["flag_counts"].values())
        assert row["localisation_images"] > 0
        assert row["latency_ms"] > 0
        assert row["passes"] == (3 if row["mode"] == "proposed" else 1)
    assert "ADCC ↑ (mean of per-image)" in (out / "table.md").read_text()
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]

    def defined(value: float | None) -> bool:
        return value is not None and math.isfinite(value)

    for method in ("gradcam", "reciprocam"):
        paired = table["paired_comparison"][method]
        adcc = {mode: {} for mode in ("original", "proposed")}
        for r in scores:
            if r["method"] == method and r["mode"] in adcc:
                adcc[r["mode"]][(r["recording"], r["frame"])] = r["adcc"]
        both = [
            k for k, v in adcc["proposed"].items() if defined(v) and defined(adcc["original"][k])
        ]
        assert paired["pairs"] == len(both)
        if both:
            d = [adcc["proposed"][k] - adcc["original"][k] for k in both]
            assert paired["mean_difference"] == pytest.approx(sum(d) / len(d))
            assert paired["ci_low"] <= paired["mean_difference"] <= paired["ci_high"]
    assert "paired by image" in (out / "table.md").read_text()
    assert "adcc_of_mean_components" in (out / "table.csv").read_text().splitlines()[0]

    study = json.loads((out / "t_study.json").read_text())
    assert [(r["method"], r["passes"], r["images"]) for r in study["rows"]] == [
        ("gradcam", t, 2) for t in (1, 2, 3)
    ]
    assert set(study["original"]) == {"gradcam"}

    lines = (out / "scores.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 4 + 3 * 2
    assert main(_args(data, checkpoint, out)) == 0
    assert len((out / "scores.jsonl").read_text().splitlines()) == len(lines)
    again = json.loads((out / "table.json").read_text())
    assert again["info"]["scored_this_run"] == 0
    assert again["info"]["reused_from_scores_jsonl"] == len(lines)
    assert again["rows"] == rows

    # Other settings into the same folder are refused, not mixed in.
    changed = _args(data, checkpoint, out)
    changed[changed.index("--passes") + 1] = "4"
    assert main(changed) == 2


def test_masks_follow_the_frame_geometry(setup: tuple[Path, Path]) -> None:
    data, _ = setup
    frames, skipped = load_frames(discover(data).recordings[:1], 64, FrameSampling(2, 0.0))
    assert not skipped and len(frames) == 3
    for frame in frames:
        assert frame.mask is not None and frame.mask.shape == (64, 64)
        assert frame.mask.any() and not (frame.mask & ~frame.fov_mask).any()
        # The phantom's structures are drawn bright or dark: the mask is not the whole disc.
        assert frame.mask.sum() < frame.fov_mask.sum()


def test_localisation_metrics() -> None:
    fov = np.ones((4, 4), bool)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    map_ = np.zeros((4, 4), np.float32)
    map_[0] = 1.0
    assert iou(map_, mask, fov) == pytest.approx(0.5)
    assert pointing_hit(map_, mask, fov) == 1.0
    map_[3, 2] = 2.0
    assert pointing_hit(map_, mask, fov) == 0.0
    assert math.isnan(iou(np.zeros((4, 4)), np.zeros((4, 4), bool), fov))


def test_error_paths(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, checkpoint = setup
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    cases = [
        (["--data", str(tmp_path / "missing")], "no such data folder"),
        (["--checkpoint", str(bad)], "bad checkpoint"),
        (["--checkpoint", str(tmp_path / "none.pt")], "bad checkpoint"),
        (["--methods", "gradcam,nope"], "unknown method"),
        (["--t-study", "1,x"], "--t-study"),
    ]
    for extra, message in cases:
        args = _args(data, checkpoint, tmp_path / "o")
        for i in range(0, len(extra), 2):
            args[args.index(extra[i]) + 1] = extra[i + 1]
        assert main(args) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)


def test_a_class_whose_videos_are_all_unreadable_is_refused(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scoring the readable class alone would report it as the held-out set: refused, as a
    data root of one class is."""
    data, checkpoint = setup
    damaged = tmp_path / "data"
    shutil.copytree(data, damaged)
    for video in (damaged / "meningioma").glob("*.avi"):
        video.write_bytes(b"not a video" * 100)
    out = tmp_path / "out"
    assert main(_args(damaged, checkpoint, out)) == 2
    err = capsys.readouterr().err
    assert "every recording of class 'meningioma' is unreadable" in err
    assert "meningioma/meningioma_1.avi" in err and "only the other classes" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_max_frames_zero_is_refused_when_parsed(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, checkpoint = setup
    with pytest.raises(SystemExit) as exited:
        main([*_args(data, checkpoint, tmp_path / "out"), "--max-frames", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --max-frames: must be >= 1, got 0" in err
    assert "no readable frame" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["file", "read-only", "proc"])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(
    setup: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    data, checkpoint = setup

    def never(*_args: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(runner, "_load_model", never)
    folder = tmp_path / "ro"
    folder.mkdir()
    out = {"file": tmp_path / "table.md", "read-only": folder / "out"}.get(
        case, Path("/proc/pcle/out")
    )
    if case == "file":
        out.write_text("earlier results\n")
    with read_only(folder) if case == "read-only" else contextlib.nullcontext():
        status = main(_args(data, checkpoint, out))
    err = capsys.readouterr().err
    assert status == 3, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    expected = {
        "file": f"cannot write the evaluation to {out}: is a file, not a folder",
        "read-only": f"cannot write the evaluation to {out}: {folder}: cannot create files there",
        "proc": f"cannot write the evaluation to {out}: /proc: cannot create files there",
    }[case]
    assert expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ro", *(["table.md"] if case == "file" else [])]
    )
    assert list(folder.iterdir()) == []
    if case == "file":
        assert out.read_text() == "earlier results\n"
