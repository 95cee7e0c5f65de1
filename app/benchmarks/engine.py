"""Engine benchmark: what the T-pass explanation costs next to one forward and the original.

For each method it times, at batch size 1, the median wall time of
- ``forward_ms``: one plain forward pass (eval mode, no autograd);
- ``original_ms``: the method on the deterministic model (Dropout off, one pass);
- ``proposed_ms``: this engine's T batched MC Dropout passes;
- ``loop_ms``: the paper's way, T separate passes with Dropout on, one after another.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
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
) -> dict[str, Any]:
    """Time forward / original / proposed / loop for each method on a random-weight model.

    Returns:
        ``{"arch", "device", "passes", "input_size", "torch", "threads", "rows": [{"method",
        "forward_ms", "original_ms", "proposed_ms", "loop_ms"}], "runs": {method: {...}}}``.
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
    rows, runs = [], {}
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
    return {
        "arch": arch,
        "trunk_dropout": trunk_dropout,
        "device": str(dev),
        "passes": passes,
        "input_size": input_size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "runs": runs,
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table with the two ratios the targets are stated in."""
    lines = [
        f"{report['arch']} on {report['device']}, T={report['passes']}, batch 1, "
        f"{report['input_size']}x{report['input_size']}"
        + (f", trunk dropout {report['trunk_dropout']}" if report.get("trunk_dropout") else ""),
        f"{'method':16s} {'forward':>9s} {'original':>9s} {'proposed':>9s} {'loop':>9s} "
        f"{'prop/orig':>9s} {'loop/prop':>9s}",
    ]
    for row in report["rows"]:
        lines.append(
            f"{row['method']:16s} {row['forward_ms']:9.1f} {row['original_ms']:9.1f} "
            f"{row['proposed_ms']:9.1f} {row['loop_ms']:9.1f} "
            f"{row['proposed_ms'] / row['original_ms']:9.2f} "
            f"{row['loop_ms'] / row['proposed_ms']:9.2f}"
        )
    lines.append("(milliseconds, median)")
    return "\n".join(lines)
