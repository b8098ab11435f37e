"""The layers of DESIGN.md hold: checks/ and hosts/ run headless, without Textual or Rich."""

from __future__ import annotations

import subprocess
import sys


def test_checks_and_hosts_import_without_textual_or_rich() -> None:
    code = (
        "import sys, fleetdeck.checks, fleetdeck.hosts, fleetdeck.checks.runner\n"
        "import fleetdeck.checks.alerts, fleetdeck.hosts.samplers\n"
        "import fleetdeck.tui.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'rich'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_local_console_does_not_load_ssh() -> None:
    """Watching this machine needs no SSH: asyncssh and its crypto stay unloaded (memory)."""
    code = (
        "import sys, fleetdeck.tui.app, fleetdeck.tui.cli\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncssh', 'yaml'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
