"""A missing identity file is a warning naming the inventory file, the line and the host,
as ssh and Ansible treat it: the host is still listed, and the warning reaches the operator
on stderr and, in the console, as a toast."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.hosts.inventory.load import load_inventory
from fleetdeck.hosts.ssh import SSHOptions
from fleetdeck.tui.app import NOTICES_SHOWN, Settings, make_fleet_app

from conftest import fleetdeck_bin

INVENTORIES = {
    "inv.ini": (
        "[web]\nweb-1 ansible_host=127.0.0.1\nweb-2 ansible_host=127.0.0.1\n\n"
        "[web:vars]\nansible_port=9\nansible_ssh_private_key_file={missing}\n",
        7,
        "web-1",
    ),
    "inv.yml": (
        "all:\n  hosts:\n    web-1:\n      ansible_host: 127.0.0.1\n"
        "      ansible_ssh_private_key_file: {missing}\n",
        5,
        "web-1",
    ),
    "config": ("Host web-1\n  HostName 127.0.0.1\n  IdentityFile {missing}\n", 3, "web-1"),
    "inv.toml": ('[[host]]\nname = "web-1"\nidentity_file = "{missing}"\n', 2, "web-1"),
}


@pytest.mark.parametrize("name", list(INVENTORIES))
def test_a_missing_identity_file_is_a_warning_and_the_host_is_listed(
    tmp_path: Path, name: str
) -> None:
    text, line, host = INVENTORIES[name]
    missing = tmp_path / "keys" / "id_gone"
    path = tmp_path / name
    path.write_text(text.format(missing=missing))
    done = subprocess.run(
        [fleetdeck_bin(), "hosts", "-i", str(path), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    listed = {h["name"]: h for h in json.loads(done.stdout)}
    assert listed[host]["identity_files"] == [str(missing)]
    expected = (
        f"fleetdeck: warning: {path}:{line}: host '{host}': identity file {missing} "
        "does not exist (going on without it, as ssh does)"
    )
    assert expected in done.stderr.splitlines()


def test_a_readable_identity_file_gives_no_warning(tmp_path: Path) -> None:
    key = tmp_path / "id_ops"
    key.write_text("a key\n")
    path = tmp_path / "inv.ini"
    path.write_text(f"[web]\nweb-1 ansible_ssh_private_key_file={key}\n")
    inventory = load_inventory([path])
    assert inventory.hosts[0].identity_files == (str(key),)
    assert inventory.warnings == ()


async def test_the_console_shows_inventory_warnings_as_toasts(tmp_path: Path) -> None:
    """Hosts on a refused port (nothing to connect to); the warnings are toasts, the first
    few each on its own, the rest counted."""
    path = tmp_path / "inv.ini"
    groups = "".join(
        f"[g{i}]\nh{i} ansible_host=127.0.0.1 ansible_port=9 "
        f"ansible_ssh_private_key_file={tmp_path}/gone-{i}\n"
        for i in range(NOTICES_SHOWN + 2)
    )
    path.write_text(groups)
    inventory = load_inventory([path])
    assert len(inventory.warnings) == NOTICES_SHOWN + 2
    options = SSHOptions(known_hosts=tmp_path / "known_hosts", agent=False, connect_timeout=2)
    app = make_fleet_app(Settings(interval=1.0), Config(), inventory, inventory.hosts, options)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        toasts = [n.message for n in app._notifications]
    assert toasts == [
        *(str(w) for w in inventory.warnings[:NOTICES_SHOWN]),
        "2 more inventory warnings: `fleetdeck hosts -i FILE` lists them all",
    ]
    assert f"{path}:2: host 'h0': identity file {tmp_path}/gone-0 does not exist" in toasts[0]
