"""What the viewer remembers between runs: recent sources, the last model, the last settings.

:class:`ViewerPreferences` is plain data with a tolerant reader (a hand-edited or older file
never stops the viewer from starting); :class:`PreferencesStore` keeps it in ``QSettings``,
by default in the user's configuration folder, or in an INI file given by path (tests, kiosks).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from app.explain import METHODS
from app.explain.runtimes import BACKENDS, installed_runtimes
from app.pipeline import MAX_PASSES, Mode

__all__ = ["MAX_RECENT", "PreferencesStore", "ViewerPreferences", "push_recent"]

MAX_RECENT = 10
"""Recent sources kept."""
_KEY = "viewer/preferences"


def push_recent(items: list[str], item: str, limit: int = MAX_RECENT) -> list[str]:
    """``items`` with ``item`` moved (or added) to the front, at most ``limit`` long."""
    return [item, *(i for i in items if i != item)][:limit]


@dataclass(frozen=True)
class ViewerPreferences:
    """The remembered state.

    Attributes:
        method: attribution method key.
        passes: MC Dropout passes T.
        backend: where the deterministic prefix runs (:data:`app.explain.runtimes.BACKENDS`).
        mode: "live" or "analysis".
        opacity: overlay opacity, 0 to 1.
        loop: replay files in a loop.
        checkpoint: the last model that loaded successfully (None: the demo model).
        recent_sources: most recent first (files, folders, device indexes or paths).
        snapshot_dir: where snapshots go (None: the default folder).
        whole_frame: the raw panel shows the whole frame (False: the field of view).
    """

    method: str = "gradcam++"
    passes: int = 10
    backend: str = "torch"
    mode: str = Mode.LIVE.value
    opacity: float = 0.5
    loop: bool = True
    checkpoint: str | None = None
    recent_sources: tuple[str, ...] = field(default_factory=tuple)
    snapshot_dir: str | None = None
    whole_frame: bool = False

    def replace(self, **changes: Any) -> ViewerPreferences:
        return dataclasses.replace(self, **changes)

    def with_recent_source(self, source: str) -> ViewerPreferences:
        return self.replace(recent_sources=tuple(push_recent(list(self.recent_sources), source)))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["recent_sources"] = list(self.recent_sources)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViewerPreferences:
        """Read what is valid in ``data``; anything missing or invalid keeps its default."""
        default = cls()
        values: dict[str, Any] = {}
        method = data.get("method")
        if isinstance(method, str) and method in METHODS:
            values["method"] = method
        passes = data.get("passes")
        if isinstance(passes, int) and not isinstance(passes, bool) and 1 <= passes <= MAX_PASSES:
            values["passes"] = passes
        backend = data.get("backend")
        if backend in ("torch", "auto") or (
            backend in BACKENDS and backend in installed_runtimes()
        ):
            values["backend"] = backend  # a runtime uninstalled since falls back to torch
        if data.get("mode") in {m.value for m in Mode}:
            values["mode"] = data["mode"]
        opacity = data.get("opacity")
        if isinstance(opacity, (int, float)) and not isinstance(opacity, bool):
            values["opacity"] = min(max(float(opacity), 0.0), 1.0)
        for name in ("loop", "whole_frame"):
            if isinstance(data.get(name), bool):
                values[name] = data[name]
        for name in ("checkpoint", "snapshot_dir"):
            value = data.get(name)
            if isinstance(value, str) and value:
                values[name] = value
        recent = data.get("recent_sources")
        if isinstance(recent, list):
            kept: list[str] = []
            for item in recent:
                if isinstance(item, str) and item and item not in kept:
                    kept.append(item)
            values["recent_sources"] = tuple(kept[:MAX_RECENT])
        return dataclasses.replace(default, **values)


class PreferencesStore:
    """Loads and saves :class:`ViewerPreferences` with ``QSettings``.

    Args:
        path: an INI file to use (created when saving); None uses the platform's place for
            the application's settings (``~/.config/pcle-viewer/viewer.conf`` on Linux).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            self._settings = QSettings("pcle-viewer", "viewer")
        else:
            self._settings = QSettings(str(path), QSettings.Format.IniFormat)

    @property
    def path(self) -> str:
        return self._settings.fileName()

    def load(self) -> ViewerPreferences:
        """The stored preferences (the defaults when there are none or they do not parse)."""
        raw = self._settings.value(_KEY)
        if not isinstance(raw, str):
            return ViewerPreferences()
        try:
            data = json.loads(raw)
        except ValueError:
            return ViewerPreferences()
        return ViewerPreferences.from_dict(data) if isinstance(data, dict) else ViewerPreferences()

    def save(self, preferences: ViewerPreferences) -> None:
        self._settings.setValue(_KEY, json.dumps(preferences.to_dict()))
        self._settings.sync()
