"""An interface named with a control character (`a\\x01b`), or with a byte that is not
UTF-8 (`a\\xffb`), on a namespace host, over real SSH: iproute2 writes the raw byte into its
JSON. The link, address and interface-errors steps still read every interface, the odd one
is shown escaped, and its fix acts on the exact name."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.network.wizard import ADDRESSES, ERRORS, LINK
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.ssh import SSHShell

from conftest import fleetdeck_bin, require_root
from sshd import NetnsHost, NetnsLab, SshKeys, ssh_shell, write_known_hosts

NAMES = {"control": (b"a\x01b", "a\\x01b"), "not-utf8": (b"a\xffb", "a\\xffb")}
"""Each odd name as the kernel holds it, and as every screen shows it."""


@pytest.fixture(params=sorted(NAMES))
def odd(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the name as fleetdeck reads it exactly, as it is shown)."""
    raw, shown = NAMES[request.param]
    return os.fsdecode(raw), shown


@pytest.fixture
def odd_host(netns_lab: NetnsLab, odd: tuple[str, str]) -> Iterator[NetnsHost]:
    """A namespace host with a veth end renamed to the odd name: down, with an address; its
    peer up."""
    require_root("make an interface inside a namespace")
    host = netns_lab.add_host()
    assert host.netns
    ns = ("ip", "-n", host.netns)
    try:
        subprocess.run([*ns, "link", "add", "fdodd0", "type", "veth", "peer", "fdodd1"], check=True)
        subprocess.run([*ns, "addr", "add", "198.51.100.77/24", "dev", "fdodd0"], check=True)
        subprocess.run([*ns, "link", "set", "fdodd1", "up"], check=True)  # carrier once both are
        renamed = [*(a.encode() for a in ns), b"link", b"set", b"dev", b"fdodd0", b"name"]
        subprocess.run([*renamed, os.fsencode(odd[0])], check=True)  # bytes: the name exactly
        yield host
    finally:
        netns_lab.remove_host(host)


def context(shell: SSHShell) -> CheckContext:
    return CheckContext("odd02", SampleHistory(size=2), Config().thresholds, shell, None, {})


async def yes(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def test_an_interface_named_with_a_control_character_is_read_and_brought_up(
    odd_host: NetnsHost, odd: tuple[str, str], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    name = odd[0]
    async with ssh_shell(odd_host, ssh_keys, tmp_path / "known_hosts", "odd02") as shell:
        ctx = context(shell)
        for check in (LINK, ADDRESSES, ERRORS):
            found = await check.run(ctx)
            assert not [f for f in found if f.status is Status.UNKNOWN], found
        link = {f.target: f for f in await LINK.run(ctx)}
        odd = link[name]
        assert odd.status is Status.CRIT, odd
        assert odd.summary.startswith(f"{name} is administratively down"), odd.summary
        assert len(link) >= 3  # the uplink and the peer too: no interface lost to the odd one

        async def verify() -> Finding | None:
            return next((f for f in await LINK.run(ctx) if f.target == name), None)

        gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
        result = await gate.apply(FixHost("odd02", shell), odd, odd.fixes[0], verify)
        assert result.outcome is Outcome.VERIFIED, result.message
        state = await shell.run(["ip", "-o", "link", "show", "dev", name])
        assert ",UP" in state.stdout, state.stdout


def test_the_wizard_prints_the_name_escaped(
    odd_host: NetnsHost, odd: tuple[str, str], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    host, escaped = odd_host, odd[1]
    known = write_known_hosts(tmp_path / "known_hosts", host)
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(
        f'[[host]]\nname = "odd02"\naddress = "{host.address}"\nport = {host.port}\n'
        f'user = "root"\nidentity_file = "{ssh_keys.client_key}"\n'
    )
    done = subprocess.run(
        [fleetdeck_bin(), "--audit-log", str(tmp_path / "audit.jsonl"), "--read-only",
         "wizard", "network", "-i", str(inventory), "--host", "odd02",
         "--known-hosts", str(known)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    shown = done.stdout + done.stderr
    assert "\x01" not in shown and "\ufffd" not in shown, shown
    assert f"{escaped} is administratively down" in shown, shown
    assert "not JSON" not in shown, shown
