"""The checkpoint format: one file holding the weights and everything needed to use them.

A checkpoint is a ``torch.save`` of::

    {"format": "pcle-viewer-checkpoint", "format_version": 1,
     "metadata": CheckpointMetadata.to_dict(), "state_dict": {name: CPU tensor}}

so the viewer needs nothing but the file. A checkpoint is untrusted input: it is only ever read
with ``torch.load(..., weights_only=True)``, which refuses pickles that would import and call
code, and every way a file can be wrong is reported as a :class:`CheckpointError` that names the
file and says what is wrong with it. A whole pickled model (``torch.save(model)``) is
recognised as such and refused with what to save instead; a pickle that imports anything else
is refused as possibly malicious.

Files are written whole or not at all (:func:`write_torch_file`): a full disk or a read-only
folder leaves the previous file in place and says so in one line.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import pickle
import pickletools
import sys
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from app.private_files import atomic_write
from app.timestamps import utc_now_iso
from models.architectures import ARCHITECTURES, build_model, resolve_arch

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointMetadata",
    "LoadedCheckpoint",
    "checkpoint_sha256",
    "load_checkpoint",
    "read_metadata",
    "rewrite_metadata",
    "save_checkpoint",
    "write_torch_file",
]

FORMAT = "pcle-viewer-checkpoint"
"""Value of the top-level ``"format"`` key that marks a file as ours."""
FORMAT_VERSION = 1
"""The newest checkpoint format version this code reads and the one it writes."""

_MAX_LISTED = 6  # names shown per category in a weight-mismatch message


class CheckpointError(Exception):
    """A checkpoint could not be read, written or used; the message says why and names the file."""


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_real(value: object) -> bool:
    """A real number that is finite as a float: not NaN, not infinite, not an int too large."""
    if not _is_real(value):
        return False
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float range
        return False


def _bad(name: str, expected: str, value: object) -> CheckpointError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return CheckpointError(
        f"metadata field {name!r} must be {expected}, got {shown} ({type(value).__name__})"
    )


def _json_like(value: object, where: str) -> Any:
    """Return a copy of ``value`` made of str/int/float/bool/None/list/dict(str keys) only."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_like(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise CheckpointError(
                    f"metadata field {where!r} has a non-string key {key!r}; "
                    "only JSON-like values (str, int, float, bool, None, list, dict) are allowed"
                )
            out[key] = _json_like(v, f"{where}.{key}")
        return out
    raise CheckpointError(
        f"metadata field {where!r} holds a {type(value).__name__}; only JSON-like values "
        "(str, int, float, bool, None, list, dict with string keys) are allowed"
    )


def _real_triple(name: str, value: object, positive: bool) -> tuple[float, float, float]:
    expected = "3 positive finite numbers" if positive else "3 finite numbers"
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _bad(name, expected, value)
    if not all(_is_finite_real(v) and (v > 0 or not positive) for v in value):
        raise _bad(name, expected, value)
    return (float(value[0]), float(value[1]), float(value[2]))


@dataclass
class CheckpointMetadata:
    """Everything besides the weights that the viewer needs to use a model.

    Values are validated (and normalised: tuples, canonical ``arch``) on construction; an
    invalid value raises :class:`CheckpointError` naming the field.

    Attributes:
        arch: Architecture name; stored in canonical form (a key of
            :data:`models.architectures.ARCHITECTURES`).
        class_names: Display names of the output classes, in logit order; at least 2,
            distinct and non-empty. ``len(class_names)`` is the model's output size.
        input_size: ``(H, W)`` in pixels that frames are resized to before the network.
        mean: Per-channel (R, G, B) normalisation mean, applied after scaling to ``[0, 1]``.
        std: Per-channel normalisation standard deviation, all ``> 0``.
        target_layer: Module name of the layer the attribution methods use, e.g. ``"layer4"``.
        dropout: Dropout probability ``p`` of the classifier head, ``0 <= p < 1``.
        trunk_dropout: Probability of the ``Dropout2d`` on the target layer's input (see
            :func:`models.architectures.build_model`); 0 (the default, and what older files
            mean) for none.
        provenance: Free text saying where the weights come from, e.g.
            ``"random initialisation"`` or ``"trained on ... by models.train"``.
        intended_use: Free text shown to the user, e.g. ``"phantom demo, not for clinical use"``.
        training: JSON-like free summary of the training run (data, split, epochs, metrics).
        calibration: JSON-like calibration of the outputs, fitted after training on recordings
            the model did not train on (temperatures, abstention and prediction-set rules; its
            schema is :mod:`app.calibration`'s). Empty (the default, and what older files
            mean): not calibrated.
        created: Creation time, ISO 8601 in UTC.
        format_version: Version of the checkpoint format the metadata was written for.
    """

    arch: str
    class_names: list[str]
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    target_layer: str
    dropout: float
    provenance: str
    intended_use: str = "research use only, not for clinical use"
    trunk_dropout: float = 0.0
    training: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=utc_now_iso)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str):
            raise _bad("arch", "a string", self.arch)
        try:
            self.arch = resolve_arch(self.arch)
        except ValueError as exc:
            raise CheckpointError(f"metadata field 'arch': {exc}") from None

        names = self.class_names
        expected = "a list of at least 2 distinct non-empty strings"
        if not isinstance(names, (list, tuple)) or len(names) < 2:
            raise _bad("class_names", expected, names)
        if not all(isinstance(n, str) and n.strip() for n in names) or len(set(names)) != len(
            names
        ):
            raise _bad("class_names", expected, names)
        self.class_names = list(names)

        size = self.input_size
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise _bad("input_size", "2 positive ints (H, W)", size)
        self.input_size = (size[0], size[1])

        self.mean = _real_triple("mean", self.mean, positive=False)
        self.std = _real_triple("std", self.std, positive=True)

        if not isinstance(self.target_layer, str) or not self.target_layer:
            raise _bad("target_layer", "a non-empty module name", self.target_layer)
        for name in ("dropout", "trunk_dropout"):
            value = getattr(self, name)
            if not (_is_finite_real(value) and 0.0 <= value < 1.0):
                raise _bad(name, "a number in [0, 1)", value)
            setattr(self, name, float(value))

        for name in ("provenance", "intended_use"):
            if not isinstance(getattr(self, name), str):
                raise _bad(name, "a string", getattr(self, name))
        if not isinstance(self.training, Mapping):
            raise _bad("training", "a dict", self.training)
        self.training = _json_like(self.training, "training")
        if not isinstance(self.calibration, Mapping):
            raise _bad("calibration", "a dict", self.calibration)
        self.calibration = _json_like(self.calibration, "calibration")

        if not isinstance(self.created, str):
            raise _bad("created", "an ISO 8601 date-time string", self.created)
        try:
            datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError:
            raise _bad("created", "an ISO 8601 date-time string", self.created) from None

        version = self.format_version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad("format_version", "a positive int", version)
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"metadata format_version {version} is newer than this program reads "
                f"({FORMAT_VERSION}); update the viewer"
            )

    @property
    def num_classes(self) -> int:
        """Number of output classes, ``len(class_names)``."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as plain data loadable by ``torch.load(weights_only=True)``.

        Returns:
            A dict with one entry per field whose values are only str, int, float, bool,
            None, list and dict (tuples become lists).
        """
        return {
            "arch": self.arch,
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "target_layer": self.target_layer,
            "dropout": self.dropout,
            "trunk_dropout": self.trunk_dropout,
            "provenance": self.provenance,
            "intended_use": self.intended_use,
            "training": _json_like(self.training, "training"),
            "calibration": _json_like(self.calibration, "calibration"),
            "created": self.created,
            "format_version": self.format_version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckpointMetadata:
        """Validate and rebuild metadata from :meth:`to_dict` output (e.g. read from a file).

        Unknown keys are ignored, so newer writers may add fields.

        Args:
            d: A mapping with at least the fields without defaults (``arch``, ``class_names``,
                ``input_size``, ``mean``, ``std``, ``target_layer``, ``dropout``,
                ``provenance``).

        Returns:
            The validated metadata.

        Raises:
            CheckpointError: If ``d`` is not a mapping, a required field is missing, or a field
                has a wrong type or value; the message names the field.
        """
        if not isinstance(d, Mapping):
            raise CheckpointError(f"metadata must be a dict, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in d:
                kwargs[f.name] = d[f.name]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise CheckpointError(f"metadata is missing the required field {f.name!r}")
        return cls(**kwargs)


class LoadedCheckpoint(NamedTuple):
    """Result of :func:`load_checkpoint`.

    Attributes:
        model: The network with the checkpoint's weights, in ``eval()`` mode on the requested
            device; maps ``(N, 3, H, W)`` inputs to ``(N, metadata.num_classes)`` logits.
        metadata: The checkpoint's validated metadata.
    """

    model: nn.Module
    metadata: CheckpointMetadata


# --------------------------------------------------------------------------- weight checking


@cache
def _reference_shapes(arch: str, num_classes: int, plain: bool = False) -> dict[str, torch.Size]:
    """State-dict shapes of ``arch``, computed on the meta device (no memory, no init cost).

    With ``plain=True`` the head is torchvision's own (a single ``fc`` Linear for ResNets).
    """
    with torch.device("meta"):
        if plain:
            from torchvision import models as tvm

            model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        else:
            model = build_model(arch, num_classes)
    return {k: v.shape for k, v in model.state_dict().items()}


def _shape(s: torch.Size | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in s) + "]"


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"\n  {title} ({len(items)}): {shown}{more}"


def _lookalike(keys: set[str], exclude: str = "") -> str:
    """Say which known network the state-dict key set ``keys`` belongs to, or return ``""``.

    Args:
        keys: The names in a state dict.
        exclude: An architecture not to report (the one the metadata claims).
    """
    for other in ARCHITECTURES:
        if other != exclude and keys == set(_reference_shapes(other, 2)):
            return f"These weights look like {other}."
    for other in ("resnet18", "resnet50"):
        if keys == set(_reference_shapes(other, 2, plain=True)):
            return (
                f"These weights look like a plain torchvision {other} (a single 'fc' Linear, "
                "without the Dropout head this viewer uses: 'fc.0' Dropout, 'fc.1' Linear)."
            )
    if keys and all(k.startswith("module.") for k in keys):
        return "Every key starts with 'module.': the weights were saved from a DataParallel."
    return ""


def _weights_mismatch(
    state_dict: Mapping[str, torch.Tensor], meta: CheckpointMetadata, source: str
) -> str:
    """Describe how ``state_dict`` fails to fit ``meta``'s network; ``""`` if it fits.

    ``source`` names where the weights come from ("checkpoint" or "model") in shape messages.
    """
    expected = _reference_shapes(meta.arch, meta.num_classes)
    keys = set(state_dict)
    missing = sorted(set(expected) - keys)
    unexpected = sorted(keys - set(expected))
    mismatched = [
        f"{k}: {source} {_shape(state_dict[k].shape)} vs metadata {_shape(expected[k])}"
        for k in sorted(keys & set(expected))
        if tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    if not (missing or unexpected or mismatched):
        return ""
    message = (
        f"the weights do not fit the architecture in the metadata "
        f"({meta.arch} with {meta.num_classes} classes):"
    )
    if missing:
        message += _listing("missing keys", missing)
    if unexpected:
        message += _listing("unexpected keys", unexpected)
    if mismatched:
        message += _listing("shape mismatches", mismatched)
    hint = _lookalike(keys, exclude=meta.arch) if missing or unexpected else ""
    head_weight = f"{ARCHITECTURES[meta.arch].head}.1.weight"
    if not hint and not (missing or unexpected) and head_weight in keys:
        outputs = state_dict[head_weight].shape[0] if state_dict[head_weight].dim() else 0
        if outputs != meta.num_classes:
            hint = (
                f"The final layer has {outputs} outputs but the metadata lists "
                f"{meta.num_classes} class names."
            )
    return f"{message}\n{hint}" if hint else message


def _check_state_dict(
    state_dict: object, meta: CheckpointMetadata, where: str, source: str = "checkpoint"
) -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` loads into ``meta``'s network.

    ``where`` prefixes the message (usually the path); ``source`` is passed to the mismatch text.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(
            f"{where}: 'state_dict' must be a dict of tensors, got {type(state_dict).__name__}"
        )
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(
            f"{where}: 'state_dict' must map names to tensors; bad entries: "
            + ", ".join(repr(k) for k in bad[:_MAX_LISTED])
        )
    problem = _weights_mismatch(state_dict, meta, source)
    if problem:
        raise CheckpointError(f"{where}: {problem}")
    non_finite = sorted(
        k
        for k, v in state_dict.items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    )
    if non_finite:
        raise CheckpointError(
            f"{where}: the weights contain NaN or infinite values"
            + _listing("affected tensors", non_finite)
        )
    target = meta.target_layer
    if target not in _module_names(meta.arch):
        raise CheckpointError(
            f"{where}: metadata field 'target_layer' names {target!r}, which is not a module "
            f"of {meta.arch} (default: {ARCHITECTURES[meta.arch].target_layer!r})"
        )


@cache
def _module_names(arch: str) -> frozenset[str]:
    with torch.device("meta"):
        model = build_model(arch, 2)
    return frozenset(name for name, _ in model.named_modules())


# --------------------------------------------------------------------------------- saving


def _dropouts(model: nn.Module) -> dict[str, tuple[str, float]]:
    return {
        name: (type(m).__name__, float(m.p))
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.dropout._DropoutNd)
    }


def _check_dropouts(model: nn.Module, meta: CheckpointMetadata, where: str) -> None:
    """Refuse a model whose Dropout modules differ from what the metadata rebuilds: the
    weights would load, but the MC passes would sample other sub-networks."""
    with torch.device("meta"):
        expected = _dropouts(
            build_model(meta.arch, meta.num_classes, meta.dropout, meta.trunk_dropout)
        )
    found = _dropouts(model)
    if found != expected:
        raise CheckpointError(
            f"{where}: the model's Dropout modules {found} differ from those the metadata "
            f"describes (dropout={meta.dropout}, trunk_dropout={meta.trunk_dropout}): {expected}"
        )


def save_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, metadata: CheckpointMetadata
) -> None:
    """Write ``model``'s weights and ``metadata`` to one checkpoint file, atomically.

    The file is written to a temporary file in the same directory, flushed and fsynced, then
    renamed over ``path``: a reader never sees a half-written file, and if anything fails (disk
    full, permissions) the previous file at ``path``, if any, is left intact and no temporary
    file remains (:func:`app.private_files.atomic_write`). The parent directory is created if
    needed.

    Args:
        path: Destination file, conventionally ``*.pt``.
        model: The network, e.g. from :func:`models.architectures.build_model`; its tensors are
            copied to the CPU. It must fit ``metadata`` (architecture, class count, target
            layer, Dropout modules and their probabilities), so that the file loads as the same
            model again.
        metadata: What the viewer needs besides the weights.

    Raises:
        CheckpointError: If the model does not fit the metadata (nothing is written) or the
            file could not be written.
    """
    path = Path(path)
    if not isinstance(metadata, CheckpointMetadata):
        raise CheckpointError(
            f"metadata must be a CheckpointMetadata, got {type(metadata).__name__}"
        )
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _check_state_dict(state_dict, metadata, f"refusing to save {path}", source="model")
    _check_dropouts(model, metadata, f"refusing to save {path}")
    _write(path, metadata, state_dict)


def _write(path: Path, metadata: CheckpointMetadata, state_dict: Mapping[str, Any]) -> None:
    """Write the checkpoint file atomically (the old file stays on any failure)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": metadata.to_dict(),
        "state_dict": state_dict,
    }
    write_torch_file(path, payload)


def write_torch_file(path: str | os.PathLike[str], payload: Any, what: str = "checkpoint") -> None:
    """``torch.save`` ``payload`` to ``path``, whole or not at all.

    The data goes to a temporary file next to ``path`` that is renamed over it
    (:func:`app.private_files.atomic_write`), so a failure leaves any previous file at ``path``
    untouched and no temporary file behind. A full disk reaches torch's zip writer as a short
    write and comes out as ``RuntimeError: [enforce fail at inline_container.cc:...] unexpected
    pos``; that, and any OSError, is reported as what it is.

    Args:
        path: The file to write; its folder is created if missing.
        payload: Plain data and tensors (what ``torch.load(weights_only=True)`` reads back).
        what: What the file is, for the message ("checkpoint", "resume file").

    Raises:
        CheckpointError: ``path`` is a folder, or the file could not be written: "cannot write
            checkpoint PATH: the disk is full or not writable (the system's reason)".
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"cannot write {what} {path}: it is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not private: checkpoints and resume files are meant to be shared; the umask decides.
        with atomic_write(path, private=False) as fh:
            torch.save(payload, fh)
    except (OSError, RuntimeError) as exc:
        cause = next(
            (e for e in (exc, exc.__cause__, exc.__context__) if isinstance(e, OSError)), None
        )
        reason = f" ({cause.strerror})" if cause is not None and cause.strerror else ""
        raise CheckpointError(
            f"cannot write {what} {path}: the disk is full or not writable{reason}"
        ) from (cause or exc)
    except Exception as exc:
        raise CheckpointError(f"cannot write {what} {path}: {exc}") from exc


# -------------------------------------------------------------------------------- loading


_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "SHORT_BINSTRING",
        "BINSTRING",
        "STRING",
    }
)


def _pickle_imports(path: Path) -> list[str] | None:
    """Names a pickle would import, found by parsing its opcodes without executing anything.

    Looks at ``data.pkl`` inside a zip-format torch file, else at the file itself.

    Returns:
        The ``module.name`` strings of the import opcodes (possibly empty), or ``None`` if the
        data is not a well-formed pickle.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                member = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return None
                data = zf.read(member)
        else:
            with open(path, "rb") as fh:
                data = fh.read(64 * 1024 * 1024)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None
    imports: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in _STRING_OPS and isinstance(arg, (str, bytes)):
                strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
            elif op.name in ("GLOBAL", "INST"):
                imports.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                imports.append(".".join(strings[-2:]) if len(strings) >= 2 else "<unknown>")
    except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError):
        return None  # genops raises these on bytes that are not a complete pickle
    return imports


@cache
def _weights_only_globals() -> frozenset[str]:
    """The ``module.name`` globals torch's weights-only unpickler accepts; empty where this
    torch does not tell (then every import counts as code)."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return frozenset(str(name) for name in _get_allowed_globals())
    except Exception:  # a private helper: absent or changed in another torch version
        return frozenset()


def _torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # torch's zip reader on a cut-short file, not the disk
            raise _corrupt(path, exc) from None
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    except pickle.UnpicklingError as exc:
        text = str(exc)
        lowered = text.lower()
        imports = _pickle_imports(path) if "weights only load failed" in lowered else None
        allowed = _weights_only_globals()
        # Every checkpoint imports the tensor rebuilders and OrderedDict: only other names
        # (or torch saying a global was refused) mean code; else the pickle is just damaged.
        unknown = [name for name in dict.fromkeys(imports or ()) if name not in allowed]
        foreign = sorted(unknown)
        carries_code = "weights only load failed" in lowered and (
            "global" in lowered or "unsupported class" in lowered or bool(foreign)
        )
        classes = _module_classes(unknown)  # in pickle order: the model's own class first
        if carries_code and classes:
            raise _whole_model(path, classes[0]) from None
        if carries_code:
            what = f" (it asks to import {', '.join(foreign)})" if foreign else ""
            raise CheckpointError(
                f"refused to load {path}: it contains pickled objects that would import and "
                f"execute code when loaded{what}. A checkpoint never needs that, so the file may "
                "be malicious; nothing in it was executed. Only load checkpoints written by "
                "models.checkpoint.save_checkpoint."
            ) from None
        raise _corrupt(path, exc) from None
    except Exception as exc:
        raise _corrupt(path, exc) from None


_HARMLESS_GLOBALS = frozenset({"builtins.set", "builtins.frozenset"})
"""Globals a pickled ``nn.Module`` brings besides its classes (its hook and buffer sets)."""


def _module_classes(names: list[str]) -> list[str]:
    """The ``nn.Module`` classes among ``names`` when every name is one (or a harmless
    builtin), i.e. the pickle is a whole model (``torch.save(model)``); else ``[]``.

    Only modules already imported are looked at, and only their ``__dict__``: nothing named by
    the file is imported or run.
    """
    classes = []
    for name in names:
        name = name.replace("__builtin__.", "builtins.", 1)  # pickle protocol 2 spelling
        if name in _HARMLESS_GLOBALS:
            continue
        module, _, attr = name.rpartition(".")
        found = getattr(sys.modules.get(module), "__dict__", {}).get(attr)
        if not (isinstance(found, type) and issubclass(found, nn.Module)):
            return []
        classes.append(name)
    return classes


def _whole_model(path: Path, top_class: str) -> CheckpointError:
    """The error for a file that holds a pickled ``nn.Module`` (``torch.save(model)``) rather
    than a checkpoint; ``top_class`` is the model's class, ``module.Name``."""
    return CheckpointError(
        f"refused to load {path}: this file holds a whole pickled model "
        f"({top_class.rpartition('.')[2]}, saved with torch.save(model)), not a checkpoint of "
        "this project; loading it would run code, so nothing in it was run. Save the model's "
        "weights with models.checkpoint.save_checkpoint(path, model, metadata), which stores "
        "model.state_dict() with the metadata the viewer needs (or train with "
        "python -m app train)."
    )


def _corrupt(path: Path, exc: BaseException) -> CheckpointError:
    """The error for a file torch cannot parse, with torch's reason in short."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # torch's weights-only message starts with advice to retry with weights_only=False, which
    # must not be passed on for an untrusted file; keep only the unpickler's own reason.
    marker = next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), None)
    if marker is not None:
        reason = lines[marker].split("WeightsUnpickler error:", 1)[-1].strip()
        lines = [reason] if reason else lines[marker + 1 : marker + 2]
    detail = lines[0].split(". ", 1)[0] if lines else ""
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return CheckpointError(
        f"{path} is not a PyTorch checkpoint, or is truncated or corrupt ({detail})"
    )


def _looks_like_state_dict(obj: Mapping[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def _unwrap(obj: Any, path: Path) -> tuple[CheckpointMetadata, Any]:
    """Check the top-level structure; return the validated metadata and the raw state dict."""
    if isinstance(obj, nn.Module):  # torch.load allowed its classes (add_safe_globals)
        raise _whole_model(path, type(obj).__qualname__)
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} is a PyTorch file but not a pcle-viewer checkpoint: it holds a "
            f"{type(obj).__name__}, not a dict with weights and metadata"
        )
    if obj.get("format") != FORMAT:
        if _looks_like_state_dict(obj):
            first = next(iter(obj))
            hint = _lookalike(set(obj))
            raise CheckpointError(
                f"{path} looks like a bare state_dict ({len(obj)} tensors, e.g. {first!r}), "
                "not a pcle-viewer checkpoint: it lacks the metadata (architecture, class names, "
                "input size, normalisation, target layer) the viewer needs. Wrap it with "
                f"models.checkpoint.save_checkpoint.{' ' + hint if hint else ''}"
            )
        keys = ", ".join(repr(k) for k in list(obj)[:_MAX_LISTED])
        inner = next(
            (k for k, v in obj.items() if isinstance(v, Mapping) and _looks_like_state_dict(v)),
            None,
        )
        lacks = (
            f" and lacks metadata; its {inner!r} entry looks like a bare state_dict"
            if inner is not None and "metadata" not in obj
            else ""
        )
        raise CheckpointError(
            f"{path} is a PyTorch file but not a pcle-viewer checkpoint (no "
            f"'format': {FORMAT!r} entry{lacks}; top-level keys: {keys or 'none'})"
        )
    version = obj.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path}: 'format_version' must be an int, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format version {version}, newer than this program reads "
            f"({FORMAT_VERSION}); update the viewer"
        )
    if "metadata" not in obj:
        raise CheckpointError(f"{path}: the checkpoint has no 'metadata' entry")
    if "state_dict" not in obj:
        raise CheckpointError(f"{path}: the checkpoint has no 'state_dict' entry")
    try:
        meta = CheckpointMetadata.from_dict(obj["metadata"])
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: invalid metadata: {exc}") from None
    return meta, obj["state_dict"]


def read_metadata(path: str | os.PathLike[str]) -> CheckpointMetadata:
    """Read and validate a checkpoint without building the model; return its metadata.

    The weights are checked against the metadata as in :func:`load_checkpoint` (names, shapes,
    finite values), so a file that passes here also loads.

    Args:
        path: A file written by :func:`save_checkpoint`.

    Returns:
        The validated metadata.

    Raises:
        CheckpointError: With the same messages as :func:`load_checkpoint` for unreadable,
            corrupt, code-carrying or foreign files and invalid metadata.
    """
    path = Path(path)
    meta, state_dict = _unwrap(_torch_load(path), path)
    _check_state_dict(state_dict, meta, str(path))
    return meta


def rewrite_metadata(path: str | os.PathLike[str], metadata: CheckpointMetadata) -> None:
    """Replace a checkpoint's metadata, keeping its weights, atomically.

    For what is learnt about a model after training without changing it, e.g. its
    calibration. The file's SHA-256 changes with it: a calibrated model is a different model
    to the recordings that name it.

    Args:
        path: A file written by :func:`save_checkpoint`.
        metadata: The new metadata; it must fit the weights (architecture, classes, layers)
            as for :func:`save_checkpoint`.

    Raises:
        CheckpointError: The file does not load (same messages as :func:`load_checkpoint`),
            the metadata does not fit its weights, or the file could not be written; the
            file is left as it was in every case.
    """
    path = Path(path)
    if not isinstance(metadata, CheckpointMetadata):
        raise CheckpointError(
            f"metadata must be a CheckpointMetadata, got {type(metadata).__name__}"
        )
    _, state_dict = _unwrap(_torch_load(path), path)
    _check_state_dict(state_dict, metadata, f"refusing to rewrite {path}")
    _write(path, metadata, state_dict)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Load a checkpoint safely and rebuild its model.

    The file is read with ``torch.load(weights_only=True)`` onto the CPU (a pickle that would
    execute code is refused, never run), the metadata is validated, the weights are checked
    against ``build_model(metadata.arch, metadata.num_classes, metadata.dropout,
    metadata.trunk_dropout)`` key by key and
    shape by shape, then loaded, and the model is moved to ``device``.

    Args:
        path: A file written by :func:`save_checkpoint`.
        device: Where to put the model, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns:
        ``LoadedCheckpoint(model, metadata)``; the model is in ``eval()`` mode on ``device``.

    Raises:
        CheckpointError: If the file is missing, a directory, empty, truncated or not a PyTorch
            file; carries code; is not a pcle-viewer checkpoint (e.g. a bare state_dict); has
            invalid metadata or an unknown architecture; or holds weights of another
            architecture or class count (the message names the mismatched keys and shapes).
    """
    path = Path(path)
    meta, state_dict = _unwrap(_torch_load(path), path)
    _check_state_dict(state_dict, meta, str(path))
    model = build_model(meta.arch, meta.num_classes, meta.dropout, meta.trunk_dropout)
    try:
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError) as exc:  # defensive: _check_state_dict covers the cases
        raise CheckpointError(f"{path}: the weights do not load: {exc}") from None
    return LoadedCheckpoint(model.to(device).eval(), meta)


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file's bytes, e.g. to record which model was used.

    Args:
        path: Any file, typically a checkpoint.

    Returns:
        64 lowercase hex characters.

    Raises:
        CheckpointError: If the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()
