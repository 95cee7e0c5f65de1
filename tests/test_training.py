"""Tests for ``python -m models.train``: checkpoints and summary, exact resume, full disk,
bad data, cross-validation, two-process DistributedDataParallel and a real-data smoke run."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from app.calibration.rules import Calibration
from models.checkpoint import load_checkpoint, read_metadata
from models.data.phantom import PhantomConfig, write_dataset
from models.train import main
from models.training import cli as training_cli
from models.training.config import last_checkpoint_path, resume_file_path
from tests.output_support import read_only, torch_save_on_full_disk

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "pcle-brain"
CLASSES = ("glioblastoma", "meningioma")
# Tiny and fast: MobileNetV2 (the smallest network) on 32 px frames, 3 steps of 16 frames per
# epoch, no progress bars. The real-data smoke test covers the default ResNet-18.
FAST = ["--arch", "mobilenet_v2", "--input-size", "32", "--batch-size", "16", "--no-progress"]
FAST += ["--workers", "0"]


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 classes x 3 phantom videos x 12 frames of 96x128 (48 training frames)."""
    root = tmp_path_factory.mktemp("data") / "phantom-set"
    write_dataset(root, CLASSES, 3, 12, seed=0, config=PhantomConfig(height=96, width=128))
    return root


@pytest.fixture(scope="module")
def two_epochs(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-epoch run; returns its --out path."""
    out = tmp_path_factory.mktemp("uninterrupted") / "model.pt"
    assert main(["--data", str(phantom_root), "--out", str(out), "--epochs", "2", *FAST]) == 0
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "weights differ"


def test_checkpoints_metadata_and_summary(
    two_epochs: Path, phantom_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, meta = load_checkpoint(two_epochs)
    assert meta.arch == "mobilenet_v2" and meta.class_names == list(CLASSES)
    assert meta.input_size == (32, 32) and meta.target_layer == "features.18"
    assert meta.dropout == 0.2
    assert meta.mean[0] == meta.mean[1] == meta.mean[2] and 0 < meta.mean[0] < 1
    assert meta.intended_use == "research use only, not for clinical use"
    assert meta.provenance.startswith("trained from scratch by models.train on phantom-set")
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)

    t = meta.training
    assert t["data"] == "phantom-set" and t["classes"] == list(CLASSES)
    assert t["recordings"] == {
        "train": {"glioblastoma": 2, "meningioma": 2},
        "val": {"glioblastoma": 1, "meningioma": 1},
    }
    assert not set(t["train_recordings"]) & set(t["val_recordings"])
    assert t["frames"] == {"train": 48, "val": 24} and t["skipped"] == []
    assert t["epochs_completed"] == 2 and t["steps"] == 6 and t["best_epoch"] in (1, 2)
    assert t["final"]["epoch"] == 2 and 0 <= t["final"]["val_video_acc"] <= 1
    assert t["best"]["val_frame_acc"] >= t["final"]["val_frame_acc"]
    assert t["images_per_s"] > 0 and t["wall_time_s"] >= t["train_time_s"] > 0
    hp = t["hyperparameters"]
    assert (hp["optimizer"], hp["lr"], hp["weight_decay"], hp["batch_size"]) == (
        "adamw",
        1e-3,
        0.01,
        16,
    )
    assert str(phantom_root.parent) not in json.dumps(meta.to_dict())  # no full paths
    calibration = Calibration.from_metadata(meta.calibration)  # calibrated at the end
    assert calibration is not None and calibration.fitted["recordings"] == t["val_recordings"]
    assert calibration.fitted["frames"] == 24 and calibration.mc.temperature > 0

    last = read_metadata(last_checkpoint_path(two_epochs))
    assert last.training["epochs_completed"] == 2
    state = torch.load(resume_file_path(two_epochs), map_location="cpu", weights_only=True)
    assert state["epoch"] == 2 and state["arch"] == "mobilenet_v2" and "optimizer" in state
    assert sorted(p.name for p in two_epochs.parent.iterdir()) == [
        "model.last.pt",
        "model.pt",
        "model.resume.pt",
    ]


def test_resume_gives_the_weights_of_an_uninterrupted_run(
    two_epochs: Path, phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.pt"
    args = ["--data", str(phantom_root), "--out", str(out), *FAST]
    assert main([*args, "--epochs", "1"]) == 0
    assert read_metadata(out).training["epochs_completed"] == 1
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert "resuming from model.resume.pt: 1 epochs done" in capsys.readouterr().out
    _assert_same_weights(last_checkpoint_path(out), last_checkpoint_path(two_epochs))
    _assert_same_weights(out, two_epochs)
    assert read_metadata(out).training["steps"] == 6

    assert main([*args, "--epochs", "2", "--resume"]) == 0  # nothing left to do
    assert "all 2 epochs were already done" in capsys.readouterr().out
    _assert_same_weights(out, two_epochs)


def test_resume_with_another_architecture_is_refused(
    two_epochs: Path, phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data", str(phantom_root), "--out", str(tmp_path / "m.pt"), *FAST, "--epochs", "3"]
    for resume in (resume_file_path(two_epochs), two_epochs):  # resume file, model checkpoint
        assert main([*base, "--arch", "resnet18", "--resume", str(resume)]) == 2
        err = capsys.readouterr().err
        assert "resnet18" in err and "mobilenet_v2" in err, err
    assert main([*base, "--every-k", "2", "--resume", str(resume_file_path(two_epochs))]) == 2
    assert "every_k: 1 in the resume file, 2 now" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_full_disk_keeps_the_previous_checkpoint(
    two_epochs: Path,
    phantom_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_save = torch.save

    def disk_full_from_epoch_2(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        epoch = obj.get("epoch") or obj.get("metadata", {}).get("training", {}).get(
            "epochs_completed"
        )
        if epoch >= 2:
            f.write(b"\0" * 4096)  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f, *args, **kwargs)

    out = tmp_path / "model.pt"
    args = ["--data", str(phantom_root), "--out", str(out), *FAST, "--epochs", "2"]
    monkeypatch.setattr(torch, "save", disk_full_from_epoch_2)
    assert main(args) == 3
    monkeypatch.undo()

    err = capsys.readouterr().err
    assert "could not save the checkpoints of epoch 2" in err
    assert "No space left on device" in err and "--resume" in err
    assert "files of epoch 1 are intact" in err
    for path in (out, last_checkpoint_path(out)):
        _, meta = load_checkpoint(path)
        assert meta.training["epochs_completed"] == 1
    state = torch.load(resume_file_path(out), map_location="cpu", weights_only=True)
    assert state["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.last.pt",
        "model.pt",
        "model.resume.pt",
    ]  # no temporary files left behind

    assert main([*args, "--resume"]) == 0  # space freed: continue where it stopped
    _assert_same_weights(last_checkpoint_path(out), last_checkpoint_path(two_epochs))


def test_full_disk_inside_torch_save_is_one_line_and_keeps_epoch_1(
    phantom_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real torch writer meets the full disk at epoch 2 ("enforce fail at
    inline_container.cc"): one plain line, exit 3, the files of epoch 1 untouched."""
    real_save = torch.save
    full = torch_save_on_full_disk(real_save)

    def disk_full_from_epoch_2(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        epoch = obj.get("epoch") or obj.get("metadata", {}).get("training", {}).get(
            "epochs_completed"
        )
        (full if epoch >= 2 else real_save)(obj, f, *args, **kwargs)

    out = tmp_path / "model.pt"
    args = ["--data", str(phantom_root), "--out", str(out), *FAST, "--epochs", "2"]
    monkeypatch.setattr(torch, "save", disk_full_from_epoch_2)
    assert main(args) == 3
    monkeypatch.undo()

    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "could not save the checkpoints of epoch 2: cannot write checkpoint " in err
    assert ": the disk is full or not writable (No space left on device)" in err
    assert "enforce fail" not in err and "Traceback" not in err
    assert "files of epoch 1 are intact" in err and "Free disk space" in err
    for path in (out, last_checkpoint_path(out)):
        assert read_metadata(path).training["epochs_completed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.last.pt",
        "model.pt",
        "model.resume.pt",
    ]


@pytest.mark.parametrize("case", ["folder", "read-only", "proc", "report-in-proc"])
def test_an_out_that_cannot_be_written_is_refused_before_training(
    phantom_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    def never(*_args: Any) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(training_cli, "train", never)
    monkeypatch.setattr(training_cli, "cross_validate", never)
    folder = tmp_path / "ro"
    folder.mkdir()
    out = {"folder": folder, "read-only": folder / "model.pt"}.get(case, Path("/proc/pcle/m.pt"))
    args = ["--data", str(phantom_root), "--out", str(out), *FAST]
    if case == "report-in-proc":
        out = tmp_path / "cv.pt"
        args = [*args[:2], "--out", str(out), *FAST, "--folds", "2"]
        args += ["--report", "/proc/pcle/cv.json"]
    with read_only(folder) if case == "read-only" else contextlib.nullcontext():
        status = main(args)
    err = capsys.readouterr().err
    assert status == (2 if case == "folder" else 3), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    expected = {
        "folder": f"--out {folder} is a folder; give the file to write",
        "read-only": f"cannot write the checkpoint to {out}: {folder}: cannot create files there",
        "proc": f"cannot write the checkpoint to {out}: /proc: cannot create files there",
        "report-in-proc": "cannot write the cross-validation report to /proc/pcle/cv.json: "
        "/proc: cannot create files there",
    }[case]
    assert expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]
    assert list(folder.iterdir()) == []


# --------------------------------------------------------------------------- bad input


def test_bad_files_are_skipped_and_named_and_frame_sizes_may_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "messy"
    for k, (h, w) in enumerate([(96, 128), (120, 160), (80, 112)]):
        write_dataset(
            tmp_path / f"part{k}", CLASSES, 1, 6, seed=k, config=PhantomConfig(height=h, width=w)
        )
        for c in CLASSES:
            (root / c).mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / f"part{k}" / c / f"{c}_1.avi", root / c / f"{c}_{h}x{w}.avi")
    data = (root / "meningioma" / "meningioma_96x128.avi").read_bytes()
    (root / "meningioma" / "cut.avi").write_bytes(data[: len(data) // 3])
    (root / "glioblastoma" / "noise.mp4").write_bytes(os.urandom(3000))

    out = tmp_path / "model.pt"
    args = ["--data", str(root), "--out", str(out), *FAST, "--epochs", "1", "--max-steps", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped     glioblastoma/noise.mp4: noise.mp4: cannot be opened" in printed
    assert "skipped     meningioma/cut.avi: cut.avi: truncated or damaged" in printed
    training = read_metadata(out).training
    assert [s["name"] for s in training["skipped"]] == [
        "glioblastoma/noise.mp4",
        "meningioma/cut.avi",
    ]
    assert training["frames"] == {"train": 24, "val": 12}
    assert training["steps"] == 1


def test_empty_class_folder_is_an_error(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    shutil.copytree(phantom_root, root)
    (root / "metastasis").mkdir()
    assert main(["--data", str(root), "--out", str(tmp_path / "m.pt"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "class folder" in err and "metastasis holds no videos or images" in err
    assert not (tmp_path / "m.pt").exists()


def test_single_video_class_is_an_error(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    shutil.copytree(phantom_root, root)
    for k in (2, 3):
        (root / "meningioma" / f"meningioma_{k}.avi").unlink()
    assert main(["--data", str(root), "--out", str(tmp_path / "m.pt"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "'meningioma' has only 1 usable recording (meningioma_1.avi)" in err
    assert "at least 2 videos or patients per class" in err


# ----------------------------------------------------------------- cross-validation, DDP


def test_folds_write_a_cross_validation_report(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cv.pt"
    args = ["--data", str(phantom_root), "--out", str(out), *FAST, "--epochs", "1"]
    assert main([*args, "--folds", "2", "--max-steps", "1"]) == 0
    report = json.loads(out.with_suffix(".folds.json").read_text())
    assert report["folds"] == 2 and report["data"] == "phantom-set"
    assert len(report["per_fold"]) == 2
    validated = [r for fold in report["per_fold"] for r in fold["val_recordings"]]
    assert len(validated) == len(set(validated)) == 6
    for fold in report["per_fold"]:
        assert {"val_frame_acc", "val_video_acc", "val_loss"} <= set(fold["final"])
        assert fold["train_time_s"] > 0 and fold["images_per_s"] > 0
        load_checkpoint(tmp_path / fold["checkpoint"])
    for stat in ("mean", "std"):
        assert set(report[stat]) == {"final", "best", "train_time_s", "images_per_s"}
    accs = [f["final"]["val_frame_acc"] for f in report["per_fold"]]
    assert report["mean"]["final"]["val_frame_acc"] == pytest.approx(sum(accs) / 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_two_process_ddp_ranks_agree(phantom_root: Path, tmp_path: Path) -> None:
    out, digests = tmp_path / "model.pt", tmp_path / "digests"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "models.train",
        *("--data", str(phantom_root), "--out", str(out), *FAST, "--epochs", "1"),
        *("--weights-digest", str(digests)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best checkpoint:") == 1  # only rank 0 prints
    assert "2 process(es) on cpu" in done.stdout
    rank0 = (digests / "rank0.sha256").read_text().strip()
    rank1 = (digests / "rank1.sha256").read_text().strip()
    assert rank0 == rank1
    assert rank0 == _digest(_weights(last_checkpoint_path(out)))  # what rank 0 saved
    training = read_metadata(out).training
    assert training["processes"] == 2 and training["hyperparameters"]["batch_size"] == 16
    assert training["steps"] == 3  # 48 frames, 8 per process per step


# ---------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real data not found at {REAL_DATA}")
def test_real_data_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "real.pt"
    args = ["--data", str(REAL_DATA), "--out", str(out), "--input-size", "64", "--every-k", "300"]
    args += ["--max-steps", "2", "--batch-size", "8", "--no-progress", "--workers", "2"]
    assert main(args) == 0
    _, meta = load_checkpoint(out)
    training = meta.training
    assert training["data"] == "pcle-brain" and training["classes"] == list(CLASSES)
    assert training["steps"] == 2 and training["skipped"] == []
    assert sum(training["recordings"]["val"].values()) >= 2  # held-out videos, not frames
    assert not set(training["train_recordings"]) & set(training["val_recordings"])
    assert str(REAL_DATA.parent) not in json.dumps(meta.to_dict())


def test_trunk_dropout_is_trained_and_stored(phantom_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "trunk.pt"
    args = ["--data", str(phantom_root), "--out", str(out), "--epochs", "1", *FAST]
    assert main([*args, "--trunk-dropout", "0.25"]) == 0
    model, meta = load_checkpoint(out)
    assert meta.trunk_dropout == 0.25
    assert meta.training["hyperparameters"]["trunk_dropout"] == 0.25
    dropout = model.get_submodule("features.17.conv.4")
    assert isinstance(dropout, torch.nn.Dropout2d) and dropout.p == 0.25
