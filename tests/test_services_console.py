"""The services domain through the seam, end to end on the systemd lab over real SSH:
`fleetdeck check` grades its units (and `--no-services` leaves them out), the Host screen's
Services pane shows them and its periodic sweep raises alerts, enter opens a unit's journal
in the Logs screen, and `u` runs the service wizard on the unit under the pane's cursor,
its fix through the gate (confirmation, audit record, verification)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fleetdeck.checks.config import load_config
from fleetdeck.checks.model import Status
from fleetdeck.hosts.inventory.load import load_inventory
from fleetdeck.hosts.ssh import SSHOptions, SSHShell
from fleetdeck.tui.app import Settings, make_fleet_app
from fleetdeck.tui.confirm import ConfirmFix
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.tui.logs_screen import LogsScreen, LogView
from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen
from fleetdeck.widgets.services_pane import ServicesPane

from conftest import fleetdeck_bin
from recorded import until_wizard_done
from sshd import SshKeys, ssh_shell, write_known_hosts
from systemd_host import STALE_LOCK, SystemdHost

SETTINGS = f"""\
[alerts]
for = 0

[services]
units = ["fd-healthy"]

[[services.recovery]]
unit = "fd-recover"
clean = [{{ run = ["rm", "-f", "{STALE_LOCK}"], check = ["test", "!", "-e", "{STALE_LOCK}"] }}]
"""


@pytest.fixture
def lab_files(systemd_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path) -> dict[str, Path]:
    """The inventory naming the lab host, its known key, and the settings file."""
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(
        f'[[host]]\nname = "sysd"\naddress = "{systemd_host.address}"\nuser = "root"\n'
        f'identity_file = "{ssh_keys.client_key}"\n'
    )
    settings = tmp_path / "config.toml"
    settings.write_text(SETTINGS)
    known = write_known_hosts(tmp_path / "known_hosts", systemd_host)  # type: ignore[arg-type]
    return {"inventory": inventory, "settings": settings, "known": known}


@pytest.fixture
async def lab_shell(
    systemd_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> AsyncIterator[SSHShell]:
    known = tmp_path / "shell_known_hosts"
    async with ssh_shell(systemd_host, ssh_keys, known, "sysd") as shell:  # type: ignore[arg-type]
        yield shell


def _check(files: dict[str, Path], *args: str) -> dict[str, object]:
    result = subprocess.run(
        [fleetdeck_bin(), "check", "--json", "--interval", "0.3", "--config",
         str(files["settings"]), "-i", str(files["inventory"]), "--known-hosts",
         str(files["known"]), "--no-storage", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.stdout, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_fleetdeck_check_grades_the_lab_units_and_no_services_leaves_them_out(
    lab_files: dict[str, Path],
) -> None:
    """The failed unit is CRIT, the important healthy one is quiet; `--no-services` leaves
    every services finding out and changes nothing else of the report's shape.
    (`--no-storage` keeps the run short: the storage checks are not what this is about.)"""
    report = _check(lab_files)
    (host,) = report["hosts"]  # type: ignore[attr-defined]
    assert host["reachable"] is True
    units = [f for f in host["findings"] if f["check"] == "services.units"]
    broken = [f for f in units if f["target"] == "fd-broken.service"]
    assert [f["status"] for f in broken] == ["CRIT"], units
    assert broken[0]["summary"].startswith("failed"), broken
    healthy = [f["status"] for f in units if f["target"] == "fd-healthy.service"]
    assert healthy in ([], ["OK"]), units  # named and running: quiet
    assert any(f["check"] == "services.logs" for f in host["findings"])

    without = _check(lab_files, "--no-services")
    (quiet,) = without["hosts"]  # type: ignore[attr-defined]
    assert not [f for f in quiet["findings"] if f["check"].startswith("services.")]
    assert set(without) == set(report) and set(quiet) == set(host)
    assert {frozenset(f) for f in quiet["findings"]} <= {frozenset(f) for f in host["findings"]}


async def _until(pilot: Pilot[None], condition: Callable[[], object], timeout: float) -> None:
    waited = 0.0
    while not condition():
        assert waited < timeout, "the console did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


def _console(files: dict[str, Path], audit: Path):  # type: ignore[no-untyped-def]
    loaded = load_inventory([files["inventory"]])
    options = SSHOptions(known_hosts=files["known"], agent=False)
    settings = Settings(interval=0.5, storage_every=0, audit_log=audit)
    config = load_config(files["settings"], required=True)
    return make_fleet_app(settings, config, loaded, loaded.hosts, options)


async def test_host_screen_shows_the_units_raises_alerts_and_opens_a_units_log(
    lab_files: dict[str, Path], tmp_path: Path
) -> None:
    app = _console(lab_files, tmp_path / "audit.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        pane = screen.query_one("#services", ServicesPane)
        assert pane.border_title == "8 Services"

        def names() -> list[str]:
            return [line.name for line in pane.good.lines] if pane.good else []

        await _until(pilot, lambda: "fd-broken.service" in names(), 60)
        assert pane.good is not None and pane.good.important == 1
        healthy = next(line for line in pane.good.lines if line.name == "fd-healthy.service")
        assert healthy.status is Status.OK and healthy.important

        # The periodic sweep (30 s cadence, the first run at once) raises the alert.
        watch = screen.host_watch

        def swept() -> list[tuple[str, str, Status]]:
            found = watch.domain_findings.get("services", [])
            return [(f.check, f.target, f.status) for f in found]

        await _until(pilot, lambda: swept(), 60)
        assert ("services.units", "fd-broken.service", Status.CRIT) in swept()
        assert all(s is Status.OK for _, t, s in swept() if t == "fd-healthy.service")
        alerts = lambda: {(a.check, a.target) for a in watch.alerts.alerts()}  # noqa: E731
        await _until(pilot, lambda: ("services.units", "fd-broken.service") in alerts(), 10)

        # 8 focuses the pane; the cursor goes to the failed unit; enter opens its journal.
        await pilot.press("8")
        assert screen.focused is pane
        await pilot.press(*["down"] * names().index("fd-broken.service"))
        assert pane.selected is not None and pane.selected.name == "fd-broken.service"
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, LogsScreen), 5)
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        view = logs.query_one(LogView)
        await _until(pilot, lambda: any("shard-4711.db" in line.text for line in view.shown), 30)
        title = str(logs.query_one("#logs-title").render())
        assert title.startswith("Logs of fd-broken.service (journal) on sysd · following")
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen is screen, 5)
    # Nobody refreshes them once the screen is gone: they must not keep alerts firing.
    assert watch.domain_findings == {}


async def test_u_runs_the_service_wizard_on_the_unit_under_the_cursor_through_the_gate(
    systemd_host: SystemdHost, lab_shell: SSHShell, lab_files: dict[str, Path], tmp_path: Path
) -> None:
    """fd-recover fails on a stale lock: the Services pane lists it, `u` opens the service
    wizard's form with the unit and the settings' recovery entry, and the clean-state fix is
    confirmed, audited and verified."""
    systemd_host.path(STALE_LOCK).write_text("pid 4242\n")
    await lab_shell.run(("systemctl", "restart", "fd-recover"), timeout=60)
    audit = tmp_path / "audit.jsonl"
    app = _console(lab_files, audit)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        pane = screen.query_one("#services", ServicesPane)

        def names() -> list[str]:
            return [line.name for line in pane.good.lines] if pane.good else []

        await _until(pilot, lambda: "fd-recover.service" in names(), 60)
        await pilot.press("8", *["down"] * names().index("fd-recover.service"))
        await pilot.press("u")
        await _until(pilot, lambda: isinstance(app.screen, WizardForm), 5)
        form = app.screen
        assert isinstance(form, WizardForm)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, WizardScreen), 5)
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        assert wizard.params["unit"] == "fd-recover.service"
        assert json.loads(wizard.params["recovery"])[0]["unit"] == "fd-recover.service"
        await until_wizard_done(pilot)
        assert wizard.run is not None
        clean = wizard.run.index_of("services.clean")
        (found,) = wizard.run.results[clean].findings
        assert found.status is Status.WARN and [f.id for f in found.fixes] == ["service.clean"]

        await pilot.press(*["down"] * clean, "f")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmFix), 5)
        await pilot.press("y")
        await _until(pilot, lambda: wizard.run.results[clean].status is Status.OK, 60)  # type: ignore[union-attr]
        assert not systemd_host.path(STALE_LOCK).exists()
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["event"] for e in events] == ["started", "finished"]
    assert events[1]["outcome"] == "verified" and events[1]["host"] == "sysd"
    assert STALE_LOCK in json.dumps(events[0])
