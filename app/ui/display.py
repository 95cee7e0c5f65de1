"""Whether a window can open here: the probe the ``run`` and ``review`` commands ask before
they start Qt, so that without a display they work headless or say what to do instead."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["display_available"]


def display_available() -> bool:
    """Whether the viewer can open a window here.

    Needs an X11 or Wayland display (and not Qt's offscreen platform), and Qt must be able to
    connect to it: a missing platform library makes Qt abort the process rather than raise, so
    that is probed in a child process first.
    """
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication([])"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
