"""How fast the engine's deterministic prefix runs on an inference runtime, and whether it stays
exact (issue 14's first measurement, before any backend lands in the engine).

``python scripts/trunk_backend_study.py [--size 224] [--repeats 30] [--threads 2]``

For ResNet-18, MobileNetV2 and ResNet-18 with trunk dropout (random weights, 2 classes) it
finds the cut point the engine uses for Grad-CAM++ with T = 10
(:meth:`app.explain.passes.PassBatcher.cut_point`), splits the model there with torch.fx
(:func:`app.explain.split.split_at`), exports the prefix to ONNX once, and times it, batch 1,
in torch eager, torch channels_last, ONNX Runtime and OpenVINO (both fp32). It prints the
median of ``--repeats`` runs, the maximum relative error of the prefix output against torch,
and whether the torch suffix fed with each runtime's prefix reproduces the whole model's
logits (max abs error). A skip connection that spans the cut makes the split fail with a
clear message.

Needs the runtimes: ``pip install -e '.[runtimes]'``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from app.benchmarks.engine import median_ms
from app.explain.cut import find_dropouts
from app.explain.passes import PassBatcher
from app.explain.runtimes import import_openvino
from app.explain.split import split_at
from models.architectures import build_model, default_target_layer

CONFIGS = {
    "ResNet-18": ("resnet18", 0.0),
    "MobileNetV2": ("mobilenet_v2", 0.0),
    "ResNet-18, trunk dropout": ("resnet18", 0.2),
}
"""Table row -> (architecture, trunk dropout)."""


def timed_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` in ms over ``repeats`` runs after one warm-up, on the CPU."""
    return median_ms(run, torch.device("cpu"), repeats, budget_s=math.inf)[0]


def runtimes(onnx_path: Path, threads: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """ONNX Runtime and OpenVINO (fp32, latency) sessions for the exported prefix."""
    import onnxruntime

    openvino = import_openvino()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=["CPUExecutionProvider"]
    )
    core = openvino.Core()
    compiled = core.compile_model(
        core.read_model(str(onnx_path)),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()
    return {
        "ONNX Runtime f32": lambda x: session.run(None, {"x": x})[0],
        "OpenVINO f32": lambda x: request.infer({0: x})[0],
    }


def study(arch: str, trunk_dropout: float, size: int, repeats: int, threads: int) -> dict:
    """One table row: the cut, then per runtime (ms,) or (ms, activation error, logit error)."""
    model = build_model(arch, 2, dropout=0.5, trunk_dropout=trunk_dropout).eval()
    target = default_target_layer(arch)
    x = torch.randn(1, 3, size, size)
    batcher = PassBatcher(model, target, find_dropouts(model), passes=10)
    cut = batcher.cut_point(x, needs_grad=True)
    prefix, suffix = split_at(model, cut, target)
    with torch.no_grad():
        reference = prefix(x)
        logits = model(x)
        row = {"cut": cut.describe(), "torch eager": (timed_ms(lambda: prefix(x), repeats),)}
        # The prefix shares the model's modules: convert them for the timing, then back.
        prefix.to(memory_format=torch.channels_last)
        x_last = x.contiguous(memory_format=torch.channels_last)
        row["torch channels_last"] = (timed_ms(lambda: prefix(x_last), repeats),)
        prefix.to(memory_format=torch.contiguous_format)
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "prefix.onnx"
        torch.onnx.export(
            prefix,
            (x,),
            str(onnx_path),
            dynamo=False,
            input_names=["x"],
            output_names=["activation"],
            dynamic_axes={"x": {0: "rows"}, "activation": {0: "rows"}},
        )
        scale = float(reference.abs().max())
        array = x.numpy()
        for name, run in runtimes(onnx_path, threads).items():
            out = torch.from_numpy(run(array))
            with torch.no_grad():
                logit_error = float((suffix(out) - logits).abs().max())
            error = float((out - reference).abs().max()) / scale
            row[name] = (timed_ms(lambda run=run: run(array), repeats), error, logit_error)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="input side in pixels")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"prefix to the engine's cut, {args.size} px, batch 1, {args.threads} threads, "
        f"median of {args.repeats}; (relative error of the activation, abs error of logits)"
    )
    for label, (arch, trunk_dropout) in CONFIGS.items():
        row = study(arch, trunk_dropout, args.size, args.repeats, args.threads)
        cells = [f"{label} ({row.pop('cut')})"]
        for name, (ms, *errors) in row.items():
            detail = f" ({errors[0]:.1e}, {errors[1]:.1e})" if len(errors) == 2 else ""
            cells.append(f"{name} {ms:.1f} ms{detail}")
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
