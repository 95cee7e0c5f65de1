"""``make run``: the main job on the embedded default (the shipped phantom demo), headless.

Explains one frame of the demo video with the demo model and says where the results went.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_FRAME = 35
"""A frame from the demo video's first tissue segment (phantom glioblastoma)."""


def run_demo(out: Path) -> int:
    """Explain a frame of the demo video with the demo model; print where the outputs are."""
    from app.cli import CommandError, explain_file
    from models.demo import DEMO_MODEL, DEMO_VIDEO

    video, model = ASSETS / DEMO_VIDEO, ASSETS / DEMO_MODEL
    for path in (video, model):
        if not path.exists():
            raise CommandError(
                f"the demo asset {path} is missing; rebuild it with "
                "`python -m models.demo --out assets`"
            )
    summary = explain_file(
        video, model, out, method="gradcam++", passes=10, frame_index=DEMO_FRAME, seed=0
    )
    print(f"pCLE explainability viewer: headless demo ({summary['intended_use']})")
    print(
        f"  frame {DEMO_FRAME} of {video.name}: {summary['class']} "
        f"(p = {summary['probabilities'][summary['class']]:.2f}), "
        f"{summary['method']}, T = {summary['passes']}, {summary['timings_ms']['total']:.0f} ms"
    )
    print(
        f"  outputs in {out.resolve()}/: raw.png, enhanced.png (mean map), risk.png (CV map), "
        "maps.npz, summary.json"
    )
    return 0
