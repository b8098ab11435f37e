"""Installed, fleetdeck takes one top-level name: `fleetdeck`, never `checks`, `hosts`, `tui`
or `widgets`, which other distributions on the package index already use.

A wheel is built from a copy of the clone and installed into a fresh virtualenv, offline: its
dependencies come from this test's own environment through a path file, so nothing but the
wheel adds a module there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("checks", "hosts", "tui", "widgets")
PIP = (sys.executable, "-m", "pip", "-q", "--no-input")


def _our_modules() -> set[str]:
    """Every module of the clone, by the name it has installed (`fleetdeck.checks.model`)."""
    names = {"fleetdeck", "fleetdeck.__main__"}
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            names.add(".".join(("fleetdeck", *parts)).removesuffix(".__init__"))
    return names


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in (*FOLDERS, "fleetdeck"):
        shutil.copytree(REPO / folder, source / folder, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("fleetdeck-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies (Textual, asyncssh, ...) from here; a path in a .pth file is not itself
    # a site directory, so the editable install of the clone living there is not loaded.
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    return python


PROBE = """
import importlib, importlib.util, json, pkgutil
import fleetdeck, fleetdeck.checks
found = sorted(
    ["fleetdeck"]
    + [m.name for m in pkgutil.walk_packages(fleetdeck.__path__, "fleetdeck.")]
)
for name in found:
    importlib.import_module(name) if not name.endswith("__main__") else None
import fleetdeck.tui
from pathlib import Path
print(json.dumps({
    "modules": found,
    "foreign": {n: importlib.util.find_spec(n) is not None for n in %r},
    "tcss": sorted(p.name for p in Path(fleetdeck.tui.__file__).parent.glob("*.tcss")),
    "page": (Path(fleetdeck.tui.__file__).parent / "serve_page" / "app_index.html").is_file(),
}))
"""


def test_the_wheel_installs_fleetdeck_and_no_other_top_level_name(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    probe = subprocess.run(
        [python, "-I", "-c", PROBE % (FOLDERS,)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["foreign"] == dict.fromkeys(FOLDERS, False)
    assert set(result["modules"]) == _our_modules()  # every module went in, and imports
    assert result["tcss"] == sorted(p.name for p in (REPO / "tui").glob("*.tcss"))
    assert result["page"], "fleetdeck serve's page (tui/serve_page/) is not in the wheel"
    version = subprocess.run(
        [python.parent / "fleetdeck", "--version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("fleetdeck "), version.stderr
