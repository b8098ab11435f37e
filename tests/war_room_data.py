"""A war room's worth of state, for the war-room snapshots, Pilot tests and `serve` tests.

`build_state` writes a real state database through the incidents API (alerts through the real
`AlertTracker` and `AlertRecorder`, an acknowledgement, a silence, two incidents) and an audit
log through `AuditLog`, all dated against one fixed clock, NOW, so the screen shows the same
ages every run. The API dates what it writes with the real clock, so the two incidents'
opening and acknowledgement times are then moved onto NOW's clock: the one write here that
is not the API's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.incidents.alertlog import AlertRecorder, acknowledge, stored_alerts
from fleetdeck.checks.incidents.config import IncidentSettings
from fleetdeck.checks.incidents.incidents import open_incident, set_status
from fleetdeck.checks.incidents.silences import add_silence
from fleetdeck.checks.incidents.store import Store, default_state_path
from fleetdeck.checks.model import Finding, Status
from fleetdeck.tui.app import FleetdeckApp, Settings

from recorded import START, recorded_fleet_app

NOW = START + 3600.0
"""The war room's clock: 2023-11-14 23:13:20 UTC, an hour after the recorded samples."""
MINUTE = 60.0

ALERTS = (
    # host, check, target, status, summary, minutes ago
    ("db-01", "disk.space", "/var/lib/postgresql", Status.CRIT, "97% used, full in 40m", 42),
    ("lb-02", "load", "lb-02", Status.WARN, "load 3.10 per core (warn 2.00)", 5),
    ("cache-03", "memory", "cache-03", Status.WARN, "memory 91% used (warn 85%)", 12),
    ("cache-03", "disk.inodes", "/srv", Status.WARN, "inodes 88% used", 30),
)


def _record(store: Store, host: str, rows: list[tuple[str, str, Status, str, float]]) -> None:
    recorder = AlertRecorder(store, host, IncidentSettings())
    tracker = AlertTracker(host, 0.0, hook=recorder)
    for at in sorted({since for *_, since in rows}):
        findings = [Finding(c, s, t, said) for c, t, s, said, since in rows if since <= at]
        tracker.update(findings, at)
        tracker.update(findings, at + 1)
    assert recorder.error is None, recorder.error


def build_state(audit: Path, state: Path | None = None, now: float = NOW) -> Path:
    """The state database (default: the isolated data dir's) and the audit log, dated against
    `now`; returns the database's path."""
    path = state or default_state_path()
    store = Store(path)
    by_host: dict[str, list[tuple[str, str, Status, str, float]]] = {}
    for host, check, target, status, said, ago in ALERTS:
        by_host.setdefault(host, []).append((check, target, status, said, now - ago * MINUTE))
    for host, rows in by_host.items():
        _record(store, host, rows)
    ids = {(a.host, a.check): a.id for a in stored_alerts(store, now=now)}
    acknowledge(store, ids[("lb-02", "load")], "bob", "looking at it")
    add_silence(store, "host=cache-03,target=/srv", 7200, "carol", "archive job",
                starts_at=now - 10 * MINUTE)  # fmt: skip
    disk = open_incident(store, "Checkout database out of disk", "P1", "alice",
                         alert_ids=[ids[("db-01", "disk.space")]], owner="alice")  # fmt: skip
    set_status(store, disk.id, "responding", "alice")
    slow = open_incident(store, "Cache evictions slow the shop", "P2", "bob", hosts=["cache-03"])
    with store.write() as db:  # onto NOW's clock (see the module's docstring)
        db.execute("UPDATE incidents SET opened_at = ?, acknowledged_at = ? WHERE id = ?",
                   (now - 40 * MINUTE, now - 36 * MINUTE, disk.id))  # fmt: skip
        db.execute("UPDATE incidents SET opened_at = ? WHERE id = ?", (now - 75 * MINUTE, slow.id))
    store.close()
    log = AuditLog(audit)
    for ago, who, host, title, outcome, message in (
        (21, "alice", "db-01", "remove old WAL archives", "failed", "failed: rm: denied"),
        (9, "bob", "cache-03", "restart redis", "refused", "read-only mode: nothing was run"),
        (3, "alice", "db-01", "gzip old logs in /var/log/postgresql", "verified",
         "verified: 78% used"),
    ):  # fmt: skip
        when = dt.datetime.fromtimestamp(now - ago * MINUTE, dt.UTC).isoformat()
        log.append({"time": when, "id": f"attempt-{ago}", "event": outcome, "outcome": outcome,
                    "operator": {"user": who}, "host": host, "title": title,
                    "message": message})  # fmt: skip
    return path


def war_room_app(audit: Path, *, read_only: bool = True) -> FleetdeckApp:
    """The recorded fleet (big-64, web-01 up; edge-9 down) on the war-room screen, its clock
    stopped at NOW, over the state `build_state` wrote."""
    fleet = recorded_fleet_app()
    settings = Settings(
        interval=3600, storage_every=0, read_only=read_only, audit_log=audit, war_room=True
    )
    return FleetdeckApp(settings, fleet.config, fleet.watches, clock=lambda: NOW)
