"""A restart or start is verified by the unit staying active AND its health endpoint
answering, on the systemd lab over SSH (R02's fixes, the service wizard's "Start and verify").

The units here are this module's own, written into the booted lab by a fixture and removed
after each test (the lab's LAB_UNITS stay as every other test knows them). They serve HTTP on
the lab host's loopback with a small python3 server: fd-web answers 200 "ok" but only starts
listening a few seconds after systemd calls it active (a service that needs a moment, so the
gate's verification window has to wait for it); fd-sick is active at once and answers 503;
fd-plain serves nothing and names no endpoint. The endpoints reach the checks as the
settings give them, through the `health` parameter; the last test reads them from a real
settings file through `fleetdeck wizard service`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_services_units import apply, sh, units, until, yes
from test_services_wizard import cli_wizard

from fleetdeck.checks.actions import ActionGate, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.catalog import WIZARDS
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.services.health_config import health_param
from fleetdeck.checks.services.probe_config import HttpEndpoint
from fleetdeck.checks.services.wizard import START
from fleetdeck.checks.wizards import WizardRun
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.ssh import SSHShell

from sshd import SshKeys
from systemd_host import SystemdHost

SERVER = "/srv/fd-web/serve.py"
SERVE = """\
import http.server
import sys

port, status = int(sys.argv[1]), int(sys.argv[2])
body = b"ok\\n" if status == 200 else b"database unreachable\\n"


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""
LISTENS_AFTER = 7
"""Seconds fd-web runs before it listens: past units.STABLE, inside units.SETTLE."""
UNITS = {
    "fd-web.service": f"""\
[Unit]
Description=fleetdeck lab: a web service that listens a moment after it starts

[Service]
ExecStart=/bin/sh -c 'sleep {LISTENS_AFTER}; exec python3 {SERVER} 18181 200'
""",
    "fd-sick.service": f"""\
[Unit]
Description=fleetdeck lab: a web service that runs but answers 503

[Service]
ExecStart=/usr/bin/python3 {SERVER} 18182 503
""",
    "fd-plain.service": """\
[Unit]
Description=fleetdeck lab: a service with no health endpoint

[Service]
ExecStart=/bin/sleep infinity
""",
}
WEB = HttpEndpoint("http://127.0.0.1:18181/health", body="ok", unit="fd-web.service")
SICK = HttpEndpoint("http://127.0.0.1:18182/health", unit="fd-sick.service")
DEAF = HttpEndpoint("http://127.0.0.1:18183/health", unit="fd-healthy.service")
"""fd-healthy (the lab's own, `sleep infinity`) listens nowhere: nothing answers there."""
HEALTH = health_param([WEB, SICK])


@pytest.fixture
async def web_units(systemd_host: SystemdHost, lab_shell: SSHShell) -> AsyncIterator[None]:
    """This module's units, written into the lab and started; stopped and removed after."""
    server = systemd_host.path(SERVER)
    server.parent.mkdir(parents=True, exist_ok=True)
    server.write_text(SERVE)
    for name, text in UNITS.items():
        systemd_host.path(f"/etc/systemd/system/{name}").write_text(text)
    await sh(lab_shell, "systemctl", "daemon-reload")
    await sh(lab_shell, "systemctl", "start", *UNITS)
    try:
        yield
    finally:
        await sh(lab_shell, "systemctl", "stop", *UNITS)
        await sh(lab_shell, "systemctl", "reset-failed", *UNITS)
        for name in UNITS:
            systemd_host.path(f"/etc/systemd/system/{name}").unlink()
        server.unlink()
        await sh(lab_shell, "systemctl", "daemon-reload")


async def killed(shell: SSHShell, unit: str) -> None:
    """The unit's processes killed by SIGKILL: it is failed (result: signal)."""
    await sh(shell, "systemctl", "kill", "--signal=SIGKILL", unit)

    async def failed() -> bool:
        return await sh(shell, "systemctl", "is-failed", unit) == "failed"

    await until(f"{unit} failed", failed)


async def test_restart_is_verified_once_the_unit_stays_up_and_its_endpoint_answers_200(
    lab_shell: SSHShell, web_units: None, tmp_path: Path
) -> None:
    await killed(lab_shell, "fd-web")
    broken = (await units(lab_shell, health=HEALTH))["fd-web.service"]
    assert broken.status is Status.CRIT and broken.summary.startswith("failed (result: signal)")
    restart = next(f for f in broken.fixes if f.id == "service.restart")
    assert f"and {WEB.url} answers 200" in restart.impact
    result = await apply(
        lab_shell, broken, "service.restart", tmp_path / "audit.jsonl", health=HEALTH
    )
    # The server listens LISTENS_AFTER s after the unit is active: the gate asked again
    # (connection refused) until it answered, inside its window.
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.after is not None
    assert f"; {WEB.url}: 200 in " in result.after.summary and result.after.summary.endswith(
        " ms: ok"
    )
    assert any(WEB.url in e.source for e in result.after.evidence)
    record = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert (
        record["outcome"] == "verified" and "200 in" in record["verification"]["after"]["summary"]
    )


async def test_a_unit_active_while_its_endpoint_answers_503_is_not_recovered(
    lab_shell: SSHShell, web_units: None, tmp_path: Path
) -> None:
    async def answers_503() -> bool:
        found = (await units(lab_shell, focus="fd-sick", health=HEALTH))["fd-sick.service"]
        return f"{SICK.url}: 503 in " in found.summary

    await until("fd-sick answers 503", answers_503)
    sick = (await units(lab_shell, focus="fd-sick", health=HEALTH))["fd-sick.service"]
    assert sick.status is Status.CRIT
    assert sick.summary.startswith("active")  # for a moment only, or for longer
    assert f", but {SICK.url}: 503 in " in sick.summary
    assert sick.summary.endswith(" ms: database unreachable; expected 200")
    (restart,) = sick.fixes
    assert restart.id == "service.restart"
    assert restart.pin.what == "unit fd-sick.service's invocation"
    result = await apply(
        lab_shell, sick, "service.restart", tmp_path / "audit.jsonl", health=HEALTH
    )
    assert result.outcome is Outcome.UNVERIFIED, result.message
    assert await sh(lab_shell, "systemctl", "is-active", "fd-sick") == "active"
    assert result.message.startswith("ran, but the check does not pass yet: CRIT: active")
    assert f"{SICK.url}: 503 in " in result.message and "expected 200" in result.message


async def test_a_unit_that_runs_but_whose_endpoint_does_not_answer_is_critical(
    lab_shell: SSHShell, web_units: None
) -> None:
    health = health_param([WEB, SICK, DEAF])
    deaf = (await units(lab_shell, focus="fd-healthy", health=health))["fd-healthy.service"]
    assert deaf.status is Status.CRIT
    assert f", but {DEAF.url}: connection failed: " in deaf.summary
    assert [f.id for f in deaf.fixes] == ["service.restart"]
    # The sweep, with no unit in focus, leaves endpoints to http.health: quiet here.
    swept = await units(lab_shell, units="fd-healthy\n", health=health)
    assert swept["fd-healthy.service"].status is Status.OK
    assert "http" not in swept["fd-healthy.service"].summary


async def test_a_unit_with_no_endpoint_is_verified_by_its_state_as_before(
    lab_shell: SSHShell, web_units: None, tmp_path: Path
) -> None:
    await killed(lab_shell, "fd-plain")
    broken = (await units(lab_shell, health=HEALTH))["fd-plain.service"]
    restart = next(f for f in broken.fixes if f.id == "service.restart")
    assert restart.impact.endswith("verified once it has stayed active 5 s")
    result = await apply(
        lab_shell, broken, "service.restart", tmp_path / "audit.jsonl", health=HEALTH
    )
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.after is not None and result.after.summary.startswith("active (running) for")
    assert "http" not in result.after.summary
    assert not any("18181" in e.source or "18182" in e.source for e in result.after.evidence)


async def test_wizard_start_and_verify_shows_the_endpoint_answer(
    lab_shell: SSHShell, web_units: None, tmp_path: Path
) -> None:
    await sh(lab_shell, "systemctl", "stop", "fd-web")
    wizard = WIZARDS["service"]
    params = wizard.parse_params({"unit": "fd-web", "health": HEALTH})
    ctx = CheckContext("sysd", SampleHistory(size=2), Config().thresholds, lab_shell, None, params)
    run = WizardRun(wizard, ctx)
    (stopped,) = await START.run(ctx)
    assert stopped.status is Status.CRIT and stopped.summary == "is inactive (dead)"
    (start,) = stopped.fixes
    assert start.id == "service.start" and f"{WEB.url} answers 200" in start.impact
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
    index = run.index_of("services.start")
    result = await gate.apply(
        FixHost("sysd", lab_shell), stopped, start, run.verifier(index, stopped)
    )
    assert result.outcome is Outcome.VERIFIED, result.message
    (shown,) = run.results[index].findings
    assert shown.status is Status.OK
    assert f"{WEB.url}: 200 in " in shown.summary and " ms: ok" in shown.summary

    # The same step on the unit that answers 503: shown, and a restart offered.
    sick_params = wizard.parse_params({"unit": "fd-sick", "health": HEALTH})
    (sick,) = await START.run(
        CheckContext(
            "sysd", SampleHistory(size=2), Config().thresholds, lab_shell, None, sick_params
        )
    )
    assert sick.status is Status.CRIT and f"{SICK.url}: 503 in " in sick.summary
    assert [f.id for f in sick.fixes] == ["service.restart"]


async def test_cli_wizard_takes_the_unit_endpoint_from_the_settings(
    systemd_host: SystemdHost, ssh_keys: SshKeys, web_units: None, tmp_path: Path
) -> None:
    """`[[services.http]]` with `unit` in the settings file reaches the wizard's last step."""
    settings = f'[[services.http]]\nurl = "{SICK.url}"\nunit = "fd-sick"\n'
    steps, _, returncode = await cli_wizard(systemd_host, ssh_keys, tmp_path, "fd-sick", settings)
    (start,) = steps["services.start"]["findings"]
    assert start["status"] == "CRIT", start
    assert f", but {SICK.url}: " in start["summary"], start
    assert returncode == 2
