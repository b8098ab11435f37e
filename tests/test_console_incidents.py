"""Incidents, acknowledgements, silences and runbooks from the Host screen, on fleetdeck's own
alerts (real samples of this machine: the disk thresholds are set so low that every real
mount raises an alert) and written to a real state database in tmp: `i` opens an incident
from the alert under the cursor through the modal, `A` acknowledges it, `S` silences it, and
Enter on an alert whose rule names a runbook opens that runbook's wizard."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from fleetdeck.checks.config import load_config
from fleetdeck.checks.incidents.alertlog import stored_alerts
from fleetdeck.checks.incidents.incidents import list_incidents
from fleetdeck.checks.incidents.silences import silences
from fleetdeck.checks.incidents.store import Store
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.tui.incident_modal import OpenIncident
from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen
from fleetdeck.widgets import AlertsTable


async def until(
    pilot: Pilot[None], condition: Callable[[], object], why: Callable[[], object] = str
) -> None:
    """Wait for the screen to get there; bounded (60 s), never a timed assertion on speed."""
    for _ in range(1200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"the screen did not get there: {why()}")


def column(table: AlertsTable, name: str) -> list[str]:
    index = table.column_index(name)
    return [str(table.row(r)[index]) for r in range(table.row_count)]


async def test_incident_ack_silence_and_runbook_from_the_host_screen(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    settings = tmp_path / "config.toml"
    settings.write_text(
        "[thresholds.disk]\nwarn = 0\ncrit = 0\n"
        f'[alerts]\nfor = 0\nstate = "{state}"\n'
        '[[alerts.rules]]\nname = "disks"\ncheck = "disk.space"\nrunbook = "S2"\n'
    )
    app = make_app(
        Settings(interval=0.3, audit_log=tmp_path / "audit.jsonl"), load_config(settings)
    )
    store = Store(state)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        table = screen.query_one(AlertsTable)
        offered = {c.title for c in app.get_system_commands(screen)}  # the command palette
        assert {"Open incident", "Acknowledge alert", "Silence alert"} <= offered
        await until(
            pilot,
            lambda: "disk.space · S2" in column(table, "check"),
            lambda: column(table, "check"),
        )
        await pilot.press("1")  # the alert list, keys only
        row = column(table, "check").index("disk.space · S2")
        for _ in range(row):
            await pilot.press("down")
        await until(pilot, lambda: stored_alerts(store, host=screen.host_name))
        alert = table.under_cursor()
        stored = next(
            a
            for a in stored_alerts(store, host=screen.host_name)
            if a.check == "disk.space" and a.key == getattr(alert, "key", None)
        )

        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, OpenIncident))
        modal = app.screen
        title = modal.query_one("#title", Input)
        assert title.value.startswith(f"{screen.host_name}: ")
        assert modal.query_one("#severity", Select).value == "P2"  # a CRIT alert
        await pilot.press("enter")
        await until(pilot, lambda: list_incidents(store))
        (incident,) = list_incidents(store)
        assert (incident.severity, incident.opened_by) == ("P2", getpass.getuser())
        assert incident.alert_ids == (stored.id,)
        assert incident.hosts == (screen.host_name,)
        assert app.screen is screen

        await pilot.press("A")
        await until(
            pilot, lambda: any(a.acked_by for a in stored_alerts(store, host=screen.host_name))
        )
        (acked,) = [a for a in stored_alerts(store, host=screen.host_name) if a.acked_by]
        assert (acked.id, acked.acked_by) == (stored.id, getpass.getuser())

        await pilot.press("S")
        await until(pilot, lambda: silences(store))
        (silence,) = silences(store)
        assert silence.matches(dict(stored.labels))
        assert silence.who == getpass.getuser()
        await until(pilot, lambda: "silenced" in column(table, "state"))

        await pilot.press("enter")  # the rule's runbook S2: the storage wizard
        await until(pilot, lambda: isinstance(app.screen, (WizardForm, WizardScreen)))
        assert app.screen.wizard.domain == "storage"  # type: ignore[attr-defined]
