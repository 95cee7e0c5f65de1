"""The deterministic prefix on ONNX Runtime and OpenVINO: the same maps as torch for every
method and model, ``auto`` choosing an exact runtime or falling back to torch, the disk cache
(reused, repaired when damaged), and clear errors for a backend that cannot run here."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from app.explain import Explainer, ExplainerError, runtimes
from app.explain.cut import CutPoint
from app.explain.runtimes import BackendError, check_backend, installed_runtimes
from tests.mc_models import BUILDERS, TARGETS

PASSES = 3
SIZE = 64
METHOD_OPTIONS = {
    "gradcam": {},
    "gradcam++": {},
    "smoothgradcam++": {"samples": 2},
    "scorecam": {"batch_size": 256},
    "reciprocam": {},
}
INSTALLED = installed_runtimes()
EXACT = [name for name in runtimes.RUNTIMES if name not in runtimes.APPROXIMATE]
needs_runtime = pytest.mark.skipif(not INSTALLED, reason="no inference runtime installed")


def _runtime(name: str) -> str:
    if name not in INSTALLED:
        pytest.skip(f"{name} is not installed")
    return name


def _frames(count: int = 1) -> Tensor:
    return torch.randn(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))


def _confident(model: nn.Module) -> nn.Module:
    """``model`` with its last Linear layer's weights scaled 30x, so that it predicts like a
    trained model. An untrained one predicts ~1/K for every class and its Recipro-CAM scores
    then vary over the map by ~1e-3, which min-max normalisation stretches to [0, 1]: a 1e-7
    difference in a score (float rounding in any backend) becomes ~1e-4 in the map."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(30)
    return model.eval()


def _maps(arch: str, model: nn.Module, method: str, backend: str, x: Tensor, **options):
    """(explanation, explainer) for ``x`` with the test's fixed seed and passes."""
    explainer = Explainer(
        model,
        method,
        passes=PASSES,
        device="cpu",
        seed=3,
        target_layer=TARGETS[arch],
        backend=backend,
        **METHOD_OPTIONS[method],
        **options,
    )
    return explainer(x), explainer


def _trunk(backend: str, **options) -> Explainer:
    """An explainer on the small residual-dropout net (inputs 12 x 12)."""
    model = BUILDERS["trunk"](PASSES).eval()
    return Explainer(
        model, passes=PASSES, device="cpu", target_layer="head_conv", backend=backend, **options
    )


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefix-cache")


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("arch", list(BUILDERS))
@pytest.mark.parametrize("method", list(METHOD_OPTIONS))
def test_a_runtime_gives_torchs_maps(backend: str, arch: str, method: str, shared_cache) -> None:
    """Normalised maps and probabilities within 1e-4 of torch's, for every method on
    ResNet-18, MobileNetV2, ResNet-18 with trunk dropout and a net with dropout in a residual
    block (where the prefix ends before the block)."""
    model, x = _confident(BUILDERS[arch](PASSES)), _frames(2)
    reference, _ = _maps(arch, model, method, "torch", x)
    result, explainer = _maps(arch, model, method, _runtime(backend), x, cache_dir=shared_cache)
    assert result.backend == backend, explainer.backend_note
    assert float((result.maps - reference.maps).abs().max()) <= 1e-4
    torch.testing.assert_close(result.probs, reference.probs, rtol=0, atol=1e-4)
    assert torch.equal(result.class_idx, reference.class_idx)


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("method", ["gradcam++", "reciprocam"])
def test_original_mode_runs_the_whole_trunk_on_the_runtime(backend: str, method: str) -> None:
    model, x = _confident(BUILDERS["mobilenet_v2"](PASSES)), _frames()
    reference, _ = _maps("mobilenet_v2", model, method, "torch", x, mc=False)
    result, explainer = _maps("mobilenet_v2", model, method, _runtime(backend), x, mc=False)
    assert "output of features.18" in explainer.backend_note
    assert float((result.maps - reference.maps).abs().max()) <= 1e-4
    assert result.backend == backend


def test_reduced_precision_is_opt_in_and_says_it_is_approximate() -> None:
    """bf16 is never what ``auto`` takes; named, it runs, its note gives its error, and its
    maps stay close to torch's (a bf16 mantissa moves them by a few hundredths)."""
    model, x = _confident(BUILDERS["mobilenet_v2"](PASSES)), _frames()
    reference, _ = _maps("mobilenet_v2", model, "gradcam++", "torch", x)
    result, explainer = _maps("mobilenet_v2", model, "gradcam++", _runtime("openvino-bf16"), x)
    assert result.backend == "openvino-bf16"
    assert "approximate (relative error" in explainer.backend_note
    assert float((result.maps - reference.maps).abs().max()) <= 0.25
    assert "openvino-bf16" in runtimes.APPROXIMATE


@needs_runtime
def test_auto_picks_an_exact_installed_runtime_and_records_why(tmp_path: Path) -> None:
    model = BUILDERS["resnet18"](PASSES).eval()
    result, explainer = _maps("resnet18", model, "gradcam++", "auto", _frames(), cache_dir=tmp_path)
    assert result.backend in INSTALLED
    assert result.backend in explainer.backend_note
    (folder,) = (tmp_path / "prefix").iterdir()
    checks = json.loads((folder / "checks.json").read_text())["checks"]
    assert set(checks) == set(INSTALLED) - runtimes.APPROXIMATE, "auto checks the exact ones"
    for name, check in checks.items():
        assert check["error"] <= runtimes.EXACT_TOLERANCE
        assert check["version"] == runtimes.runtime_version(name)


@needs_runtime
def test_a_cached_prefix_is_not_exported_or_checked_again(tmp_path: Path, monkeypatch) -> None:
    model, x = BUILDERS["resnet18"](PASSES).eval(), _frames()
    first, _ = _maps("resnet18", model, "gradcam++", "auto", x, cache_dir=tmp_path)

    def refuse(*_args, **_kwargs):
        raise AssertionError("a cached start exported or checked the prefix again")

    monkeypatch.setattr(runtimes, "export_onnx", refuse)
    monkeypatch.setattr(runtimes, "_check", refuse)
    again, _ = _maps("resnet18", model, "gradcam++", "auto", x, cache_dir=tmp_path)
    assert again.backend == first.backend
    torch.testing.assert_close(again.maps, first.maps, rtol=0, atol=1e-6)


@needs_runtime
def test_other_weights_get_their_own_cache_entry(tmp_path: Path) -> None:
    x = _frames()
    _maps(
        "resnet18",
        BUILDERS["resnet18"](PASSES, seed=0).eval(),
        "gradcam++",
        "auto",
        x,
        cache_dir=tmp_path,
    )
    other = BUILDERS["resnet18"](PASSES, seed=1).eval()
    reference, _ = _maps("resnet18", other, "gradcam++", "torch", x)
    result, _ = _maps("resnet18", other, "gradcam++", "auto", x, cache_dir=tmp_path)
    assert len(list((tmp_path / "prefix").iterdir())) == 2
    assert float((result.maps - reference.maps).abs().max()) <= 1e-4


@needs_runtime
def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    model, x = BUILDERS["mobilenet_v2"](PASSES).eval(), _frames()
    reference, _ = _maps("mobilenet_v2", model, "gradcam++", "torch", x)
    _maps("mobilenet_v2", model, "gradcam++", "auto", x, cache_dir=tmp_path)
    (folder,) = (tmp_path / "prefix").iterdir()
    (folder / "prefix.onnx").write_bytes(b"\x00not an onnx file" * 64)
    (folder / "checks.json").write_text("{ truncated")
    result, _ = _maps("mobilenet_v2", model, "gradcam++", "auto", x, cache_dir=tmp_path)
    assert result.backend in INSTALLED
    assert float((result.maps - reference.maps).abs().max()) <= 1e-4
    assert json.loads((folder / "checks.json").read_text())["checks"]


def test_an_inexact_runtime_is_refused_by_name_and_skipped_by_auto(monkeypatch) -> None:
    class Inexact(runtimes.OnnxRuntimePrefix):
        def __call__(self, rows: Tensor) -> Tensor:
            return super().__call__(rows) * 1.01

    _runtime("onnxruntime")
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["onnxruntime"])
    monkeypatch.setitem(runtimes.RUNNERS, "onnxruntime", Inexact)
    x = torch.randn(1, 3, 12, 12)
    with pytest.raises(BackendError, match=r"does not reproduce torch's prefix .*relative error"):
        _trunk("onnxruntime")(x)
    explainer = _trunk("auto")
    assert explainer(x).backend == "torch"
    assert "no runtime reproduces torch" in explainer.backend_note


@needs_runtime
def test_a_runtime_that_cannot_load_the_prefix_is_a_clear_error(monkeypatch) -> None:
    def broken(*_args) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["onnxruntime"])
    monkeypatch.setitem(runtimes.RUNNERS, "onnxruntime", broken)
    x = torch.randn(1, 3, 12, 12)
    with pytest.raises(BackendError, match="onnxruntime cannot load the prefix: unsupported"):
        _trunk("onnxruntime")(x)
    assert _trunk("auto")(x).backend == "torch"


@needs_runtime
@pytest.mark.parametrize("problem", ["a file in its place", "read-only"])
def test_an_unusable_cache_folder_only_costs_the_cache(tmp_path: Path, problem: str) -> None:
    """The prefix is converted in a temporary folder instead; the maps are the same and
    nothing is left in the temporary folder."""
    cache = tmp_path / "cache"
    if problem == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        cache.mkdir()
        cache.chmod(0o500)
    else:
        cache.write_text("not a folder")
    model, x = _confident(BUILDERS["trunk"](PASSES)), torch.randn(1, 3, 12, 12)
    reference = _trunk("torch", seed=1)
    reference.model.load_state_dict(model.state_dict())
    try:
        explainer = _trunk("auto", seed=1, cache_dir=cache)
        explainer.model.load_state_dict(model.state_dict())
        result = explainer(x)
    finally:
        if problem == "read-only":
            cache.chmod(0o700)
    assert result.backend in INSTALLED
    assert float((result.maps - reference(x).maps).abs().max()) <= 1e-4
    if problem == "read-only":
        assert not list(cache.iterdir())


class _Untraceable(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = x * 2
        return self.fc(self.drop(x.mean(dim=(2, 3))))


def test_a_model_torch_fx_cannot_split_runs_in_torch_under_auto(monkeypatch) -> None:
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["onnxruntime"])
    x = torch.randn(1, 3, 8, 8)
    model = _Untraceable().eval()
    explainer = Explainer(model, passes=PASSES, device="cpu", seed=1, backend="auto")
    result = explainer(x)
    assert result.backend == "torch"
    assert "torch.fx cannot trace" in explainer.backend_note
    reference = Explainer(model, passes=PASSES, device="cpu", seed=1)(x)
    torch.testing.assert_close(result.maps, reference.maps)
    with pytest.raises(ExplainerError, match="backend 'onnxruntime' cannot run this model"):
        Explainer(model, passes=PASSES, device="cpu", backend="onnxruntime")(x)


def test_a_float64_model_runs_in_torch_under_auto(monkeypatch) -> None:
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["onnxruntime"])
    explainer = _trunk("auto")
    explainer.model.double()
    assert explainer(torch.randn(1, 3, 12, 12)).backend == "torch"
    assert "float32" in explainer.backend_note


def test_unknown_and_missing_backends_are_refused_up_front(monkeypatch) -> None:
    model = BUILDERS["trunk"](PASSES)
    with pytest.raises(
        ExplainerError, match=r"unknown backend 'tensorrt' \(available: auto, torch"
    ):
        Explainer(model, backend="tensorrt", device="cpu", target_layer="head_conv")
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: [])
    with pytest.raises(ExplainerError, match=r"needs the openvino package.*\[runtimes\]"):
        Explainer(model, backend="openvino", device="cpu", target_layer="head_conv")
    explainer = _trunk("auto")
    assert explainer(torch.randn(1, 3, 12, 12)).backend == "torch"
    assert "no inference runtime is installed" in explainer.backend_note


def test_a_runtime_on_a_gpu_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["openvino"])
    with pytest.raises(BackendError, match="runs on the CPU; this explainer is on cuda"):
        check_backend("openvino", torch.device("cuda"))
    check_backend("auto", torch.device("cuda"))
    check_backend("torch", torch.device("cuda"))


def test_openvino_sends_no_telemetry(tmp_path: Path) -> None:
    """Imported through the engine, openvino starts no telemetry thread and writes nothing to
    the home folder (Intel's package otherwise sends an event on import)."""
    _runtime("openvino")
    script = (
        "import threading\n"
        "from app.explain.runtimes import import_openvino\n"
        "import_openvino()\n"
        "from openvino.tools.ovc import telemetry_utils\n"
        "assert telemetry_utils.tm.__name__.endswith('telemetry_stub'), telemetry_utils.tm\n"
        "assert [t.name for t in threading.enumerate()] == ['MainThread']\n"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.iterdir()), "openvino wrote to the home folder"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack via libc")
def test_openvino_leaves_every_thread_on_its_own_signal_stack() -> None:
    """OpenVINO's CPU plugin swaps the thread's alternate signal stack when it compiles and
    swaps it back (and unmaps its own) when the model is freed; freed out of order, the thread
    was left on unmapped memory and the next signal killed the process with SIGSEGV (seen in
    this suite, at a test that sends itself SIGTERM). Two explainers freed first-in first-out,
    then a signal: the stack is the one the thread had, and the handler runs."""
    _runtime("openvino")
    script = """
import ctypes, gc, os, signal, faulthandler, torch
from tests.test_explain_runtimes import _trunk
faulthandler.enable()
class Stack(ctypes.Structure):
    _fields_ = (("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t))
def stack():
    s = Stack(); ctypes.CDLL(None).sigaltstack(None, ctypes.byref(s)); return (s.sp, s.size)
before = stack()
x = torch.randn(1, 3, 12, 12)
first, second = _trunk("openvino"), _trunk("openvino")
first(x), second(x)
assert stack() == before, "compiling changed the thread's signal stack"
del first; gc.collect()
del second; gc.collect()
assert stack() == before, "freeing changed the thread's signal stack"
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append(1))
os.kill(os.getpid(), signal.SIGTERM)
assert got == [1]
print("handled")
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "handled" in done.stdout, done.stderr[-2000:]


def test_the_cache_folder_defaults_follow_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PCLE_CACHE_DIR", str(tmp_path / "explicit"))
    assert runtimes.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("PCLE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtimes.default_cache_dir() == tmp_path / "xdg" / "pcle-viewer"


def test_a_cut_the_split_cannot_follow_is_reported(monkeypatch) -> None:
    """Every layer random (a cut at the model input with passes to repeat): nothing to move."""
    monkeypatch.setattr(runtimes, "installed_runtimes", lambda: ["onnxruntime"])
    explainer = _trunk("auto")
    monkeypatch.setattr(explainer._batcher, "cut_point", lambda *_args: CutPoint("", "input"))
    assert explainer(torch.randn(1, 3, 12, 12)).backend == "torch"
    assert "no prefix to move" in explainer.backend_note


def _native_threads() -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("backend", EXACT)
def test_explainers_dropped_one_after_another_leave_no_threads(backend: str, tmp_path) -> None:
    """The viewer builds a new explainer at every settings change: each runtime session's
    thread pool must go with it."""
    x = torch.randn(1, 3, 12, 12)
    _trunk(_runtime(backend), cache_dir=tmp_path)(x)
    gc.collect()
    before = _native_threads()
    for _ in range(5):
        _trunk(backend, cache_dir=tmp_path)(x)
    gc.collect()
    assert _native_threads() == before
