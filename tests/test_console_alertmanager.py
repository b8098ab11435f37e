"""The console's Host screen with a real Alertmanager (tests/prom.py: Prometheus's
always-firing rule, labelled `instance: testhost`, sends its alert there) beside a dead one:
the alert about this host is listed with its source, the node_exporter alert about another
instance is not, the dead source is one UNKNOWN row naming it. `S` on the alert: a read-only
console refuses and audits only the refusal; a writable one asks, silences it through the
gate, and the list shows it silenced (listed and counted, not hidden)."""

from __future__ import annotations

import json
from pathlib import Path

from prom import PromStack
from prom import prom_stack as prom_stack
from test_console_incidents import column, until
from textual.pilot import Pilot
from textual.widgets import Input

from fleetdeck.checks.config import load_config
from fleetdeck.checks.incidents.board import BoardAlert
from fleetdeck.checks.incidents.incidents import list_incidents
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.prometheus.api import Alertmanager
from fleetdeck.hosts.prometheus.http import HttpSource
from fleetdeck.hosts.samplers import PsutilSampler
from fleetdeck.tui.app import FleetdeckApp, Settings
from fleetdeck.tui.confirm import ConfirmFix
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.tui.incident_modal import OpenIncident
from fleetdeck.widgets import AlertsTable
from fleetdeck.widgets.fleet_table import FleetTable

ALERT = "FleetdeckAlwaysFiring"


def console(tmp_path: Path, am: str, *, read_only: bool) -> FleetdeckApp:
    settings = tmp_path / "config.toml"
    settings.write_text(
        f'[alerts]\nstate = "{tmp_path / "state.db"}"\n'
        f'[[sources.alertmanager]]\nurl = "{am}"\n'
        '[[sources.alertmanager]]\nurl = "http://127.0.0.1:9"\n'
    )
    config = load_config(settings)
    watch = HostWatch("testhost", PsutilSampler(), config, 0.3)
    audit = tmp_path / "audit.jsonl"
    return FleetdeckApp(
        Settings(interval=0.3, read_only=read_only, audit_log=audit), config, [watch]
    )


async def on_alert(pilot: Pilot[None], screen: HostScreen) -> AlertsTable:
    """Wait for Alertmanager's alert on the list (Prometheus sends it each second; `r` asks
    the sources again), and put the cursor on it with keys."""
    table = screen.query_one(AlertsTable)
    for _ in range(120):
        if any(ALERT in s for s in column(table, "summary")):
            break
        await pilot.press("r")
        await pilot.pause(0.5)
    await pilot.press("1")
    for _ in range(20):  # this machine's own alerts may come and go above it: until on it
        summaries = column(table, "summary")
        assert any(ALERT in s for s in summaries), summaries
        await pilot.press("home")
        for _ in range(next(i for i, s in enumerate(summaries) if ALERT in s)):
            await pilot.press("down")
        under = table.under_cursor()
        if isinstance(under, BoardAlert) and under.name == ALERT:
            return table
        await pilot.pause(0.1)
    raise AssertionError(f"the cursor did not stay on {ALERT}: {column(table, 'summary')}")


async def test_alertmanager_alerts_on_the_host_screen_and_silenced_through_the_gate(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    where = prom_stack.alertmanager.split("//", 1)[1]
    am = Alertmanager(HttpSource(prom_stack.alertmanager))

    quiet = tmp_path / "read-only"
    quiet.mkdir()
    app = console(quiet, prom_stack.alertmanager, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        table = await on_alert(pilot, screen)
        row = column(table, "summary").index(
            next(s for s in column(table, "summary") if ALERT in s)
        )
        assert column(table, "check")[row] == f"alertmanager {where}"
        assert column(table, "state")[row] == "firing"
        assert column(table, "severity")[row] == "WARN"
        assert not any("node_exporter" in s for s in column(table, "summary"))  # another host
        dead = column(table, "check").index("alertmanager 127.0.0.1:9")
        assert column(table, "severity")[dead] == "UNKNOWN"
        assert "127.0.0.1:9" in column(table, "summary")[dead]
        assert "alertmanager: 1 firing, 0 silenced" in str(table.border_subtitle)
        await pilot.press("S")
        audit = quiet / "audit.jsonl"
        await until(pilot, audit.exists)
        await until(pilot, lambda: audit.read_text().endswith("\n"))
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [r["outcome"] for r in records] == ["refused"], records
        assert not isinstance(app.screen, ConfirmFix)
    assert not [s for s in await am.silences() if s.state == "active"]

    writable = tmp_path / "writable"
    writable.mkdir()
    app = console(writable, prom_stack.alertmanager, read_only=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        table = await on_alert(pilot, screen)
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmFix))
        await pilot.press("y")
        for _ in range(120):  # the gate verifies, then the console reads the sources again
            if any(ALERT in s for s in column(table, "summary")) and "1 silenced" in str(
                table.border_subtitle
            ):
                break
            await pilot.pause(0.5)
        row = next(i for i, s in enumerate(column(table, "summary")) if ALERT in s)
        assert column(table, "state")[row] == "silenced"  # listed, not hidden
        assert "alertmanager: 0 firing, 1 silenced" in str(table.border_subtitle)

        table = await on_alert(pilot, screen)  # an incident from it: named in a note
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, OpenIncident))
        assert app.screen.query_one("#title", Input).value.startswith(f"testhost: {ALERT}: ")
        await pilot.press("enter")
        store = Store(writable / "state.db")
        await until(pilot, lambda: list_incidents(store))
        (incident,) = list_incidents(store)
        assert (incident.severity, incident.hosts) == ("P3", ("testhost",))  # a warning
        notes = store.read("SELECT text FROM incident_events WHERE kind = 'note'")
        assert [n["text"] for n in notes] == [
            f"opened from alertmanager {where}'s alert {ALERT}: a rule that always fires"
        ]
    active = [s for s in await am.silences() if s.state == "active"]
    assert len(active) == 1 and active[0].comment.startswith("fleetdeck ")
    records = [json.loads(line) for line in (writable / "audit.jsonl").read_text().splitlines()]
    assert records[-1]["outcome"] == "verified", records


async def test_the_fleet_screen_counts_alertmanager_alerts_of_its_host(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    """NodeExporterUp (critical) is about instance 127.0.0.1:PORT: counted on the host of
    that name, not on another; both sample this machine, so their own alerts count alike."""
    app = console(tmp_path, prom_stack.alertmanager, read_only=True)
    app.watches = (
        HostWatch("127.0.0.1", PsutilSampler(), app.config, 0.3),
        HostWatch("otherhost", PsutilSampler(), app.config, 0.3),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(FleetTable)
        await until(pilot, lambda: table.row_count == 2)
        names, alerts = column(table, "host"), column(table, "alerts")

        def critical(host: str) -> int:
            said = [w for w in alerts[names.index(host)].split() if w.endswith("C")]
            return int(said[0][:-1]) if said else 0

        def counted() -> bool:
            nonlocal names, alerts
            names, alerts = column(table, "host"), column(table, "alerts")
            if critical("127.0.0.1") != critical("otherhost") + 1:
                app.read_sources_now()
                return False
            return True

        await until(pilot, counted, lambda: (names, alerts))
