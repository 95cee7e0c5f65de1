"""Suite-wide fixtures: one QApplication that collects garbage on the GUI thread only, and
no test module that leaves a thread running or a window open."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tqdm
from hypothesis import HealthCheck, settings

LEAK_GRACE_S = 30.0

# tqdm's monitor thread outlives every progress bar; the suite's bars need no monitor.
tqdm.tqdm.monitor_interval = 0


@pytest.fixture(scope="session", autouse=True)
def _backend_cache_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Converted model prefixes (``--backend``) go to a folder of this run, not ~/.cache;
    subprocesses inherit it."""
    before = os.environ.get("PCLE_CACHE_DIR")
    os.environ["PCLE_CACHE_DIR"] = str(tmp_path_factory.mktemp("pcle-cache"))
    yield
    if before is None:
        os.environ.pop("PCLE_CACHE_DIR", None)
    else:
        os.environ["PCLE_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def qapp(qapp_args: list[str]) -> Any:
    """pytest-qt's application, made by the viewer's own :func:`app.ui.viewer.application`:
    themed, and with Python's cyclic garbage collector moved onto the GUI thread."""
    from app.ui.viewer import application

    return application(qapp_args)


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread() -> Iterator[None]:
    """Once a Qt application exists automatic collection is off; tests that run no event loop
    would otherwise never collect. Do the due collections here, on the main (GUI) thread."""
    yield
    viewer = sys.modules.get("app.ui.viewer")
    collector = viewer.gui_thread_collector() if viewer is not None else None
    if collector is not None:
        collector.collect_due()


@pytest.fixture(scope="module", autouse=True)
def _no_leaked_threads_or_windows(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test module leaves no thread running and no window open for the next one.

    Checked once its module-scoped fixtures (a shared viewer window) are torn down; a thread
    still finishing gets a deadline to end, not a sleep.
    """
    import threading

    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    left = [t for t in threading.enumerate() if t not in before]
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in left if t.is_alive()]
    windows = _open_windows()
    assert not left, f"{request.node.name} left threads running: {left}"
    assert not windows, f"{request.node.name} left windows open: {windows}"


def _open_windows() -> list[str]:
    """Top-level widgets still shown, if Qt is in use."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets is not None else None
    if app is None:
        return []
    return [type(w).__name__ for w in app.topLevelWidgets() if w.isVisible()]


# Hypothesis profiles (tests/test_fuzz_inputs.py). "ci", the default, is derandomized, small
# and keeps no example database, so every run tries the same inputs; HYPOTHESIS_PROFILE=fuzz
# runs a long random campaign (and prints how to reproduce a failure). Hypothesis's caches go
# to the temporary folder, not to a .hypothesis folder in the checkout.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "pcle-viewer-hypothesis")
)
_SLOW_EXAMPLES_OK = [
    HealthCheck.too_slow,
    HealthCheck.function_scoped_fixture,
    HealthCheck.data_too_large,
]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=12,
    print_blob=False,
    suppress_health_check=_SLOW_EXAMPLES_OK,
)
settings.register_profile(
    "fuzz",
    database=None,
    deadline=None,
    max_examples=2000,
    print_blob=True,
    suppress_health_check=_SLOW_EXAMPLES_OK,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
