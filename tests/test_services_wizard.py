"""Runbook C6 for real: the service recovery wizard on the systemd lab over SSH. fd-recover
fails while its stale lock file is there: the wizard shows why (its log line), checks what
it needs (a port it reaches, one it cannot, a mount), cleans the state through the gate
(only while the unit is stopped), then starts it and sees it stay up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.catalog import WIZARDS
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.wizards import StepState, WizardRun
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.ssh import SSHShell

from conftest import fleetdeck_bin
from sshd import SshKeys, write_known_hosts
from systemd_host import STALE_LOCK, SystemdHost

RECOVERY = [
    {
        "unit": "fd-recover",
        "ports": ["127.0.0.1:22", "127.0.0.1:9"],
        "disks": ["/"],
        "clean": [{"run": ["rm", "-f", STALE_LOCK], "check": ["test", "!", "-e", STALE_LOCK]}],
    }
]


async def broken_by_a_stale_lock(host: SystemdHost, shell: SSHShell) -> None:
    host.path(STALE_LOCK).write_text("pid 4242\n")
    await shell.run(("systemctl", "restart", "fd-recover"), timeout=60)


async def yes(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def test_wizard_cleans_the_stale_state_then_starts_the_unit_and_sees_it_stay_up(
    systemd_host: SystemdHost, lab_shell: SSHShell, tmp_path: Path
) -> None:
    await broken_by_a_stale_lock(systemd_host, lab_shell)
    wizard = WIZARDS["service"]
    params = wizard.parse_params({"unit": "fd-recover", "recovery": json.dumps(RECOVERY)})
    ctx = CheckContext("sysd", SampleHistory(size=2), Config().thresholds, lab_shell, None, params)
    run = WizardRun(wizard, ctx)
    await run.run()
    by = {r.step.id: r for r in run.results}
    assert [r.step.id for r in run.results] == [
        "services.unit", "services.requires", "net.connect", "disk.mounts",
        "services.clean", "services.start",
    ]  # fmt: skip
    assert all(r.state is StepState.DONE for r in run.results), [r.reason for r in run.results]
    unit = by["services.unit"].findings[0]
    assert unit.status is Status.CRIT and unit.target == "fd-recover.service"
    assert any(f"stale lock {STALE_LOCK} held" in e.output for e in unit.evidence)
    assert by["services.requires"].status is Status.OK
    ports = {f.target: f.status for f in by["net.connect"].findings}
    assert ports == {"127.0.0.1:22": Status.OK, "127.0.0.1:9": Status.CRIT}
    assert by["disk.mounts"].status is Status.OK
    (clean,) = by["services.clean"].findings
    assert clean.status is Status.WARN and [f.id for f in clean.fixes] == ["service.clean"]
    (start,) = by["services.start"].findings
    assert [f.id for f in start.fixes] == ["service.restart"]

    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
    host = FixHost("sysd", lab_shell)
    index = run.index_of("services.clean")
    cleaned = await gate.apply(host, clean, clean.fixes[0], run.verifier(index, clean))
    assert cleaned.outcome is Outcome.VERIFIED, cleaned.message
    assert not systemd_host.path(STALE_LOCK).exists()

    index = run.index_of("services.start")
    started = await gate.apply(host, start, start.fixes[0], run.verifier(index, start))
    assert started.outcome is Outcome.VERIFIED, started.message
    await run.rerun(run.index_of("services.unit"))
    assert run.results[0].status is Status.OK

    # Running now: a stale lock that comes back is reported, but nothing is offered.
    systemd_host.path(STALE_LOCK).write_text("pid 4242\n")
    await run.rerun(run.index_of("services.clean"))
    (again,) = run.results[run.index_of("services.clean")].findings
    assert again.status is Status.WARN and not again.fixes
    assert "nothing is cleaned under it" in again.summary
    systemd_host.path(STALE_LOCK).unlink()


async def test_cli_service_wizard_takes_the_recovery_entry_from_the_settings(
    systemd_host: SystemdHost, lab_shell: SSHShell, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    await broken_by_a_stale_lock(systemd_host, lab_shell)
    settings = (
        "[[services.recovery]]\n"
        'unit = "fd-recover"\n'
        'disks = ["/"]\n'
        f'clean = [{{ run = ["rm", "-f", "{STALE_LOCK}"], '  # an inline table: one line
        f'check = ["test", "!", "-e", "{STALE_LOCK}"] }}]\n'
    )
    steps, err, returncode = await cli_wizard(
        systemd_host, ssh_keys, tmp_path, "fd-recover", settings
    )
    assert steps["services.unit"]["status"] == "CRIT", err
    assert steps["services.clean"]["findings"][0]["fixes"][0]["commands"] == [f"rm -f {STALE_LOCK}"]
    assert steps["net.connect"]["findings"][0]["summary"].startswith("the settings name no ports")
    assert returncode == 2


async def test_a_required_unit_that_is_down_is_named_by_the_wizard(lab_shell: SSHShell) -> None:
    wizard = WIZARDS["service"]
    params = wizard.parse_params({"unit": "fd-needy"})
    ctx = CheckContext("sysd", SampleHistory(size=2), Config().thresholds, lab_shell, None, params)
    run = WizardRun(wizard, ctx)
    await run.run()
    unit = run.results[run.index_of("services.unit")].findings[0]
    assert unit.status is Status.CRIT and unit.summary == "is inactive (dead)"
    assert any("failed with result 'dependency'" in e.output for e in unit.evidence)
    (needed,) = run.results[run.index_of("services.requires")].findings
    assert needed.status is Status.CRIT and needed.target == "fd-broken.service"
    assert needed.summary.startswith("required by fd-needy.service but failed")
    ports = run.results[run.index_of("net.connect")].findings[0]
    assert ports.status is Status.OK and ports.summary.startswith("the settings name no ports")


async def test_the_wizard_stops_at_a_unit_that_does_not_exist(lab_shell: SSHShell) -> None:
    wizard = WIZARDS["service"]
    params = wizard.parse_params({"unit": "no-such-thing"})
    ctx = CheckContext("sysd", SampleHistory(size=2), Config().thresholds, lab_shell, None, params)
    run = WizardRun(wizard, ctx)
    await run.run()
    assert run.results[0].findings[0].summary == "no such unit (not-found)"
    assert all(r.state is StepState.SKIPPED for r in run.results[1:])


async def cli_wizard(
    host: SystemdHost, keys: SshKeys, tmp_path: Path, unit: str, settings: str
) -> tuple[dict[str, Any], str, int | None]:
    """`fleetdeck wizard service --unit UNIT --json --read-only` on the lab host, as an
    operator runs it, with `settings` as the settings file: (its steps by id, stderr, exit)."""
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(
        f'[[host]]\nname = "sysd"\naddress = "{host.address}"\nuser = "root"\n'
        f'identity_file = "{keys.client_key}"\n'
    )
    config = tmp_path / "xdg_config_home" / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(settings)
    known = write_known_hosts(tmp_path / "known_hosts", host)  # type: ignore[arg-type]
    process = await asyncio.create_subprocess_exec(
        fleetdeck_bin(), "wizard", "service", "--unit", unit, "--json", "--read-only",
        "-i", str(inventory), "--host", "sysd", "--known-hosts", str(known),
        "--audit-log", str(tmp_path / "audit.jsonl"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(180):
        out, err = await process.communicate()
    assert out, err.decode()
    return {s["id"]: s for s in json.loads(out)["steps"]}, err.decode(), process.returncode
