"""Nothing but fleetdeck's own words on the operator's stderr: no library warning, in a fresh
interpreter each time (warnings are printed once per process, so only a new one shows them)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import fleetdeck_bin


def _fresh(*argv: str, python: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *argv] if python else [fleetdeck_bin(), *argv]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_version_prints_the_version_and_nothing_on_stderr() -> None:
    result = _fresh("--version")
    assert result.returncode == 0 and result.stdout.startswith("fleetdeck ")
    assert result.stderr == ""


def test_a_headless_check_prints_json_and_nothing_on_stderr() -> None:
    result = _fresh("check", "--json", "--no-containers", "--interval", "0.2")
    assert result.stdout.startswith("{"), result.stdout[:200]
    assert result.stderr == ""


def test_the_libraries_import_without_a_warning_even_when_warnings_are_errors() -> None:
    """What the console and the checks import, with every warning turned into an error: a
    library that starts warning on import fails here, not on an operator's terminal."""
    modules = (
        "fleetdeck.tui.cli, asyncssh, docker, psycopg, textual, fleetdeck.tui.app, "
        "fleetdeck.checks.runner, fleetdeck.hosts.ssh"
    )
    result = _fresh("-W", "error", "-c", f"import {modules}", python=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_only_asyncssh_dsa_warning_is_silenced() -> None:
    """The same warning raised anywhere else (our code, say) still shows."""
    code = (
        "import fleetdeck.tui, warnings\n"
        "from cryptography.utils import CryptographyDeprecationWarning as C\n"
        "warnings.warn('DSA is deprecated', C)\n"
        "warnings.warn('ours', UserWarning)\n"
    )
    result = _fresh("-c", code, python=True)
    assert "CryptographyDeprecationWarning: DSA is deprecated" in result.stderr
    assert "UserWarning: ours" in result.stderr
