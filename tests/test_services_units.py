"""Runbook R02 for real: systemd as PID 1 in its own root (tests/systemd_host.py), reached
over SSH, with units that fail, flap and recover, a healthy one that stays quiet, and a host
without systemd that says so and stays OK. Fixes go through the real gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from fleetdeck.checks.actions import ActionGate, ActionResult, ConfirmRequest, Decision, FixHost
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.services.units import NO_SYSTEMD, UNITS, UNITS_ID
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.ssh import SSHShell

from sshd import NetnsHost, SshKeys, ssh_shell
from systemd_host import STALE_LOCK, SystemdHost

WAIT = 60.0
"""Longest wait for the lab's units to reach a state (a deadline, never an assertion)."""


@pytest.fixture
async def lab_shell(
    systemd_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> AsyncIterator[SSHShell]:
    async with ssh_shell(systemd_host, ssh_keys, tmp_path / "known_hosts", "sysd") as shell:  # type: ignore[arg-type]
        yield shell


def context(shell: Shell, **params: str) -> CheckContext:
    return CheckContext("sysd", SampleHistory(size=2), Config().thresholds, shell, None, params)


async def units(shell: Shell, **params: str) -> dict[str, Finding]:
    return {f.target: f for f in await UNITS.run(context(shell, **params))}


async def until(what: str, probe: Callable[[], object]) -> None:
    """Wait (bounded) until `probe()` (a coroutine function's result) is true."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await probe():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the lab never reached: {what}")
        await asyncio.sleep(0.5)


async def sh(shell: Shell, *argv: str) -> str:
    result = await shell.run(argv, timeout=60)
    return result.stdout.strip()


async def yes(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def apply(
    shell: Shell, finding: Finding, fix_id: str, audit: Path, **params: str
) -> ActionResult:
    """A finding's fix through the real gate, verified by the units check on its unit."""

    async def verify() -> Finding | None:
        found = await units(shell, focus=finding.target, **params)
        return found.get(finding.target)

    fix = next(f for f in finding.fixes if f.id == fix_id)
    gate = ActionGate(audit=AuditLog(audit), confirm=yes)
    return await gate.apply(FixHost("sysd", shell), finding, fix, verify)


async def test_failed_unit_is_critical_with_its_status_lines_and_healthy_one_is_quiet(
    lab_shell: SSHShell,
) -> None:
    found = await units(lab_shell)
    broken = found["fd-broken.service"]
    assert broken.status is Status.CRIT
    assert broken.summary.startswith("failed (result: exit-code)")
    assert "fd-broken: cannot open /srv/data/shard-4711.db" in broken.evidence[0].output
    assert [f.id for f in broken.fixes] == ["service.restart", "service.reset_failed"]
    assert broken.fixes[0].commands == (("systemctl", "restart", "fd-broken.service"),)
    assert "fd-healthy.service" not in found
    assert "ssh.service" not in found
    named = await units(lab_shell, units="fd-healthy\n")
    assert named["fd-healthy.service"].status is Status.OK


async def test_flapping_unit_is_a_warning_with_its_restart_count(lab_shell: SSHShell) -> None:
    async def restarted() -> bool:
        count = await sh(lab_shell, "systemctl", "show", "-p", "NRestarts", "--value", "fd-flappy")
        return int(count or 0) >= 3

    await until("fd-flappy restarted 3 times", restarted)
    flappy = (await units(lab_shell, restarts="3"))["fd-flappy.service"]
    assert flappy.status is Status.WARN
    assert flappy.summary.startswith("flapping: restarted ")
    assert [f.id for f in flappy.fixes] == ["service.restart"]
    assert flappy.fixes[0].pin.what == "unit fd-flappy.service's unit file"
    quiet = await units(lab_shell, restarts="100000")
    assert quiet.get("fd-flappy.service") is None or quiet["fd-flappy.service"].summary.startswith(
        "flapping"
    )  # between two turns it waits to restart (auto-restart), which is flapping at any count


async def test_important_unit_not_running_is_critical_and_started_through_the_gate(
    lab_shell: SSHShell, tmp_path: Path
) -> None:
    await sh(lab_shell, "systemctl", "stop", "fd-healthy")
    stopped = (await units(lab_shell, units="fd-healthy\n"))["fd-healthy.service"]
    assert stopped.status is Status.CRIT
    assert "inactive" in stopped.summary
    assert [f.id for f in stopped.fixes] == ["service.start"]
    result = await apply(
        lab_shell, stopped, "service.start", tmp_path / "audit.jsonl", units="fd-healthy\n"
    )
    assert result.outcome.value == "verified", result.message
    assert await sh(lab_shell, "systemctl", "is-active", "fd-healthy") == "active"


async def test_restart_of_a_unit_that_fails_again_is_not_verified(
    lab_shell: SSHShell, tmp_path: Path
) -> None:
    broken = (await units(lab_shell))["fd-broken.service"]
    result = await apply(lab_shell, broken, "service.restart", tmp_path / "audit.jsonl")
    assert result.outcome.value in ("failed", "unverified"), result.message
    assert (await units(lab_shell))["fd-broken.service"].status is Status.CRIT


async def test_fix_is_aborted_when_someone_restarted_the_unit_since_it_was_shown(
    lab_shell: SSHShell, systemd_host: SystemdHost, tmp_path: Path
) -> None:
    systemd_host.path(STALE_LOCK).write_text("pid 4242\n")
    await sh(lab_shell, "systemctl", "restart", "fd-recover")
    shown = (await units(lab_shell))["fd-recover.service"]
    assert shown.status is Status.CRIT
    await sh(lab_shell, "systemctl", "restart", "fd-recover")  # someone else, meanwhile
    result = await apply(lab_shell, shown, "service.restart", tmp_path / "audit.jsonl")
    assert result.outcome.value == "aborted", result.message


async def test_reset_failed_forgets_the_failure_and_is_verified(
    lab_shell: SSHShell, tmp_path: Path
) -> None:
    await sh(lab_shell, "systemctl", "restart", "fd-broken")
    broken = (await units(lab_shell))["fd-broken.service"]
    result = await apply(lab_shell, broken, "service.reset_failed", tmp_path / "audit.jsonl")
    assert result.outcome.value == "verified", result.message
    assert "fd-broken.service" not in await units(lab_shell)
    await sh(lab_shell, "systemctl", "restart", "fd-broken")  # failed again, for the others


async def test_host_without_systemd_says_so_and_stays_ok(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    (host,) = netns_hosts(1)
    async with ssh_shell(host, ssh_keys, tmp_path / "known_hosts", host.name) as shell:
        findings = await UNITS.run(context(shell, units="nginx\n"))
    assert [(f.check, f.status) for f in findings] == [(UNITS_ID, Status.OK)]
    assert findings[0].summary.startswith(NO_SYSTEMD)


async def test_the_sweep_runs_units_and_logs_with_the_settings_params(lab_shell: SSHShell) -> None:
    from fleetdeck.checks.services.config import ServicesSettings
    from fleetdeck.checks.services.sweep import services_findings

    params = ServicesSettings(units=("fd-healthy.service",), log_minutes=30).params()
    findings = await services_findings(context(lab_shell, **params))
    by = {(f.check, f.target): f.status for f in findings}
    assert by[UNITS_ID, "fd-healthy.service"] is Status.OK
    assert by[UNITS_ID, "fd-broken.service"] is Status.CRIT
    assert by["services.logs", "sysd"] in (Status.WARN, Status.CRIT)
