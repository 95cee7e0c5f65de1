"""Tests for models.checkpoint: round trip, atomic writes, and every way a file can be wrong."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from models.architectures import build_model
from models.checkpoint import (
    FORMAT,
    CheckpointError,
    CheckpointMetadata,
    LoadedCheckpoint,
    checkpoint_sha256,
    load_checkpoint,
    read_metadata,
    rewrite_metadata,
    save_checkpoint,
)
from tests.output_support import torch_save_on_full_disk

CLASSES = ["normal", "tumour", "artefact"]


def _metadata(arch: str = "resnet18", **overrides: Any) -> CheckpointMetadata:
    values: dict[str, Any] = {
        "arch": arch,
        "class_names": list(CLASSES),
        "input_size": (64, 64),
        "mean": (0.25, 0.25, 0.25),
        "std": (0.2, 0.2, 0.2),
        "target_layer": "features.18" if arch == "mobilenet_v2" else "layer4",
        "dropout": 0.2,
        "provenance": "random initialisation",
        "intended_use": "phantom demo, not for clinical use",
        "training": {"epochs": 2, "metrics": {"val_acc": 0.5}, "split": ["a", "b"]},
    }
    values.update(overrides)
    return CheckpointMetadata(**values)


def _write_raw(path: Path, metadata: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> Path:
    """Write a file in our format without save_checkpoint's consistency checks."""
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "metadata": metadata,
        "state_dict": state_dict,
    }
    torch.save(payload, path)
    return path


@pytest.fixture(scope="module")
def resnet18_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("resnet18", num_classes=3)


@pytest.fixture(scope="module")
def small_model() -> nn.Module:
    """A 3-class MobileNetV2: the smallest file (9 MB), for tests that save repeatedly."""
    torch.manual_seed(0)
    return build_model("mobilenet_v2", num_classes=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, resnet18_model: nn.Module) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, resnet18_model, _metadata())
    return path


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_round_trip_same_outputs_and_metadata(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(1)
    model = build_model(arch, num_classes=3, dropout=0.3)
    # Perturb BatchNorm statistics so that buffers, not only parameters, must round-trip.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    meta = _metadata(arch, dropout=0.3)
    path = tmp_path / "sub" / "dir" / "model.pt"  # parent directories are created
    save_checkpoint(path, model, meta)

    loaded = load_checkpoint(path)
    assert isinstance(loaded, LoadedCheckpoint)
    assert loaded.metadata == meta
    assert loaded.metadata.num_classes == 3
    assert not loaded.model.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert next(loaded.model.parameters()).device.type == "cpu"
    drop = loaded.model.fc[0] if arch == "resnet18" else loaded.model.classifier[0]
    assert drop.p == pytest.approx(0.3)
    assert read_metadata(path) == meta


def test_file_is_our_documented_format_and_loads_weights_only(saved: Path) -> None:
    raw = torch.load(saved, map_location="cpu", weights_only=True)
    assert raw["format"] == "pcle-viewer-checkpoint"
    assert raw["format_version"] == 1
    assert raw["metadata"]["arch"] == "resnet18"
    assert raw["metadata"]["input_size"] == [64, 64]
    assert set(raw["state_dict"]) >= {"conv1.weight", "fc.1.weight", "fc.1.bias"}
    assert all(t.device.type == "cpu" for t in raw["state_dict"].values())


def test_save_leaves_no_stray_files_and_normal_permissions(saved: Path) -> None:
    assert [p.name for p in saved.parent.iterdir()] == ["model.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert saved.stat().st_mode & 0o777 == 0o666 & ~umask


def test_checkpoint_sha256_matches_hashlib(saved: Path) -> None:
    digest = checkpoint_sha256(saved)
    assert digest == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert len(digest) == 64
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint_sha256(saved.parent / "missing.pt")


def test_metadata_defaults_and_dict_round_trip() -> None:
    meta = CheckpointMetadata(
        arch="ResNet-18",
        class_names=["a", "b"],
        input_size=[32, 48],  # type: ignore[arg-type]
        mean=[0, 0, 0],  # type: ignore[arg-type]
        std=[1, 1, 1],  # type: ignore[arg-type]
        target_layer="layer4",
        dropout=0.2,
        provenance="random initialisation",
    )
    assert meta.arch == "resnet18"  # canonicalised
    assert meta.input_size == (32, 48)
    assert meta.mean == (0.0, 0.0, 0.0) and isinstance(meta.mean[0], float)
    assert meta.intended_use == "research use only, not for clinical use"
    assert meta.training == {} and meta.calibration == {}  # not calibrated
    assert meta.format_version == 1
    assert meta.created.endswith("+00:00")
    d = meta.to_dict()
    allowed = (str, int, float, bool, list, dict, type(None))
    assert all(isinstance(v, allowed) for v in d.values())
    assert CheckpointMetadata.from_dict(d) == meta


def test_metadata_training_tuples_become_lists() -> None:
    meta = _metadata(training={"split": ("train", "val"), "nested": {"x": (1, 2)}})
    assert meta.to_dict()["training"] == {"split": ["train", "val"], "nested": {"x": [1, 2]}}


# ---------------------------------------------------------------------- metadata validation


@pytest.mark.parametrize(
    "field",
    ["arch", "class_names", "input_size", "mean", "std", "target_layer", "dropout", "provenance"],
)
def test_from_dict_rejects_a_missing_field(field: str) -> None:
    d = _metadata().to_dict()
    del d[field]
    with pytest.raises(CheckpointError, match=f"missing the required field '{field}'"):
        CheckpointMetadata.from_dict(d)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arch", 18),
        ("class_names", ["only-one"]),
        ("class_names", ["a", "a"]),
        ("class_names", ["a", ""]),
        ("class_names", "ab"),
        ("input_size", [64]),
        ("input_size", [64, 0]),
        ("input_size", [64.0, 64.0]),
        ("mean", [0.5, 0.5]),
        ("mean", [0.5, "0.5", 0.5]),
        ("std", [0.2, 0.0, 0.2]),
        ("std", [0.2, float("nan"), 0.2]),
        ("target_layer", ""),
        ("dropout", 1.0),
        ("dropout", "0.2"),
        ("provenance", None),
        ("intended_use", 3),
        ("training", [1, 2]),
        ("training", {"bad": object()}),
        ("calibration", [0.5]),
        ("calibration", {"temperature": object()}),
        ("created", "yesterday"),
        ("format_version", "1"),
    ],
)
def test_from_dict_names_the_bad_field(field: str, value: Any) -> None:
    d = _metadata().to_dict()
    d[field] = value
    with pytest.raises(CheckpointError, match=f"'{field}"):
        CheckpointMetadata.from_dict(d)


def test_from_dict_rejects_non_dict_and_unknown_arch() -> None:
    with pytest.raises(CheckpointError, match="must be a dict"):
        CheckpointMetadata.from_dict([1, 2])  # type: ignore[arg-type]
    d = _metadata().to_dict()
    d["arch"] = "vgg16"
    with pytest.raises(CheckpointError, match=r"'arch'.*unknown architecture 'vgg16'.*resnet18"):
        CheckpointMetadata.from_dict(d)


def test_from_dict_ignores_unknown_keys() -> None:
    d = _metadata().to_dict()
    d["added_in_a_later_version"] = 1
    assert CheckpointMetadata.from_dict(d) == _metadata(created=d["created"])


def test_a_file_from_before_calibration_existed_loads_as_not_calibrated(
    tmp_path: Path, small_model: nn.Module
) -> None:
    old = _metadata("mobilenet_v2").to_dict()
    del old["calibration"]
    path = _write_raw(tmp_path / "old.pt", old, small_model.state_dict())
    assert read_metadata(path).calibration == {}


def test_rewrite_metadata_keeps_the_weights_and_changes_the_identity(
    tmp_path: Path, small_model: nn.Module
) -> None:
    import dataclasses

    path = tmp_path / "model.pt"
    save_checkpoint(path, small_model, _metadata("mobilenet_v2"))
    before, sha = read_metadata(path), checkpoint_sha256(path)
    calibration = {"temperature": 1.7, "recordings": ["a.mpg", "b.mpg"]}
    rewrite_metadata(path, dataclasses.replace(before, calibration=calibration))
    loaded = load_checkpoint(path)
    assert loaded.metadata.calibration == calibration
    assert loaded.metadata.training == before.training and loaded.metadata.created == before.created
    for name, tensor in small_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    assert checkpoint_sha256(path) != sha  # a calibrated model is another file
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_rewrite_metadata_refuses_metadata_for_other_weights_and_keeps_the_file(
    tmp_path: Path, small_model: nn.Module
) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_model, _metadata("mobilenet_v2"))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="refusing to rewrite"):
        rewrite_metadata(path, _metadata("mobilenet_v2", class_names=["a", "b"]))
    with pytest.raises(CheckpointError, match="must be a CheckpointMetadata"):
        rewrite_metadata(path, {"calibration": {}})  # type: ignore[arg-type]
    assert path.read_bytes() == before
    other = tmp_path / "other.pt"
    torch.save([1, 2], other)
    with pytest.raises(CheckpointError, match="not a pcle-viewer checkpoint"):
        rewrite_metadata(other, _metadata())


# ---------------------------------------------------------------------------- atomic saving


@pytest.mark.parametrize("target", ["torch.save", "os.replace", "os.fsync"])
def test_failed_save_keeps_previous_file_and_leaves_no_temp(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_model: nn.Module,
    target: str,
) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_model, _metadata("mobilenet_v2", provenance="first"))
    before = path.read_bytes()
    seen_at_failure: list[str] = []

    def disk_full(*_args: Any, **_kwargs: Any) -> None:
        seen_at_failure.extend(p.name for p in tmp_path.iterdir())
        raise OSError(errno.ENOSPC, "No space left on device")

    module, name = target.split(".")
    monkeypatch.setattr(torch if module == "torch" else os, name, disk_full)
    with pytest.raises(
        CheckpointError, match=r"cannot write checkpoint .*: the disk is full or not writable"
    ):
        save_checkpoint(path, small_model, _metadata("mobilenet_v2", provenance="second"))
    monkeypatch.undo()

    # The new data went to a temporary file next to the target, which was then removed.
    temps = [n for n in seen_at_failure if n != "model.pt"]
    assert len(temps) == 1 and temps[0].startswith(".model.pt.") and temps[0].endswith(".tmp")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert read_metadata(path).provenance == "first"


def test_failed_first_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_model: nn.Module
) -> None:
    def disk_full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "model.pt", small_model, _metadata("mobilenet_v2"))
    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_inside_torch_save_is_named_and_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_model: nn.Module
) -> None:
    """The real torch zip writer meets the full disk: its "enforce fail at
    inline_container.cc" becomes one plain sentence, and the old checkpoint stays."""
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_model, _metadata("mobilenet_v2", provenance="first"))
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", torch_save_on_full_disk(torch.save))
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(path, small_model, _metadata("mobilenet_v2", provenance="second"))
    monkeypatch.undo()
    assert str(info.value) == (
        f"cannot write checkpoint {path}: the disk is full or not writable "
        "(No space left on device)"
    )
    assert "inline_container" in str(info.value.__context__)  # what torch itself raised
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_save_to_a_folder_is_refused(tmp_path: Path, small_model: nn.Module) -> None:
    with pytest.raises(CheckpointError, match=r"it is a folder; give a file name"):
        save_checkpoint(tmp_path, small_model, _metadata("mobilenet_v2"))
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_model_that_does_not_fit_the_metadata(tmp_path: Path) -> None:
    model = build_model("resnet18", num_classes=4)
    with pytest.raises(CheckpointError, match=r"(?s)refusing to save.*fc\.1\.weight") as info:
        save_checkpoint(tmp_path / "model.pt", model, _metadata())
    assert "[4, 512]" in str(info.value) and "[3, 512]" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_an_unknown_target_layer(tmp_path: Path, resnet18_model: nn.Module) -> None:
    with pytest.raises(CheckpointError, match=r"'target_layer'.*'layer9'"):
        save_checkpoint(tmp_path / "m.pt", resnet18_model, _metadata(target_layer="layer9"))


# ------------------------------------------------------------------------- unreadable files


def _load_error(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    with pytest.raises(CheckpointError) as info2:
        read_metadata(path)
    assert str(info2.value) == message  # same handling without building a model
    assert str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _load_error(tmp_path / "nope.pt")


def test_directory(tmp_path: Path) -> None:
    assert "is a directory" in _load_error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert "is empty" in _load_error(path)


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"\xde\xad\xbe\xef" * 100, b"hello, not a checkpoint\n"],
    ids=["bytes", "deadbeef", "text"],
)
def test_garbage_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    message = _load_error(path)
    assert "is not a PyTorch checkpoint, or is truncated or corrupt" in message
    assert "weights_only` set to `False`" not in message  # never advise the unsafe retry


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_truncated_real_checkpoint(tmp_path: Path, saved: Path, fraction: float) -> None:
    data = saved.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert "truncated or corrupt" in _load_error(path)


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_payload_is_live_when_unpickled_unsafely(tmp_path: Path) -> None:
    """Control for the malicious-pickle tests: the payload really does run code."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("writer", ["torch.save", "pickle-2", "pickle-4", "pickle-5"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": FORMAT, "metadata": _Payload(marker), "state_dict": {}}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(writer.split("-")[1])))
    message = _load_error(path)
    assert "refused" in message
    assert "execute code" in message
    assert "never needs" in message
    assert "malicious" in message
    assert "exec" in message  # names what it would have called
    assert not marker.exists()


@pytest.mark.parametrize("wrapped", [False, True], ids=["model", "dict-with-model"])
def test_a_whole_pickled_model_is_named_not_called_malicious(
    tmp_path: Path, small_model: nn.Module, wrapped: bool
) -> None:
    path = tmp_path / "whole.pt"
    torch.save({"model": small_model, "epoch": 3} if wrapped else small_model, path)
    message = _load_error(path)
    assert "this file holds a whole pickled model (MobileNetV2" in message
    assert "not a checkpoint of this project" in message
    assert "model.state_dict()" in message
    assert "models.checkpoint.save_checkpoint(path, model, metadata)" in message
    assert "malicious" not in message and "weights_only" not in message


def test_a_whole_model_with_a_foreign_global_is_still_refused_as_malicious(
    tmp_path: Path, small_model: nn.Module
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": small_model, "extra": _Payload(marker)}, path)
    message = _load_error(path)
    assert "malicious" in message and "exec" in message
    assert "whole pickled model" not in message
    assert not marker.exists()


def test_a_loaded_module_object_is_named_as_a_whole_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_model: nn.Module
) -> None:
    """Where torch's allow-list let the classes through, the object itself says it."""
    monkeypatch.setattr(torch, "load", lambda *_args, **_kwargs: small_model)
    path = tmp_path / "whole.pt"
    path.write_bytes(b"x")
    assert "holds a whole pickled model (MobileNetV2" in _load_error(path)


# ------------------------------------------------------------------ valid torch, not ours


def test_bare_state_dict(tmp_path: Path, resnet18_model: nn.Module) -> None:
    path = tmp_path / "bare.pt"
    torch.save(resnet18_model.state_dict(), path)
    message = _load_error(path)
    assert "bare state_dict" in message
    assert "lacks the metadata" in message
    assert "look like resnet18" in message


def test_plain_torchvision_state_dict_is_recognised(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    path = tmp_path / "tv.pt"
    with torch.device("meta"):
        state = resnet18(weights=None, num_classes=3).state_dict()
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in state.items()}, path)
    message = _load_error(path)
    assert "bare state_dict" in message and "plain torchvision resnet18" in message


def test_training_dict_without_our_format(tmp_path: Path, resnet18_model: nn.Module) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": resnet18_model.state_dict(), "epoch": 3}, path)
    message = _load_error(path)
    assert "not a pcle-viewer checkpoint" in message
    assert "lacks metadata" in message
    assert "'state_dict', 'epoch'" in message


@pytest.mark.parametrize("obj", [torch.zeros(3), [1, 2, 3], {}], ids=["tensor", "list", "empty"])
def test_other_torch_objects(tmp_path: Path, obj: Any) -> None:
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    assert "not a pcle-viewer checkpoint" in _load_error(path)


def test_newer_format_version(tmp_path: Path, resnet18_model: nn.Module) -> None:
    path = tmp_path / "future.pt"
    torch.save(
        {
            "format": FORMAT,
            "format_version": 2,
            "metadata": _metadata().to_dict(),
            "state_dict": resnet18_model.state_dict(),
        },
        path,
    )
    assert "format version 2" in _load_error(path)


# ---------------------------------------------------------------- metadata / weights errors


def test_invalid_metadata_in_file(tmp_path: Path, resnet18_model: nn.Module) -> None:
    meta = _metadata().to_dict()
    del meta["class_names"]
    path = _write_raw(tmp_path / "m.pt", meta, resnet18_model.state_dict())
    assert "invalid metadata" in _load_error(path)
    assert "'class_names'" in _load_error(path)


def test_unknown_architecture_in_file(tmp_path: Path, resnet18_model: nn.Module) -> None:
    meta = _metadata().to_dict()
    meta["arch"] = "vgg16"
    path = _write_raw(tmp_path / "m.pt", meta, resnet18_model.state_dict())
    message = _load_error(path)
    assert "unknown architecture 'vgg16'" in message
    assert "resnet18, resnet50, mobilenet_v2" in message


def test_resnet18_weights_with_resnet50_metadata(tmp_path: Path, resnet18_model: nn.Module) -> None:
    meta = _metadata().to_dict()
    meta["arch"] = "resnet50"
    path = _write_raw(tmp_path / "m.pt", meta, resnet18_model.state_dict())
    message = _load_error(path)
    assert "resnet50 with 3 classes" in message
    assert "missing keys (" in message
    assert "layer1.0.conv3.weight" in message  # a resnet50-only key, by name
    assert "more)" in message  # long lists are cut, with a count
    assert "shape mismatches (" in message
    assert "fc.1.weight: checkpoint [3, 512] vs metadata [3, 2048]" in message
    assert "These weights look like resnet18" in message
    assert len(message) < 2000


def test_mobilenet_weights_with_resnet18_metadata(tmp_path: Path) -> None:
    model = build_model("mobilenet_v2", num_classes=3)
    path = _write_raw(tmp_path / "m.pt", _metadata().to_dict(), model.state_dict())
    message = _load_error(path)
    assert "unexpected keys (" in message and "classifier.1.weight" in message
    assert "look like mobilenet_v2" in message


def test_class_count_mismatch(tmp_path: Path) -> None:
    model = build_model("resnet18", num_classes=4)
    path = _write_raw(tmp_path / "m.pt", _metadata().to_dict(), model.state_dict())
    message = _load_error(path)
    assert "fc.1.weight: checkpoint [4, 512] vs metadata [3, 512]" in message
    assert "fc.1.bias: checkpoint [4] vs metadata [3]" in message
    assert "4 outputs" in message and "3 class names" in message
    assert "missing keys" not in message


def test_non_finite_weights(tmp_path: Path, resnet18_model: nn.Module) -> None:
    state = {k: v.clone() for k, v in resnet18_model.state_dict().items()}
    state["fc.1.bias"][0] = float("nan")
    path = _write_raw(tmp_path / "m.pt", _metadata().to_dict(), state)
    message = _load_error(path)
    assert "NaN or infinite" in message and "fc.1.bias" in message


def test_state_dict_that_is_not_tensors(tmp_path: Path) -> None:
    state: dict[str, Any] = {"conv1.weight": [1, 2]}
    path = _write_raw(tmp_path / "m.pt", _metadata().to_dict(), state)
    assert "must map names to tensors" in _load_error(path)


def test_trunk_dropout_round_trips_and_mismatched_dropouts_are_refused(tmp_path: Path) -> None:
    meta = CheckpointMetadata(
        arch="resnet18",
        class_names=["a", "b"],
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layer="layer4",
        dropout=0.2,
        trunk_dropout=0.3,
        provenance="test",
    )
    path = tmp_path / "trunk.pt"
    save_checkpoint(path, build_model("resnet18", 2, 0.2, trunk_dropout=0.3), meta)
    model, loaded = load_checkpoint(path)
    assert loaded.trunk_dropout == 0.3
    assert isinstance(model.get_submodule("layer3.2"), nn.Dropout2d)

    with pytest.raises(CheckpointError, match="Dropout modules"):  # metadata says trunk dropout
        save_checkpoint(tmp_path / "bad.pt", build_model("resnet18", 2, 0.2), meta)
    with pytest.raises(CheckpointError, match="Dropout modules"):  # head p differs
        save_checkpoint(tmp_path / "bad.pt", build_model("resnet18", 2, 0.5, 0.3), meta)
    assert not (tmp_path / "bad.pt").exists()
    old = meta.to_dict()
    del old["trunk_dropout"]  # a file written before the field existed
    assert CheckpointMetadata.from_dict(old).trunk_dropout == 0.0
