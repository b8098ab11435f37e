"""Snapshots of the Host screen on a recorded host (tests/data/web-01), as a person sees it.

The recorded host has trouble on purpose: / at 93 % (CRIT), the PostgreSQL volume out of
inodes (CRIT), memory at 82 % and CPU at 83 % (WARN), a mount with a space in its name and
an NFS mount with a stale handle (UNKNOWN). The wizards run on its recorded network and
storage state (tests/data/net, tests/data/storage); the Services pane, the service wizard
and the TLS findings on what the systemd lab and a TLS server answered (tests/data/services).
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from fleetdeck.widgets.services_pane import ServicesPane

from recorded import (
    open_recorded_wizard,
    recorded_app,
    recorded_fleet_app,
    recorded_wizard_app,
    until_fleet_shown,
    until_shown,
)


@pytest.fixture(autouse=True)
def _steps_take_no_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wizard step shows how long it took: on a loaded machine a recorded step took 0.3 s
    and the picture differed. The pictures are of what the steps found, not of the machine."""
    import fleetdeck.checks.wizards

    monkeypatch.setattr(fleetdeck.checks.wizards, "step_clock", lambda: 0.0)


def test_host_screen_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """80x24 over SSH: header with 0 firing / 6 pending; CPU, Memory and Load side by side
    with warn colours on CPU and memory; the Alerts table, CRIT first; Processes below it,
    gunicorn on top at 148 % CPU; footer with the keys; a scrollbar says there is more."""
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=until_shown)


def test_host_screen_at_200x60(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """A war-room sized terminal: tables side by side. Left: Alerts and a tall Processes
    table. Right: Disks (with '/srv/backup disk' and the stale NFS mount), Network (eth0
    about 1.2 MiB/s in, errors '3 +1'), and the Findings, worst first."""
    assert snap_compare(recorded_app(), terminal_size=(200, 60), run_before=until_shown)


async def _services_shown(pilot: Pilot[None]) -> None:
    """The samples, the Services pane's first reading and the sweep's findings are on the
    screen (the sweep's limits take a second: `r` samples again, so the alerts count its
    findings), and 8 has brought the pane into view with its cursor on the first unit."""
    await until_shown(pilot)
    screen = pilot.app.screen
    pane = screen.query_one(ServicesPane)
    for _ in range(200):
        if pane.good is not None and screen.host_watch.domain_findings.get("services"):  # type: ignore[attr-defined]
            break
        await pilot.pause(0.05)
    await pilot.press("r")  # a sample now: the alerts count the sweep's findings
    await pilot.pause(0.3)
    await pilot.press("8")
    await pilot.pause(0.2)


def test_services_pane_on_the_host_screen_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The recorded systemd lab at 80x24 after 8: the Services pane in view with its focus
    border, its head '72 units · 2 failed · 1 flapping · 1 of 2 important down', nginx
    (named, not found) first under the cursor, the failed fd-broken and fd-recover in red,
    fd-flappy (11 restarts) in yellow, fd-healthy important and running; the header counts
    the services findings among the 11 pending alerts; the footer offers the unit's log."""
    app = recorded_app(systemd=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_services_shown)


def test_services_pane_on_the_host_screen_at_160x50(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The same at 160x50: tables side by side, the Services pane under Processes (too
    narrow there for the descriptions), the services findings among the alerts and in the
    Findings table (the journal's 17 error lines WARN; the probes' listen queues UNKNOWN:
    the lab's root has no `ss`)."""
    app = recorded_app(systemd=True)
    assert snap_compare(app, terminal_size=(160, 50), run_before=_services_shown)


def test_service_wizard_clean_state_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The service wizard on the systemd lab's fd-recover, failed at boot on its stale lock
    (tests/data/services/wizard-commands.json): ✖ the unit, ✔ the units it requires, the
    port it needs and its mount, ▲ clean state, ✖ start; the clean-state step selected:
    WARN, `test ! -e` on the lock exits 1, and the settings' `rm -f` of the lock offered as
    fix [1] (disruptive), with its command."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="service")
        await pilot.press("down", "down", "down", "down")

    assert snap_compare(recorded_wizard_app(), terminal_size=(80, 24), run_before=run_before)


def test_service_wizard_at_160x45(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Wide: the unit step selected: fd-recover.service CRIT, failed (result: exit-code)
    21 s ago, then `systemctl status` and the journal's last lines as evidence, the unit's
    own 'stale lock /var/lib/fd-recover/stale.lock held' among them."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="service")

    assert snap_compare(recorded_wizard_app(), terminal_size=(160, 45), run_before=run_before)


def test_service_wizard_start_step_at_160x45(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The start step selected: the unit CRIT (failed), 'Restart fd-recover.service'
    offered as fix [1] with `systemctl restart fd-recover.service`, the status as evidence."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="service")
        await pilot.press(*["down"] * 5)

    assert snap_compare(recorded_wizard_app(), terminal_size=(160, 45), run_before=run_before)


def test_tls_findings_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The recorded host with three TLS endpoints in the settings, answered as a namespace
    host serving tests/tlscerts.py's certificates did (tests/data/services/tls-commands.json):
    after 5, the Findings table with the cursor on '127.0.0.1:8444: expires in 5.0 days'
    CRIT, and '127.0.0.1:8447: chain incomplete: no certificate for issuer' CRIT under it."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await pilot.press("5", "down", "down")
        await pilot.pause(0.2)

    assert snap_compare(recorded_app(tls=True), terminal_size=(80, 24), run_before=run_before)


def test_tls_findings_at_200x60(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The same at 200x60: both TLS CRITs pending among the Alerts with their check,
    tls.expiry; the Findings end with the valid endpoint, '127.0.0.1:8443: 90 days left' OK."""
    assert snap_compare(recorded_app(tls=True), terminal_size=(200, 60), run_before=until_shown)


def test_processes_sorted_by_memory(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """After pressing m at 120x40: processes ordered by MEM%, the postgres backend with
    1.2 GiB RSS second after gunicorn, and the subtitle 'top 13 of 13 by memory'."""
    assert snap_compare(
        recorded_app(), terminal_size=(120, 40), run_before=until_shown, press=["m", "_"]
    )


def test_a_terminal_too_small_says_so(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """At 50x12 the panes give way to one message: the size now and the size needed."""
    assert snap_compare(recorded_app(), terminal_size=(50, 12), run_before=until_shown)


def test_a_64_core_host_at_80x24_shows_every_core(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """64 cores do not fit as meters at 80x24: the CPU pane shows one block per core, from
    '·' (idle) to '█' (full), 60 of them in a repeating ramp and the last four full, and
    counts any that do not fit as '+N' instead of dropping them."""
    assert snap_compare(recorded_app("big-64"), terminal_size=(80, 24), run_before=until_shown)


def test_fleet_screen_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Three hosts sorted by name: big-64 and web-01 up with CPU, memory, worst disk
    (93 % on web-01's /), load per core and alert counts (2C 2W 1U on web-01); edge-9 down,
    its figures shown as '-', never as current; the summary line counts 2 up, 1 down."""
    assert snap_compare(recorded_fleet_app(), terminal_size=(80, 24), run_before=until_fleet_shown)


def test_fleet_screen_grouped_by_group(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """After g: headings '▸ prod (2)' over big-64 and web-01, and '▸ staging (1)' over edge-9."""
    assert snap_compare(
        recorded_fleet_app(),
        terminal_size=(100, 24),
        run_before=until_fleet_shown,
        press=["g", "_"],
    )


def test_network_wizard_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The network wizard on recorded state (target 10.0.0.5:8080, listen 8080): ✖ link
    (spare0 down), ✔ route (the target is this host; the dead default gateways it does not
    use are named, not graded), ✖ firewall, ✖ connect, ✔ loss and latency (pings to itself),
    ▲ listen (127.0.0.1 only), the rest ✔;
    the progress bar full; the firewall step selected: the iptables and ip6tables DROPs that
    decide the IPv4 and IPv6 flows from other hosts, and the loopback accept of its own."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot)
        await pilot.press("down", "down", "down", "down")

    assert snap_compare(recorded_wizard_app(), terminal_size=(80, 24), run_before=run_before)


def test_network_wizard_at_160x45(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Wide: the steps on the left, the selected step (link) on the right: spare0 CRIT with
    its fix 'bring spare0 up', lan1 CRIT for no carrier, then the link table as evidence."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot)

    assert snap_compare(recorded_wizard_app(), terminal_size=(160, 45), run_before=run_before)


def test_confirm_fix_modal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """f on the firewall step of a prod host: the ConfirmFix modal with host and tier, the
    finding (each flow to the port: the DROP that decides it, how many more are behind it),
    risk 'disruptive', the impact, the pinned rule, the exact command (the undo command
    below it, a scroll away), and a box asking for the host name (prod)."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot)
        await pilot.press("down", "down", "down", "down", "f")
        await pilot.pause(0.3)

    assert snap_compare(recorded_wizard_app(), terminal_size=(100, 30), run_before=run_before)


def test_storage_wizard_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The storage wizard on recorded state (tests/data/storage): ✖ space, read-only, mounts
    and RAID, ✔ SMART (not applicable: virtio disks only), ▲ I/O, usage, deleted, old logs,
    uncompressed; the list scrolls (13 steps). The read-only step selected: /srv/backup disk
    (/dev/vdc, xfs) CRIT, read-only though /etc/fstab mounts it read-write, with no kernel
    log errors for vdc, so a remount read-write is offered."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="storage")
        await pilot.press("down")

    assert snap_compare(recorded_wizard_app(), terminal_size=(80, 24), run_before=run_before)


def test_storage_wizard_at_160x45(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Wide: every step on the left (✔ SMART, ✖ backups last, ▲ journal and Docker); the space step
    on the right, worst first: / CRIT at 93 %, /var/lib/postgresql CRIT at 91 % of inodes,
    /mnt/nfs-archive UNKNOWN (stale handle), then the OK mounts; each graded mount says there
    are too few samples for a fill rate; then the statfs evidence for / and the inodes."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="storage")

    assert snap_compare(recorded_wizard_app(), terminal_size=(160, 45), run_before=run_before)


def test_storage_confirm_truncate_modal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """f on the deleted-files step: ConfirmFix (destructive, red) to truncate the deleted
    /var/log/app/access.log.1 that gunicorn (pid 1404) holds: finding, 3.2 GiB freed on
    /var/log/app, the pin (fd 7's target and the process start time 3000), the command
    truncate -s 0 /proc/1404/fd/7, and a box asking for the host name. Nothing is applied."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until_shown(pilot)
        await open_recorded_wizard(pilot, domain="storage")
        await pilot.press(*["down"] * 7, "f")
        await pilot.pause(0.3)

    assert snap_compare(recorded_wizard_app(), terminal_size=(100, 30), run_before=run_before)


async def _incident_asked(pilot: Pilot[None]) -> None:
    """1 puts the focus on the alert list (its cursor on the first, CRIT alert), i asks."""
    await until_shown(pilot)
    await pilot.press("1")
    await pilot.press("i")
    await pilot.pause(0.3)


def test_open_incident_modal_at_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """`i` on the recorded host's first alert: the modal over the Host screen, its title
    prefilled 'web-01: ' and the alert's headline, severity P2 (a CRIT alert), the hint
    'Enter opens it, Tab moves, Escape cancels'."""
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=_incident_asked)
