"""Engine benchmark: what the T-pass explanation costs next to one forward and the original.

For each method it times, at batch size 1, the median wall time of
- ``forward_ms``: one plain forward pass (eval mode, no autograd);
- ``original_ms``: the method on the deterministic model (Dropout off, one pass);
- ``proposed_ms``: this engine's T batched MC Dropout passes;
- ``loop_ms``: the paper's way, T separate passes with Dropout on, one after another.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from app.explain import Explainer, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(
    fn: Callable[[], Any], device: torch.device, repeats: int, budget_s: float, warmup: int = 1
) -> tuple[float, int]:
    """Median wall time of ``fn`` in ms and the number of timed runs.

    After ``warmup`` untimed runs, runs up to ``repeats`` times, stopping early (after at least
    one run) once ``budget_s`` seconds have been spent. A warm-up run that alone exceeds the
    budget is taken as the only sample (a 2-minute Score-CAM loop is not worth repeating).
    """
    times: list[float] = []
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed > budget_s:
            return elapsed * 1e3, 1
    spent = 0.0
    while len(times) < repeats and (not times or spent < budget_s):
        start = time.perf_counter()
        fn()
        _sync(device)
        elapsed = time.perf_counter() - start
        times.append(elapsed * 1e3)
        spent += elapsed
    return statistics.median(times), len(times)


def _first_and_steady(
    make: Callable[[Path | None], Explainer],
    x: torch.Tensor,
    dev: torch.device,
    repeats: int,
    budget_s: float,
    cache: Path,
) -> tuple[dict[str, float], Explainer]:
    """A backend's start-up and steady cost: ``convert_ms``, the first call with an empty disk
    cache (finding the cut, converting and checking the prefix); ``first_ms``, the first call
    of a new explainer once the cache holds it (a later start of the viewer); ``steady_ms``,
    the median after that. Also returns the steady explainer."""
    times = {}
    for key, folder in (("convert_ms", None), ("first_ms", cache)):
        explainer = make(folder)
        start = time.perf_counter()
        explainer(x)
        _sync(dev)
        times[key] = (time.perf_counter() - start) * 1e3
        if folder is None:
            make(cache)(x)  # fill the cache for the next start
    times["steady_ms"], _ = median_ms(lambda: explainer(x), dev, repeats, budget_s, warmup=0)
    return times, explainer


def map_error(explainer: Explainer, reference: Explainer, x: torch.Tensor) -> float:
    """Max |difference| of the two explainers' normalised per-pass maps of ``x``, both with
    the same dropout masks (seed 0): 0 up to rounding for an exact backend."""
    seeds = explainer.seed, reference.seed
    explainer.seed = reference.seed = 0
    try:
        return float((explainer(x).maps - reference(x).maps).abs().max())
    finally:
        explainer.seed, reference.seed = seeds


def benchmark_engine(
    arch: str,
    methods: Sequence[str],
    passes: int,
    device: str = "cpu",
    input_size: int = 224,
    num_classes: int = 3,
    trunk_dropout: float = 0.0,
    repeats: int = 7,
    budget_s: float = 30.0,
    progress: Callable[[str], None] | None = None,
    backends: Sequence[str] = ("torch",),
) -> dict[str, Any]:
    """Time forward / original / proposed / loop for each method on a random-weight model,
    and the proposed method's start-up and steady cost on each backend.

    Args:
        backends: where the deterministic prefix runs (:data:`app.explain.runtimes.BACKENDS`);
            every one is timed in this run, next to torch's original and forward.

    Returns:
        ``{"arch", "device", "passes", "input_size", "torch", "threads", "rows": [{"method",
        "forward_ms", "original_ms", "proposed_ms", "loop_ms"}], "backends": [{"method",
        "backend", "ran_on", "original_ms", "convert_ms", "first_ms", "steady_ms",
        "map_error"}],
        "runs": {method: {...}}}``. ``rows`` are torch's; ``ran_on`` is what ``auto`` chose.
    """
    from models.architectures import build_model

    dev = resolve_device(device)
    torch.manual_seed(0)
    model = build_model(arch, num_classes, trunk_dropout=trunk_dropout).to(dev).eval()
    x = torch.randn(1, 3, input_size, input_size, device=dev)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    forward_ms, _ = median_ms(forward, dev, repeats, budget_s, warmup=2)
    rows, runs, per_backend = [], {}, []
    for method in methods:
        original = Explainer(model, method, mc=False, device=dev)
        proposed = Explainer(model, method, passes=passes, device=dev)
        single = Explainer(model, method, passes=1, device=dev)

        def loop(single: Explainer = single) -> None:
            for _ in range(passes):
                single(x)

        row: dict[str, Any] = {"method": method, "forward_ms": round(forward_ms, 3)}
        runs[method] = {}
        for key, fn in (
            ("original_ms", lambda e=original: e(x)),
            ("proposed_ms", lambda e=proposed: e(x)),
            ("loop_ms", loop),
        ):
            ms, count = median_ms(fn, dev, repeats, budget_s)
            row[key] = round(ms, 3)
            runs[method][key] = count
            if progress:
                progress(f"{method:16s} {key:12s} {ms:10.1f} ms  ({count} runs)")
        rows.append(row)
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="pcle-bench-cache-") as folder:
                on = Explainer(model, method, mc=False, device=dev, backend=backend)
                on(x)
                entry: dict[str, Any] = {
                    "method": method,
                    "backend": backend,
                    "ran_on": on(x).backend,
                    "original_ms": median_ms(lambda e=on: e(x), dev, repeats, budget_s)[0],
                }
                times, steady = _first_and_steady(
                    lambda cache, m=method, b=backend: Explainer(
                        model, m, passes=passes, device=dev, backend=b, cache_dir=cache
                    ),
                    x,
                    dev,
                    repeats,
                    budget_s,
                    Path(folder),
                )
                entry |= times
                entry["map_error"] = map_error(steady, proposed, x)
            per_backend.append(
                {k: round(v, 3) if k.endswith("_ms") else v for k, v in entry.items()}
            )
            if progress:
                progress(
                    f"{method:16s} {backend:12s} steady {entry['steady_ms']:8.1f} ms, first "
                    f"{entry['first_ms']:8.1f} ms (on {entry['ran_on']})"
                )
    return {
        "arch": arch,
        "trunk_dropout": trunk_dropout,
        "device": str(dev),
        "passes": passes,
        "input_size": input_size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "backends": per_backend,
        "runs": runs,
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as fixed-width tables with the ratios the targets are stated in: torch's
    methods, then each backend against torch's original."""
    lines = [
        f"{report['arch']} on {report['device']}, T={report['passes']}, batch 1, "
        f"{report['input_size']}x{report['input_size']}"
        + (f", trunk dropout {report['trunk_dropout']}" if report.get("trunk_dropout") else ""),
        f"{'method':16s} {'forward':>9s} {'original':>9s} {'proposed':>9s} {'loop':>9s} "
        f"{'prop/orig':>9s} {'loop/prop':>9s}",
    ]
    original = {}
    for row in report["rows"]:
        original[row["method"]] = row["original_ms"]
        lines.append(
            f"{row['method']:16s} {row['forward_ms']:9.1f} {row['original_ms']:9.1f} "
            f"{row['proposed_ms']:9.1f} {row['loop_ms']:9.1f} "
            f"{row['proposed_ms'] / row['original_ms']:9.2f} "
            f"{row['loop_ms'] / row['proposed_ms']:9.2f}"
        )
    if report.get("backends"):
        lines += [
            "",
            f"{'method':16s} {'backend':12s} {'ran on':12s} {'original':>9s} {'proposed':>9s} "
            f"{'first':>9s} {'convert':>9s} {'prop/torch orig':>16s} {'first/prop':>10s} "
            f"{'map error':>9s}",
        ]
        for row in report["backends"]:
            lines.append(
                f"{row['method']:16s} {row['backend']:12s} {row['ran_on']:12s} "
                f"{row['original_ms']:9.1f} {row['steady_ms']:9.1f} {row['first_ms']:9.1f} "
                f"{row['convert_ms']:9.1f} {row['steady_ms'] / original[row['method']]:16.2f} "
                f"{row['first_ms'] / row['steady_ms']:10.2f} {row['map_error']:9.1e}"
            )
        lines.append(
            "(original and proposed on the backend; first: a new explainer's first frame with the "
            "prefix cached; convert: with an empty cache; map error: max |difference| of the "
            "normalised maps from torch's, same masks)"
        )
    lines.append("(milliseconds, median)")
    return "\n".join(lines)
