"""Inference runtimes for the engine's deterministic prefix: ONNX Runtime and OpenVINO in fp32,
and OpenVINO in bf16 when asked for by name (:data:`APPROXIMATE`).

The prefix (:class:`~app.explain.split.PrefixSplit`) is exported to ONNX once per model and
input shape, and each runtime compiles that file. Before a runtime is used it must reproduce
torch's prefix output on the first frame and a fixed random one (relative error at most
:data:`EXACT_TOLERANCE`); ``auto`` times every installed exact runtime that passes and keeps
the fastest. The ONNX file and
the outcome of the checks are cached on disk, in a folder named by a SHA-256 of the prefix's
code and weights, the input shape and the torch version, so a later start skips the export,
the checks and the timing (each runtime's own version is part of the cached check; OpenVINO
also caches its compiled model there).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

import torch
import torch.fx as fx
from torch import Tensor

from app.explain.errors import ExplainerError
from app.explain.split import PrefixSplit
from app.private_files import write_atomic

RUNTIMES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-bf16": "openvino"}
"""Runtime name -> the package it needs."""

APPROXIMATE = frozenset({"openvino-bf16"})
"""Reduced-precision runtimes: only when named (``auto`` never takes one), labelled approximate
wherever their maps are shown or recorded, and checked against :data:`APPROXIMATE_TOLERANCE`
instead of :data:`EXACT_TOLERANCE`."""

BACKENDS = ("auto", "torch", *RUNTIMES)
"""What ``Explainer(..., backend=)`` and ``--backend`` accept."""

EXACT_TOLERANCE = 1e-4
"""Largest accepted max |runtime - torch| / max |torch| of the prefix output on the first frame."""

APPROXIMATE_TOLERANCE = 0.05
"""The same for an approximate runtime: bf16 keeps 8 bits of mantissa (relative rounding
~4e-3 per operation); beyond this the runtime is not computing the same network."""

_TIMING_RUNS = 3
"""Timed runs per runtime in the first-frame check (after the checked run)."""


class BackendError(ExplainerError):
    """A backend was asked for that cannot run this model here."""


def installed_runtimes() -> list[str]:
    """The runtimes whose package is importable, in :data:`RUNTIMES` order."""
    return [name for name, package in RUNTIMES.items() if importlib.util.find_spec(package)]


def runtime_version(name: str) -> str:
    return importlib.metadata.version(RUNTIMES[name])


def default_cache_dir() -> Path:
    """``$PCLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pcle-viewer`` (``~/.cache/pcle-viewer``)."""
    explicit = os.environ.get("PCLE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pcle-viewer"


def check_backend(backend: str, device: torch.device) -> None:
    """Raise :class:`BackendError` when ``backend`` is unknown, not installed, or a runtime on
    a device other than the CPU (``auto`` and ``torch`` always pass)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    if backend not in RUNTIMES:
        return
    if backend not in installed_runtimes():
        raise BackendError(
            f"backend {backend!r} needs the {RUNTIMES[backend]} package, which is not "
            "installed: pip install -e '.[runtimes]'"
        )
    if device.type != "cpu":
        raise BackendError(f"backend {backend!r} runs on the CPU; this explainer is on {device}")


def prefix_key(prefix: fx.GraphModule, example: Tensor) -> str:
    """SHA-256 naming one converted prefix: its code, every weight, the input shape and dtype,
    and the torch version (which writes the ONNX file)."""
    digest = hashlib.sha256()
    digest.update(prefix.code.encode())
    digest.update(f"{tuple(example.shape[1:])} {example.dtype} {torch.__version__}".encode())
    for name, tensor in prefix.state_dict().items():
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def export_onnx(prefix: fx.GraphModule, example: Tensor, path: Path) -> None:
    """Write ``prefix`` as ONNX with a dynamic row axis (atomically)."""

    def write(file: BinaryIO) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                prefix,
                (example[:1],),
                file,
                dynamo=False,
                input_names=["rows"],
                output_names=["activation"],
                dynamic_axes={"rows": {0: "n"}, "activation": {0: "n"}},
            )

    write_atomic(path, write, sync=False)


def import_openvino() -> ModuleType:
    """``openvino``, imported with Intel's usage telemetry blocked.

    Unless the user has opted out, importing openvino sends an event to Google Analytics from a
    background thread and writes an id under ``~/intel``; a viewer in an operating room sends
    nothing. With ``openvino_telemetry`` unimportable during the import, openvino takes its own
    no-op stub.
    """
    if "openvino" not in sys.modules:
        blocked = "openvino_telemetry" not in sys.modules
        if blocked:
            sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
        try:
            import openvino  # noqa: F401
        finally:
            if blocked:
                del sys.modules["openvino_telemetry"]
    return sys.modules["openvino"]


class _SignalStack(ctypes.Structure):
    """``stack_t`` of sigaltstack(2)."""

    _fields_ = (("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t))


@contextlib.contextmanager
def own_signal_stack() -> Iterator[None]:
    """Give the calling thread back its own alternate signal stack after the block.

    OpenVINO's CPU plugin installs a new alternate signal stack on the thread that compiles a
    model and, when the model is freed, puts back the one it found and unmaps its own. Freed
    in another order than made (two explainers, a settings change, garbage collection) that
    leaves a thread on an unmapped stack: the next signal (SIGTERM, Ctrl+C) kills the process
    with SIGSEGV. Around every call that makes or frees OpenVINO objects the thread's stack is
    saved and restored, so the plugin's stack is never the one in use. A no-op off Linux.
    """
    libc = _libc()
    if libc is None:
        yield
        return
    saved = _SignalStack()
    libc.sigaltstack(None, ctypes.byref(saved))
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(saved), None)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


def _as_array(rows: Tensor):  # -> np.ndarray
    return rows.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxRuntimePrefix:
    """The prefix on an ONNX Runtime CPU session (fp32)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int, _cache: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: the pipeline's decoding shares the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, rows: Tensor) -> Tensor:
        return torch.from_numpy(self._session.run(None, {"rows": _as_array(rows)})[0])


class OpenVinoPrefix:
    """The prefix compiled by OpenVINO for the CPU (fp32, latency hint)."""

    name = "openvino"

    def __init__(
        self, onnx_path: Path, threads: int, cache: Path | None = None, precision: str = "f32"
    ) -> None:
        openvino = import_openvino()
        config: dict[str, object] = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        if cache is not None:
            config["CACHE_DIR"] = str(cache / "openvino")
        with own_signal_stack():
            self._request = (
                openvino.Core().compile_model(str(onnx_path), "CPU", config).create_infer_request()
            )

    def __call__(self, rows: Tensor) -> Tensor:
        with own_signal_stack():
            return torch.from_numpy(self._request.infer({0: _as_array(rows)})[0])

    def __del__(self) -> None:
        request = self.__dict__.pop("_request", None)
        if request is not None and own_signal_stack is not None:  # None late at exit
            with own_signal_stack():  # the plugin's teardown resets this thread's stack
                del request


RUNNERS: dict[str, Callable[..., Callable[[Tensor], Tensor]]] = {
    "onnxruntime": OnnxRuntimePrefix,
    "openvino": OpenVinoPrefix,
    "openvino-bf16": functools.partial(OpenVinoPrefix, precision="bf16"),
}
"""Runtime name -> ``(onnx_path, threads, cache_folder_or_None) -> runner``."""


@dataclasses.dataclass
class _Check:
    """One runtime's first-frame check: its version, relative error and median time."""

    version: str
    error: float
    ms: float

    def accepted(self, name: str) -> bool:
        """Whether runtime ``name`` passed: within its tolerance."""
        return self.error <= (APPROXIMATE_TOLERANCE if name in APPROXIMATE else EXACT_TOLERANCE)


def _check_rows(example: Tensor) -> Tensor:
    """The first frame and a fixed random one: a blank warm-up frame alone (zeros) would
    exercise little of the network, and two rows exercise the dynamic row axis."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(example[:1].shape, generator=generator, dtype=example.dtype)
    return torch.cat([example[:1], probe])


def _check(
    run: Callable[[Tensor], Tensor], reference: Tensor, rows: Tensor, version: str
) -> _Check:
    out = run(rows)
    if out.shape != reference.shape:
        return _Check(version, math.inf, math.inf)
    error = float((out - reference).abs().max()) / max(float(reference.abs().max()), 1e-12)
    times = []
    for _ in range(_TIMING_RUNS):
        start = time.perf_counter()
        run(rows[:1])
        times.append((time.perf_counter() - start) * 1e3)
    return _Check(version, error, sorted(times)[len(times) // 2])


@contextlib.contextmanager
def _folder(cache_dir: Path | None, key: str) -> Iterator[tuple[Path, bool]]:
    """(folder, persistent): the cache folder for ``key``; a temporary one without a cache, or
    when the cache folder cannot be made or written (read-only, a file in its place): the
    conversion then happens again next time, and nothing else changes."""
    folder = None if cache_dir is None else Path(cache_dir) / "prefix" / key
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            yield folder, True
            return
    with tempfile.TemporaryDirectory(prefix="pcle-prefix-") as temporary:
        yield Path(temporary), False


def _read_checks(path: Path) -> dict[str, _Check]:
    try:
        raw = json.loads(path.read_text())
        return {name: _Check(**fields) for name, fields in raw["checks"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # missing or damaged: checked again and rewritten


def _load(
    name: str, prefix: fx.GraphModule, example: Tensor, folder: Path, threads: int, cache: bool
) -> Callable[[Tensor], Tensor]:
    """The runtime's runner for the ONNX file in ``folder``, exporting it when missing and once
    more when the file there does not load (a damaged cache)."""
    onnx_path = folder / "prefix.onnx"
    for attempt in (0, 1):
        if not onnx_path.exists():
            try:
                export_onnx(prefix, example, onnx_path)
            except Exception as error:  # an operator the exporter does not know, ...
                raise BackendError(f"the prefix does not export to ONNX: {error}") from error
        try:
            return RUNNERS[name](onnx_path, threads, folder if cache else None)
        except Exception as error:  # each runtime raises its own types for a bad file
            onnx_path.unlink(missing_ok=True)
            if attempt:
                raise BackendError(f"{name} cannot load the prefix: {error}") from error
    raise AssertionError("unreachable")  # pragma: no cover


def attach_runtime(
    split: PrefixSplit,
    example: Tensor,
    backend: str,
    cache_dir: Path | None,
    threads: int | None = None,
) -> tuple[PrefixSplit, str]:
    """``split`` with its prefix on ``backend`` (a runtime name, or ``auto``).

    Args:
        split: from :func:`~app.explain.split.split_for_passes`, model in eval mode.
        example: (B, C, H, W) the first frame(s), float32 on the CPU.
        backend: a name in :data:`RUNTIMES`, or ``auto`` (the fastest exact installed one).
        cache_dir: where converted prefixes are kept between runs; None converts every time.
        threads: the runtime's thread count; None takes torch's.

    Returns:
        (split, note): the split with ``run_prefix`` and ``backend`` set (unchanged, in torch,
        when ``auto`` finds no exact runtime), and a line saying what was chosen and why.

    Raises:
        BackendError: a named runtime that fails the exactness check or cannot load the model.
    """
    threads = threads or torch.get_num_threads()
    candidates = [n for n in RUNNERS if n not in APPROXIMATE] if backend == "auto" else [backend]
    candidates = [name for name in candidates if name in installed_runtimes()]
    if not candidates:
        return split, "no inference runtime is installed: the prefix runs in torch"
    versions = {name: runtime_version(name) for name in candidates}
    key = prefix_key(split.prefix, example)
    with _folder(cache_dir, key) as (folder, persistent):
        manifest = folder / "checks.json"
        cached = _read_checks(manifest) if persistent else {}
        checks = {n: c for n, c in cached.items() if versions.get(n) == c.version}
        runners: dict[str, Callable[[Tensor], Tensor]] = {}
        reference: Tensor | None = None
        rows = _check_rows(example)
        for name in candidates:
            if name in checks:
                continue
            try:
                runners[name] = _load(name, split.prefix, example, folder, threads, persistent)
            except BackendError:
                if backend != "auto":
                    raise
                checks[name] = _Check(versions[name], math.inf, math.inf)
                continue
            if reference is None:
                with torch.no_grad():
                    reference = split.prefix(rows)
            checks[name] = _check(runners[name], reference, rows, versions[name])
        exact = [name for name in candidates if checks[name].accepted(name)]
        if exact:
            chosen = min(exact, key=lambda n: checks[n].ms)
            if chosen not in runners:  # its check was cached: load it only now
                runners[chosen] = _load(chosen, split.prefix, example, folder, threads, persistent)
        if persistent:  # a full disk only loses the cache entry
            payload = {
                "checks": {n: dataclasses.asdict(c) for n, c in {**cached, **checks}.items()}
            }
            with contextlib.suppress(OSError):
                write_atomic(manifest, json.dumps(payload, indent=2).encode(), sync=False)
    if not exact:
        errors = ", ".join(f"{n} {checks[n].error:.1e}" for n in candidates)
        if backend != "auto":
            raise BackendError(
                f"{backend} does not reproduce torch's prefix on this model (relative error "
                f"{errors}, more than it may be); use the torch backend"
            )
        return split, f"no runtime reproduces torch here ({errors}): the prefix runs in torch"
    note = f"prefix to the {split.boundary.describe()} on {chosen} {versions[chosen]}"
    if chosen in APPROXIMATE:
        note += f", approximate (relative error {checks[chosen].error:.1e} on the first frame)"
    return dataclasses.replace(split, run_prefix=runners[chosen], backend=chosen), note
