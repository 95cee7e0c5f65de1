"""``make run``: the main job on the embedded default, headless.

Until the demo model ships, the default is a phantom frame of the project's own making
explained by a randomly initialised ResNet-18: it shows the pipeline end to end, not a
diagnosis.
"""

from __future__ import annotations

from pathlib import Path

import cv2


def run_demo(out: Path) -> int:
    """Explain a phantom pCLE frame and say where the results went."""
    from app.cli import explain_file
    from models.architectures import build_model, default_target_layer
    from models.checkpoint import CheckpointMetadata, save_checkpoint
    from models.phantom import render_frame
    from models.preprocess import IMAGENET_MEAN, IMAGENET_STD

    out.mkdir(parents=True, exist_ok=True)
    frame = render_frame("meningioma", seed=0)
    frame_path = out / "phantom_frame.png"
    cv2.imwrite(str(frame_path), frame.image)
    checkpoint = out / "untrained_resnet18.pt"
    if not checkpoint.exists():
        model = build_model("resnet18", 3)
        save_checkpoint(
            checkpoint,
            model,
            CheckpointMetadata(
                arch="resnet18",
                class_names=["glioblastoma", "meningioma", "metastasis"],
                input_size=(224, 224),
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                target_layer=default_target_layer("resnet18"),
                dropout=0.2,
                provenance="random initialisation (placeholder until the demo model ships)",
                intended_use="pipeline demo with an untrained model, not for clinical use",
            ),
        )
    summary = explain_file(frame_path, checkpoint, out, method="gradcam++", passes=10, seed=0)
    print(
        "pCLE explainability viewer: headless demo (phantom frame, UNTRAINED model: "
        "not a diagnosis, not for clinical use)"
    )
    print(
        f"  {summary['method']}, T = {summary['passes']} MC Dropout passes, "
        f"{summary['timings_ms']['total']:.0f} ms"
    )
    print(
        f"  outputs in {out.resolve()}/: raw.png, enhanced.png (mean map), risk.png (CV map), "
        "maps.npz, summary.json"
    )
    return 0
