"""The panel video writer: any frame rate a session or a source reports gives a video that
reads back whole."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from app.render.panel_video import MAX_RATE, PanelVideoWriter, count_video_frames, playable_rate


@pytest.mark.parametrize("fps", [667.876, 29.97, 0.5, 24.0, 1000.0, 123.456789])
def test_any_measured_rate_gives_a_video_that_reads_back_whole(fps: float, tmp_path: Path) -> None:
    """A session recorded on a fast machine measures e.g. 667.876 frames/s, which MPEG-4
    refuses as a time base (denominator above 65535)."""
    writer = PanelVideoWriter(tmp_path / "clip", fps)
    for level in range(4):
        writer.write(np.full((48, 64, 3), 40 * level, np.uint8))
    writer.close()
    assert writer.path is not None and writer.path.suffix == ".mp4"
    assert count_video_frames(writer.path) == 4
    assert writer.fps == pytest.approx(min(fps, MAX_RATE), abs=0.005)


def test_playable_rate_of_what_is_not_a_rate() -> None:
    assert playable_rate(0.0) == playable_rate(-3) == playable_rate(math.nan) == 25.0
    assert playable_rate(math.inf) == 25.0 and playable_rate(0.001) == 0.01
