"""The war-room screen as people in the incident room see it: read from a real state database
and audit log, over a recorded fleet; rotating on its own, pausing on a key, and refusing
every fix whatever key is pressed (here and on a Host screen of a read-only console)."""

from __future__ import annotations

import io
import os
import shlex
import time
from pathlib import Path

from rich.console import Console
from test_tmux_console import Tmux
from textual.pilot import Pilot
from textual.widgets import Static
from war_room_data import NOW, build_state, war_room_app

from fleetdeck.checks.audit import read_audit
from fleetdeck.checks.incidents.board import BoardAlert, board_alerts
from fleetdeck.checks.incidents.store import STATE_ENV
from fleetdeck.tui.war_room import WarRoomScreen
from fleetdeck.tui.wizard_screen import WizardScreen
from fleetdeck.widgets.tiles import Tile
from fleetdeck.widgets.war_room import ActionBoard, AlertBoard, IncidentBand

from conftest import fleetdeck_bin
from recorded import (
    open_recorded_wizard,
    recorded_wizard_app,
    until_shown,
)


async def until_board(pilot: Pilot[None]) -> WarRoomScreen:
    """Wait until the fleet has sampled and the war room has read the state once."""
    screen = pilot.app.screen
    assert isinstance(screen, WarRoomScreen)
    for _ in range(200):
        sampled = all(w.polls >= 2 or w.error for w in screen.watches)
        if sampled and screen.board is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause(1.2)  # the next one-second tick shows the fleet's second sample
    return screen


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def cells(table: AlertBoard | ActionBoard) -> list[list[str]]:
    return [[cell.plain for cell in table.row(i)] for i in range(table.row_count)]


async def test_the_war_room_shows_incidents_alerts_fleet_and_actions(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    app = war_room_app(audit)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        banner = text_of(screen.query_one("#wr-banner", Static))
        assert "READ-ONLY: every fix is refused" in banner
        band = text_of(screen.query_one(IncidentBand))
        assert "P1   #1 Checkout database out of disk  ·  db-01" in band
        assert "acknowledged in 4m (target 15m)" in band
        assert "NOT ACKNOWLEDGED, 15m past the 1h target" in band  # the P2, 75 min unacked
        alerts = cells(screen.query_one(AlertBoard))
        assert [row[:6] for row in alerts] == [
            ["CRIT", "42m", "fleetdeck", "db-01", "disk.space /var/lib/postgresql", "firing"],
            ["WARN", "12m", "fleetdeck", "cache-03", "memory", "firing"],
            ["WARN", "5m", "fleetdeck", "lb-02", "load", "acknowledged"],
        ]  # the silenced /srv inodes alert is counted on its tile, not listed as firing
        silenced = screen.query_one(".wr-tiles .tile-silenced", Tile)
        assert "1 acknowledged" in str(silenced.query_one(".tile--caption", Static).render())
        assert silenced.query_one("Digits").value == "1"  # type: ignore[attr-defined]
        assert screen.query_one(".wr-tiles .tile-crit", Tile).has_class("-bad")
        down = screen.query_one(".wr-tiles .tile-down", Tile)
        assert down.has_class("-bad") and down.query_one("Digits").value == "1"  # type: ignore[attr-defined]
        assert screen.query_one(".wr-tiles .tile-up", Tile).query_one("Digits").value == "2"  # type: ignore[attr-defined]
        actions = cells(screen.query_one(ActionBoard))
        assert [row[:5] for row in actions] == [
            ["3m ago", "alice", "db-01", "gzip old logs in /var/log/postgresql", "verified"],
            ["9m ago", "bob", "cache-03", "restart redis", "refused"],
            ["21m ago", "alice", "db-01", "remove old WAL archives", "failed"],
        ]


async def test_the_views_rotate_on_the_timer_without_a_key(tmp_path: Path) -> None:
    """The clock moves on 20 s: the next view shows, with no key pressed; the tab line
    counts down to it in between."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    now = [NOW]
    app = war_room_app(audit)
    app.clock = lambda: now[0]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        tabs = screen.query_one("#wr-tabs", Static)
        assert screen.view == "alerts"
        assert "next: Fleet health in 20 s" in text_of(tabs)
        now[0] += 5
        screen.tick()
        assert "next: Fleet health in 15 s" in text_of(tabs)
        now[0] += 15
        for _ in range(100):  # the screen's own one-second timer turns it
            if screen.view == "fleet":
                break
            await pilot.pause(0.05)
        assert screen.view == "fleet"
        assert "next: Latest actions in 20 s" in text_of(tabs)
        assert screen.query_one("#wr-views").current == "fleet"  # type: ignore[attr-defined]


async def test_space_pauses_the_rotation_and_n_steps_through_views(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    now = [NOW]
    app = war_room_app(audit)
    app.clock = lambda: now[0]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        now[0] += 8
        await pilot.press("space")
        assert "rotation PAUSED (12 s left)" in text_of(screen.query_one("#wr-tabs", Static))
        now[0] += 600
        screen.tick()
        assert screen.view == "alerts"
        await pilot.press("n")
        assert screen.view == "fleet"
        await pilot.press("n", "n")
        assert screen.view == "alerts"
        await pilot.press("b")
        assert screen.view == "actions"
        await pilot.press("space")
        assert "next: Alerts in 20 s" in text_of(screen.query_one("#wr-tabs", Static))


async def test_every_fix_key_on_the_war_room_changes_nothing(tmp_path: Path) -> None:
    """Every key any screen binds to a fix or a wizard, pressed on the war room: the audit
    log holds the three attempts it had before and nothing else, and the war room is still
    the screen shown (no wizard opened under it)."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    before = audit.read_text()
    app = war_room_app(audit)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        assert app.gate.read_only
        for key in fix_keys() | {"w", "d", "b", "o", "enter", "l", "a"}:
            await pilot.press(key)
        await pilot.pause(0.2)
        assert isinstance(app.screen, WarRoomScreen) and app.screen is screen
    assert audit.read_text() == before


def fix_keys() -> set[str]:
    """The keys the Wizard screen binds to applying a fix (f, 2-9)."""
    keys = set()
    for binding in WizardScreen.BINDINGS:
        action = getattr(binding, "action", "")
        if action.startswith("apply_fix"):
            keys.update(getattr(binding, "key", "").split(","))
    return keys


async def test_a_read_only_console_refuses_every_fix_key_on_every_step(tmp_path: Path) -> None:
    """A console started as `serve` starts it (read-only) or under --war-room: the storage
    wizard opened on the recorded host, and every fix key pressed on every step. The audit
    log holds refusals only, at least one per step that offers a fix, and nothing ran."""
    audit = tmp_path / "audit.jsonl"
    app = recorded_wizard_app(read_only=True, audit_log=audit)
    async with app.run_test(size=(120, 40)) as pilot:
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="storage")
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        offering = 0
        for step in range(len(wizard.run.results)):
            if step:
                await pilot.press("down")
            assert wizard.selected == step
            findings = wizard.run.results[step].findings
            offering += any(f.fixes for f in findings)
            for key in sorted(fix_keys()):
                await pilot.press(key)
                await pilot.pause(0.05)
        await pilot.pause(0.3)
    records = read_audit(audit).records
    assert offering and len(records) >= offering
    assert {r.outcome for r in records} == {"refused"}
    assert all("read-only" in str(r.data.get("message")) for r in records)


async def test_an_unreadable_state_database_is_unknown_not_quiet(
    tmp_path: Path, monkeypatch: object
) -> None:
    """The state database is a directory: the band says UNKNOWN and why, the alert tiles
    show '?', never 0."""
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    broken = tmp_path / "state.db"
    broken.mkdir()
    monkeypatch.setenv(STATE_ENV, str(broken))
    audit = tmp_path / "audit.jsonl"
    app = war_room_app(audit)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        band = text_of(screen.query_one(IncidentBand))
        assert band.startswith("UNKNOWN: the state database cannot be read:")
        assert str(broken) in band
        crit = screen.query_one(".wr-tiles .tile-crit", Tile)
        assert crit.query_one("Digits").value == "?"  # type: ignore[attr-defined]
        assert crit.has_class("-warn")


async def test_another_alert_source_joins_the_board_and_a_broken_one_is_shown(
    tmp_path: Path,
) -> None:
    """Alertmanager's alerts (here a source handing records) sit beside fleetdeck's, by
    severity and age; a source that raises is one UNKNOWN line naming it."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)

    async def alertmanager() -> list[BoardAlert]:
        return [BoardAlert("alertmanager", "api-7", "HighErrorRate", "CRIT", "firing",
                           NOW - 3600, "5xx above 5%")]  # fmt: skip

    async def broken() -> list[BoardAlert]:
        raise ConnectionError("connection refused")

    app = war_room_app(audit)
    async with app.run_test(size=(160, 40)) as pilot:
        await until_board(pilot)
        screen = WarRoomScreen(
            app.watches,
            app.config.incidents,
            audit,
            read_only=True,
            sources=[("alertmanager", alertmanager), ("prometheus", broken)],
            clock=lambda: NOW,
        )
        await app.push_screen(screen)
        for _ in range(200):
            if screen.board is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        rows = cells(screen.query_one(AlertBoard))
    assert [r[2:5] for r in rows[:2]] == [
        ["alertmanager", "api-7", "HighErrorRate"],
        ["fleetdeck", "db-01", "disk.space /var/lib/postgresql"],
    ]
    assert rows[-1][0] == "UNKNOWN" and rows[-1][2] == "prometheus"
    assert rows[-1][6] == "ConnectionError: connection refused"


async def test_board_alerts_order_most_severe_then_oldest() -> None:
    def alert(severity: str, since: float) -> BoardAlert:
        return BoardAlert("x", "h", f"{severity} {since:g}", severity, "firing", since, "")

    async def source() -> list[BoardAlert]:
        return [alert("WARN", 1), alert("CRIT", 5), alert("CRIT", 2)]

    merged = await board_alerts([], [("x", source)], 10)
    assert [a.name for a in merged] == ["CRIT 2", "CRIT 5", "WARN 1"]


def test_fleetdeck_w_in_a_real_terminal_is_the_read_only_war_room(tmp_path: Path) -> None:
    """`fleetdeck -w` in tmux at 120x40 over this test's state: the banner says read-only,
    the P1 incident shows; f does nothing; q quits."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit, now=time.time())
    before = audit.read_text()
    tmux = Tmux(f"fleetdeck-warroom-{os.getpid()}")
    env = " ".join(
        f"{name}={shlex.quote(os.environ[name])}"
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "TZ")
    )
    command = (
        f"TERM=xterm-256color {env} {fleetdeck_bin()} -w --audit-log {shlex.quote(str(audit))}"
    )
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", command)
    try:
        shown = tmux.wait_for(lambda s: "READ-ONLY" in s and "Checkout database" in s, 30)
        assert "FLEETDECK WAR ROOM" in shown.splitlines()[0]
        assert "P1   #1 Checkout database out of disk" in shown
        tmux("send-keys", "-t", "console", "f")
        tmux("send-keys", "-t", "console", "q")
        tmux.wait_for(lambda s: "WAR ROOM" not in s, 15)
    finally:
        tmux("kill-server")
    assert audit.read_text() == before


async def test_a_quiet_fleet_is_quiet(tmp_path: Path) -> None:
    """Nothing recorded yet (a fresh state database, no audit log): 'No open incident', CRIT
    and WARN 0 in green, no alert and no action listed; the fleet still counts its hosts."""
    app = war_room_app(tmp_path / "audit.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await until_board(pilot)
        assert screen.board is not None and screen.board.error is None
        assert text_of(screen.query_one(IncidentBand)).strip() == "No open incident"
        for name in ("crit", "warn"):
            tile = screen.query_one(f".wr-tiles .tile-{name}", Tile)
            assert tile.query_one("Digits").value == "0"  # type: ignore[attr-defined]
            assert tile.has_class("-good")
        assert screen.query_one(AlertBoard).row_count == 0
        assert screen.query_one(ActionBoard).row_count == 0
        assert screen.query_one(".wr-tiles .tile-up", Tile).query_one("Digits").value == "2"  # type: ignore[attr-defined]
