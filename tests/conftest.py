"""Shared fixtures: an isolated config and data dir for every test, and recorded hosts."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Real sshd on loopback and in network namespaces, for every test that needs a host.
from sshd import (  # noqa: F401
    fresh_loopback_sshd,
    jump_topology,
    loopback_sshd,
    netns_hosts,
    netns_lab,
    ssh_client,
    ssh_keys,
)
from systemd_host import lab_shell, systemd_host  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own config and data directories, so a developer's own
    ~/.config/fleetdeck never changes what a test sees."""
    monkeypatch.setenv("TZ", "UTC")  # screens show local times; snapshots must not depend on it
    time.tzset()
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = tmp_path / name.lower()
        path.mkdir()
        monkeypatch.setenv(name, str(path))
    yield tmp_path


@pytest.fixture(autouse=True)
def unfrozen_gc() -> Iterator[None]:
    """A console frees its start-up objects from collection (`tui.app.settle_gc`): right for
    one console per process, but here every test's app would stay frozen, and uncollected,
    for the rest of the session. Each test's freeze is undone when it ends."""
    yield
    gc.unfreeze()


def require_binary(name: str, package: str) -> str:
    """The path of a binary the test needs; fail (not skip) saying how to get it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run ./scripts/test (it installs {package}) "
            f"or apt-get install {package}"
        )
    return found


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"this test needs root to {why}: run ./scripts/test as root")


def fleetdeck_bin() -> str:
    """The installed `fleetdeck` console script next to the running Python."""
    candidate = Path(sys.executable).parent / "fleetdeck"
    if not candidate.exists():
        pytest.fail("the fleetdeck console script is not installed: pip install -e '.[test]'")
    return str(candidate)
