"""fail2ban in the security review, for real: Debian's fail2ban running under systemd in the
lab's own root (tests/systemd_host.py), its sshd jail on the systemd backend and nftables
ban action, fed by real failed SSH logins (a key the host does not authorize) from another
lab address until it bans that address in the firewall. The review reads it over real SSH;
the unban goes through the real gate (confirmation, pin, audit record, verification), and
read-only mode refuses it. A quiet jail is OK, a stopped server is told apart, and a host
without fail2ban gives nothing.

The jail ignores the runner's own address, so no test can lock the runner out; each test's
attacker is a namespace host of its own, unbanned again when the test ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_services_units import until

from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Risk, Status
from fleetdeck.checks.services.fail2ban import (
    FAIL2BAN_ID,
    FIXES_PER_JAIL,
    offerable,
    parse_jail,
    parse_jails,
    unban_verifier,
)
from fleetdeck.checks.services.probe_config import ProbeSettings
from fleetdeck.checks.services.security import security_check
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.ssh import SSHShell

from sshd import NetnsHost, NetnsLab, SshClient, SshKeys, ssh_shell
from systemd_host import SystemdHost

JAIL = """\
# fleetdeck test lab: Debian's sshd jail, read from the journal, banning with nftables (as
# trixie's defaults-debian.conf has it; bookworm's reads /var/log/auth.log, which a host
# without rsyslog lacks). Aggressive mode counts a wrong key's `Connection closed by
# authenticating user ... [preauth]`; the runner's address is never banned.
[DEFAULT]
backend = systemd
banaction = nftables
banaction_allports = nftables[type=allports]
ignoreip = 127.0.0.1/8 ::1 {runner}

[sshd]
enabled = true
mode = aggressive
maxretry = {maxretry}
findtime = 10m
bantime = 1h
"""

MAXRETRY = 3
"""Failed logins in findtime that get an address banned."""

STATUS = """\
Status
|- Number of jail:\t2
`- Jail list:\tnginx-http-auth, sshd
"""
JAIL_STATUS = """\
Status for the jail: sshd
|- Filter
|  |- Currently failed:\t0
|  |- Total failed:\t3
|  `- Journal matches:\t_SYSTEMD_UNIT=sshd.service + _COMM=sshd
`- Actions
   |- Currently banned:\t2
   |- Total banned:\t2
   `- Banned IP list:\t10.231.24.11 2001:db8::7
"""
"""fail2ban-client 1.0.2's answers (Debian bookworm), as the lab's host gave them."""


@pytest.fixture(scope="module")
def f2b_host(
    tmp_path_factory: pytest.TempPathFactory, netns_lab: NetnsLab, ssh_keys: SshKeys
) -> Iterator[SystemdHost]:
    """A booted systemd host running fail2ban with the test's sshd jail."""
    jail = JAIL.format(runner=netns_lab.gateway, maxretry=MAXRETRY)
    host = SystemdHost(
        netns_lab, ssh_keys, tmp_path_factory.mktemp("f2b-host"), name="f2b", fail2ban=jail
    )
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
async def shell(
    f2b_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> AsyncIterator[SSHShell]:
    """fleetdeck's SSH shell on the fail2ban host, once its sshd jail is up."""
    async with ssh_shell(f2b_host, ssh_keys, tmp_path / "known_hosts", "f2b") as opened:  # type: ignore[arg-type]
        await until("fail2ban's sshd jail answers", lambda: jail_up(opened))
        yield opened


@pytest.fixture
def attacker(
    netns_lab: NetnsLab, f2b_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> Iterator[Attacker]:
    """Another lab address that logs in with a key the fail2ban host does not authorize;
    unbanned and removed when the test ends."""
    host = netns_lab.add_host()
    client = SshClient(tmp_path / "attacker", ssh_keys.wrong_key)
    client.trust(f2b_host)  # type: ignore[arg-type]
    admin = SshClient(tmp_path / "admin", ssh_keys.client_key, client.known_hosts)
    try:
        yield Attacker(host, client, f2b_host)
    finally:
        admin.run(f2b_host, "fail2ban-client", "set", "sshd", "unbanip", host.address)  # type: ignore[arg-type]
        netns_lab.remove_host(host)


class Attacker:
    """A namespace host on the lab's bridge that tries to log in to the fail2ban host."""

    def __init__(self, host: NetnsHost, client: SshClient, target: SystemdHost) -> None:
        self.host, self.client, self.target = host, client, target

    @property
    def address(self) -> str:
        return self.host.address

    def try_login(self, timeout: float = 30) -> str:
        """One login with the wrong key from the attacker's namespace: ssh's error."""
        assert self.host.netns is not None
        argv = ["ip", "netns", "exec", self.host.netns, *self.client.argv(self.target, "true")]  # type: ignore[arg-type]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 255, result
        return result.stderr

    async def get_banned(self, shell: Shell) -> None:
        """Fail logins, one after the other, until the jail bans this address (bounded by
        `until`'s wait). From the MAXRETRY-th on, the ban is awaited a moment before the next
        try (fail2ban does not always count every connection), and a try may be cut short: a
        connection already open when the ban's rule comes hangs (an established TCP
        connection takes the rule's ICMP reject as a soft error and retransmits for
        minutes), so it is given up after a few seconds."""

        def attempt() -> None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.try_login(timeout=8)

        async def banned() -> bool:
            return self.address in await banned_list(shell)

        tries = 0

        async def banned_after_a_try() -> bool:
            nonlocal tries
            await asyncio.to_thread(attempt)
            tries += 1
            # fail2ban reads the journal about once a second
            for _ in range(6 if tries >= MAXRETRY else 0):
                if await banned():
                    return True
                await asyncio.sleep(0.5)
            return False

        await until(f"fail2ban banned {self.address}", banned_after_a_try)


async def jail_up(shell: Shell) -> bool:
    return (await shell.run(("fail2ban-client", "status", "sshd"), timeout=30)).ok


async def banned_list(shell: Shell) -> list[str]:
    result = await shell.run(("fail2ban-client", "get", "sshd", "banip", "\\n"), timeout=30)
    assert result.ok, result
    return result.stdout.split()


async def review(shell: Shell) -> list[Finding]:
    """The security review's fail2ban findings, as `fleetdeck check` gets them."""
    ctx = CheckContext(shell.host, SampleHistory(size=2), Config().thresholds, shell)
    found = await security_check(ProbeSettings()).run(ctx)
    return [f for f in found if f.check == FAIL2BAN_ID]


class Confirm:
    """Says yes and remembers what the operator was shown."""

    def __init__(self) -> None:
        self.asked: list[ConfirmRequest] = []

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.asked.append(request)
        return Decision(True, request.host.name)


async def unban(
    shell: Shell, finding: Finding, audit: Path, confirm: Confirm, *, read_only: bool = False
) -> ActionResult:
    (fix,) = finding.fixes
    gate = ActionGate(audit=AuditLog(audit), confirm=confirm, read_only=read_only)
    return await gate.apply(FixHost("f2b", shell), finding, fix, unban_verifier(shell, fix))


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the review ------------------------------------------------------------------------------


async def test_failed_logins_get_an_address_banned_and_the_review_shows_it(
    shell: SSHShell, attacker: Attacker
) -> None:
    quiet = await review(shell)
    assert [(f.target, f.status, f.summary, f.fixes) for f in quiet] == [
        ("jail sshd", Status.OK, "0 banned", ())
    ]
    assert "Currently banned:\t0" in quiet[0].evidence[0].output

    await attacker.get_banned(shell)
    assert "Connection refused" in attacker.try_login()  # the ban is a real nft rule

    (jail,) = await review(shell)
    assert jail.status is Status.OK, jail
    assert jail.summary == (
        f"1 banned ({attacker.address}); to unban: fail2ban-client set sshd unbanip ADDRESS"
    )
    (fix,) = jail.fixes
    assert fix.commands == (("fail2ban-client", "set", "sshd", "unbanip", attacker.address),)
    assert fix.risk is Risk.DISRUPTIVE
    assert fix.impact.startswith(f"lets {attacker.address} try again")
    assert fix.target == f"{attacker.address} in jail sshd"
    assert fix.pin.value == attacker.address and fix.verify == FAIL2BAN_ID


async def test_unban_through_the_gate_is_confirmed_audited_and_verified(
    shell: SSHShell, attacker: Attacker, tmp_path: Path
) -> None:
    await attacker.get_banned(shell)
    (jail,) = await review(shell)
    confirm, audit = Confirm(), tmp_path / "audit.jsonl"

    result = await unban(shell, jail, audit, confirm)

    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.message == f"verified: {attacker.address} is no longer banned in jail sshd"
    shown = "\n".join(confirm.asked[0].summary_lines())
    assert f"$ fail2ban-client set sshd unbanip {attacker.address}" in shown
    assert "risk:    disruptive" in shown and f"lets {attacker.address} try again" in shown
    assert f"(pinned: {attacker.address} banned in jail sshd = {attacker.address})" in shown
    started, finished = records(audit)
    assert (started["event"], finished["event"], finished["outcome"]) == (
        "started",
        "finished",
        "verified",
    )
    assert finished["commands"] == [f"fail2ban-client set sshd unbanip {attacker.address}"]
    (run,) = finished["runs"]  # type: ignore[misc]
    assert run["exit_status"] == 0 and run["output"].strip() == "1"
    assert attacker.address not in await banned_list(shell)
    assert "Permission denied (publickey)" in attacker.try_login()  # sshd answers it again
    (after,) = await review(shell)
    assert (after.summary, after.fixes) == ("0 banned", ())


async def test_read_only_mode_refuses_the_unban_and_the_address_stays_banned(
    shell: SSHShell, attacker: Attacker, tmp_path: Path
) -> None:
    await attacker.get_banned(shell)
    (jail,) = await review(shell)
    confirm, audit = Confirm(), tmp_path / "audit.jsonl"

    result = await unban(shell, jail, audit, confirm, read_only=True)

    assert result.outcome is Outcome.REFUSED and "read-only" in result.message
    assert confirm.asked == []
    (record,) = records(audit)
    assert record["event"] == "refused" and record["read_only"] is True
    assert attacker.address in await banned_list(shell)


async def test_unban_is_aborted_when_the_address_was_unbanned_since_it_was_shown(
    shell: SSHShell, attacker: Attacker, tmp_path: Path
) -> None:
    await attacker.get_banned(shell)
    (jail,) = await review(shell)
    by_hand = ("fail2ban-client", "set", "sshd", "unbanip", attacker.address)
    assert (await shell.run(by_hand, timeout=30)).ok  # someone else, meanwhile

    result = await unban(shell, jail, tmp_path / "audit.jsonl", Confirm())

    assert result.outcome is Outcome.ABORTED, result.message
    assert [r["event"] for r in records(tmp_path / "audit.jsonl")] == ["aborted"]


async def test_a_jail_with_many_bans_offers_a_bounded_number_of_unbans(shell: SSHShell) -> None:
    """Bans made with fail2ban's own client (documentation addresses, RFC 5737)."""
    many = [f"198.51.100.{n}" for n in range(1, FIXES_PER_JAIL + 3)]
    assert (await shell.run(("fail2ban-client", "set", "sshd", "banip", *many), timeout=30)).ok
    try:
        (jail,) = await review(shell)
    finally:
        await shell.run(("fail2ban-client", "set", "sshd", "unbanip", *many), timeout=30)
    assert jail.summary.startswith(f"{len(many)} banned (")
    assert jail.summary.endswith(f"; an unban is offered for the first {FIXES_PER_JAIL} only")
    assert len(jail.fixes) == FIXES_PER_JAIL
    assert {f.pin.value for f in jail.fixes} <= set(many)
    assert await banned_list(shell) == []


async def test_a_stopped_fail2ban_server_is_a_warning_not_health(shell: SSHShell) -> None:
    assert (await shell.run(("systemctl", "stop", "fail2ban"), timeout=60)).ok
    try:
        (stopped,) = await review(shell)
    finally:
        assert (await shell.run(("systemctl", "start", "fail2ban"), timeout=60)).ok
        await until("fail2ban's sshd jail answers again", lambda: jail_up(shell))
    assert stopped.status is Status.WARN, stopped
    assert stopped.target == "fail2ban"
    assert stopped.summary.startswith(
        "fail2ban is installed but its server is not running: it bans nobody"
    )
    assert "Is fail2ban running?" in stopped.evidence[0].output


async def test_a_masked_fail2ban_is_installed_and_not_in_use_not_a_warning(
    lab_shell: SSHShell,
) -> None:
    """The shared lab host has fail2ban installed and its service masked, as an admin who
    does not use it leaves it: said, OK."""
    (masked,) = await review(lab_shell)
    assert masked.status is Status.OK, masked
    assert (
        masked.summary == "fail2ban is installed but masked here (systemctl is-enabled): not in use"
    )


async def test_a_host_without_fail2ban_gives_no_fail2ban_finding(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    """A namespace host runs this machine's own programs, where fail2ban is not installed
    (never install it here: its package would start this machine's service)."""
    assert shutil.which("fail2ban-client") is None, "this test needs a machine without fail2ban"
    (host,) = netns_hosts(1)
    async with ssh_shell(host, ssh_keys, tmp_path / "known_hosts", host.name) as opened:
        assert await review(opened) == []


# -- the parsers, on recorded answers ----------------------------------------------------------


def test_jails_and_bans_are_read_from_fail2ban_clients_answers() -> None:
    assert parse_jails(STATUS) == ["nginx-http-auth", "sshd"]
    assert parse_jails("Status\n|- Number of jail:\t0\n`- Jail list:\t\n") == []
    assert parse_jails("ERROR   Failed to access socket path") is None
    assert parse_jail(JAIL_STATUS) == (2, ["10.231.24.11", "2001:db8::7"])
    assert parse_jail(JAIL_STATUS.replace("Currently banned", "Banned")) is None


@given(st.text())
def test_the_parsers_read_any_text_without_failing(text: str) -> None:
    jails = parse_jails(text)
    assert jails is None or all(j and "," not in j for j in jails)
    read = parse_jail(text)
    assert read is None or (read[0] >= 0 and all(a.strip() == a and a for a in read[1]))


def test_an_unban_is_offered_only_for_what_reads_as_an_address_in_a_jail_name() -> None:
    read = ["10.231.24.11", "2001:db8::7", "198.51.100.0/24", "x;reboot", "-h", "10.0.0.300"]
    assert offerable("sshd", read) == ["10.231.24.11", "2001:db8::7", "198.51.100.0/24"]
    assert offerable("nginx-http-auth", ["10.0.0.1"]) == ["10.0.0.1"]
    assert offerable("-sshd", ["10.0.0.1"]) == []
    assert offerable("ssh d", ["10.0.0.1"]) == []
