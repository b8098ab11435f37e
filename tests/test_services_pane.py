"""The Services pane: its reader on the systemd lab over SSH (and on a host without systemd),
and its widget as a person sees it at 80x24 and 160x50."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App, ComposeResult

from fleetdeck.checks.model import Status
from fleetdeck.checks.services.pane import ServicesSnapshot, UnitLine, read_services
from fleetdeck.hosts.ssh import SSHShell
from fleetdeck.widgets.services_pane import ServicesPane

from sshd import NetnsHost, SshKeys, ssh_shell


async def test_reader_lists_failed_and_important_units_worst_first(lab_shell: SSHShell) -> None:
    snap = await read_services("sysd", lab_shell, {"units": "fd-healthy\nfd-missing\n"})
    assert snap.error is None and not snap.absent
    names = [line.name for line in snap.lines]
    assert "fd-broken.service" in names
    assert names.index("fd-broken.service") < names.index("fd-healthy.service")
    assert snap.lines[-1].name == "fd-healthy.service" and snap.lines[-1].status is Status.OK
    missing = next(line for line in snap.lines if line.name == "fd-missing.service")
    assert missing.status is Status.CRIT and missing.important
    assert snap.failed >= 1 and snap.important == 2 and snap.important_down == 1
    assert "ssh.service" not in names  # healthy and not named: counted, not listed
    assert snap.listed > len(snap.lines)


async def test_reader_on_a_host_without_systemd_says_absent(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    (host,) = netns_hosts(1)
    async with ssh_shell(host, ssh_keys, tmp_path / "known_hosts", host.name) as shell:
        snap = await read_services(host.name, shell, {"units": "nginx\n"})
    assert snap.absent and snap.error is None and not snap.lines


def recorded_snapshot() -> ServicesSnapshot:
    def unit(*fields: object) -> UnitLine:
        """name, active, sub, restarts, since, status, trouble, important, description"""
        name, active, sub, restarts, since, status, trouble, important, description = fields
        return UnitLine(
            str(name), str(active), str(sub), int(restarts), float(since),  # type: ignore[call-overload]
            str(description), bool(important), Status(status), str(trouble),
        )  # fmt: skip

    lines = (
        unit("postgresql@15-main.service", "failed", "failed", 0, 3720, Status.CRIT,
             "failed (result: exit-code), 1h 2m ago", True, "PostgreSQL Cluster 15-main"),
        unit("fd-broken.service", "failed", "failed", 0, 95, Status.CRIT,
             "failed (result: exit-code), 1m 35s ago", False, "a service that fails at start"),
        unit("app-worker.service", "activating", "auto-restart", 48, 1, Status.WARN,
             "flapping: restarted 48 times, last start 1s ago", False, "queue worker"),
        unit("nginx.service", "active", "running", 0, 86400 * 3, Status.OK, "", True,
             "A high performance web server and a reverse proxy server"),
        unit("evil\\x1b[31m.service", "active", "running", 0, 60, Status.OK, "", True, ""),
    )  # fmt: skip
    return ServicesSnapshot(
        "web-01", time.monotonic(), time.time(), lines, listed=214, failed=2, flapping=1,
        important_down=1, important=3,
    )  # fmt: skip


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ServicesPane(id="services")

    def on_mount(self) -> None:
        self.query_one(ServicesPane).show(recorded_snapshot())


def test_services_pane_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Head: 214 units, 2 failed, 1 flapping, 1 of 3 important down; the failed important
    postgresql first in red, fd-broken, the flapping worker in yellow, then the important
    units that run; the escape in a unit's name shown as \\x1b, no description at 80."""
    assert snap_compare(PaneApp(), terminal_size=(80, 24))


def test_services_pane_at_160x50(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The same at 160 columns, each line ending with the unit's description."""
    assert snap_compare(PaneApp(), terminal_size=(160, 50))
