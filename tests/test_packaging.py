"""The project installs like a desktop program: its wheel, installed into a new virtual
environment outside the repository, gives a ``pcle-viewer`` command that runs the shipped demo
from another folder (the demo video and model travel inside the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("app", "models", "pyproject.toml", "README.md")


def _run(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the project's wheel installed (its dependencies are this
    environment's, reached through a ``.pth`` line, so nothing is downloaded)."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source])
    (wheel,) = wheels.glob("pcle_viewer-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = _venv_python(venv)
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel])
    return venv


def test_the_wheel_carries_the_demo_and_the_command_runs_it_elsewhere(
    installed: Path, tmp_path: Path
) -> None:
    python = _venv_python(installed)
    where = _run(
        [
            python,
            "-c",
            "import app, app.assets as a; print(app.__file__); print(a.demo_assets()[1])",
        ],
        cwd=tmp_path,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), where  # not the checkout's

    command = installed / ("Scripts/pcle-viewer.exe" if os.name == "nt" else "bin/pcle-viewer")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": ""}
    assert "bench-pipeline" in _run([command, "--help"], cwd=tmp_path, env=env).stdout
    out = tmp_path / "demo"
    printed = _run([command, "run", "--headless", "--out", out], cwd=tmp_path, env=env).stdout
    assert "phantom demo, not for clinical use" in printed and str(out) in printed
    rows = next(out.glob("*.frames.csv")).read_text().strip().splitlines()
    assert len(rows) == 1 + 210  # every frame of the shipped demo video
    assert (out / "session").is_dir()


def test_the_desktop_launcher_runs_the_installed_command() -> None:
    entry = (ROOT / "assets" / "pcle-viewer.desktop").read_text().splitlines()
    fields = dict(line.split("=", 1) for line in entry[1:] if "=" in line)
    assert entry[0] == "[Desktop Entry]" and fields["Type"] == "Application"
    assert fields["Exec"].split()[0] == "pcle-viewer" and fields["Terminal"] == "false"
    assert (ROOT / "assets" / f"{fields['Icon']}.svg").is_file()
