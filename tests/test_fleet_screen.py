"""The Fleet screen on real hosts: a row each, a dead host down with its reason while the
others keep updating, filter with /, Enter into a host and Escape back."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.ssh import SSHOptions
from fleetdeck.tui.app import Settings, make_fleet_app
from fleetdeck.tui.fleet_screen import FleetScreen
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets import HostHeader
from fleetdeck.widgets.fleet_table import FleetTable

from sshd import NetnsHost, NetnsLab, SshKeys, write_known_hosts


async def _until(pilot: Pilot[None], condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


def _state(table: FleetTable, name: str) -> str:
    return str(table.row(table.row_keys.index(name))[1])


async def test_fleet_rows_a_dead_host_filter_and_open_a_host(
    netns_hosts,
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    up: list[NetnsHost] = netns_hosts(2)
    dead = netns_lab.add_host()
    try:
        hosts = [*up, dead]
        specs = tuple(
            HostSpec(h.name, h.address, h.port, "root", identity_files=(str(ssh_keys.client_key),),
                     tags=("db",) if h is dead else ("web",))
            for h in hosts
        )  # fmt: skip
        known = tmp_path / "known_hosts"
        write_known_hosts(known, *hosts)
        options = SSHOptions(known_hosts=known, agent=False, connect_timeout=2)
        app = make_fleet_app(Settings(interval=0.5), Config(), Inventory(specs), specs, options)
        async with app.run_test(size=(100, 30)) as pilot:
            assert isinstance(app.screen, FleetScreen)
            table = app.screen.query_one(FleetTable)
            await _until(pilot, lambda: table.row_count == 3)
            await _until(pilot, lambda: all(_state(table, h.name) == "up" for h in hosts))
            dead.stop()
            await _until(pilot, lambda: _state(table, dead.name).startswith("down"))
            watches = app.screen.watches
            before = {h.name: watches[h.name].polls for h in up}
            await pilot.pause(1.5)
            assert all(watches[h.name].polls > before[h.name] for h in up)  # others go on
            assert all(_state(table, h.name) == "up" for h in up)
            assert str(table.row(table.row_keys.index(dead.name))[2]) == "-"  # no stale figure

            await pilot.press("slash", *"db", "enter")
            await _until(pilot, lambda: table.row_keys == [dead.name])
            await pilot.press("escape")
            await _until(pilot, lambda: table.row_count == 3)

            table.move_cursor(table.row_keys.index(up[0].name))
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, HostScreen))
            host_screen = app.screen
            header = host_screen.query_one(HostHeader)
            await _until(pilot, lambda: header.info is not None)
            assert header.info is not None and header.info.hostname == up[0].name
            await pilot.press("escape")
            assert app.screen is not host_screen and isinstance(app.screen, FleetScreen)

            dead.start()  # it comes back by itself
            await _until(pilot, lambda: _state(table, dead.name) == "up", timeout=30)
    finally:
        netns_lab.remove_host(dead)


async def test_a_thousand_unreachable_hosts_neither_freeze_the_screen_nor_run_out_of_fds(
    tmp_path: Path,
) -> None:
    """Port 9 on loopback refuses at once: a thousand hosts all failing and backing off.
    The table lists them all, keys still act within a second, and the connection attempts
    in flight stay under the handshake bound, not one file descriptor per host."""
    import os
    import time

    specs = tuple(HostSpec(f"gone-{i:04}", "127.0.0.1", 9, "root") for i in range(1000))
    options = SSHOptions(known_hosts=tmp_path / "known_hosts", agent=False, connect_timeout=2)
    app = make_fleet_app(Settings(interval=1.0), Config(), Inventory(specs), specs, options)
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        await _until(pilot, lambda: table.row_count == 1000)
        await _until(
            pilot, lambda: all(_state(table, s.name) == "down: refused" for s in specs[:50])
        )
        most_fds = 0
        for _ in range(20):
            most_fds = max(most_fds, len(os.listdir("/proc/self/fd")))
            await pilot.pause(0.1)
        assert most_fds < 300
        screen = app.screen
        sorted_at: list[float] = []
        screen.watch(screen, "sort_by", lambda _: sorted_at.append(time.monotonic()), init=False)
        started = time.monotonic()
        await pilot.press("s")
        await _until(pilot, lambda: bool(sorted_at), timeout=5.0)
        assert screen.sort_by == "state"
        assert sorted_at[0] - started < 1.0  # the key acted within a second
        summary = str(app.screen.query_one("#fleet-summary").render())
        assert "1000 hosts · 0 up" in summary  # the rest down or between two attempts
        states = {_state(table, spec.name) for spec in specs}
        assert states <= {"down: refused", "connecting"}  # between attempts, or backing off
