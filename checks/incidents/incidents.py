"""Incidents (runbook I1, I2): a title, a severity P1-P4 with response targets, the hosts and
alerts covered, an owner, and a status that follows I2's steps; every change is an event with
who and when, which the timeline and the report read back.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.incidents.config import SEVERITIES
from fleetdeck.checks.incidents.store import Store


class IncidentStatus(enum.StrEnum):
    """Runbook I2's steps, in order. `opened` is before anyone acknowledged."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    ASSESSING = "assessing"
    RESPONDING = "responding"
    COMMUNICATING = "communicating"
    RESOLVED = "resolved"
    REVIEWED = "reviewed"


class IncidentError(Exception):
    """A change that cannot be made: no such incident, an unknown severity or status."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    severity: str
    status: IncidentStatus
    owner: str | None
    opened_at: float
    opened_by: str
    acknowledged_at: float | None
    resolved_at: float | None
    reviewed_at: float | None
    impact: str
    hosts: tuple[str, ...]
    alert_ids: tuple[int, ...]

    @property
    def is_open(self) -> bool:
        return self.status not in (IncidentStatus.RESOLVED, IncidentStatus.REVIEWED)


def _severity(severity: str) -> str:
    upper = severity.upper()
    if upper not in SEVERITIES:
        raise IncidentError(f"unknown severity {severity!r} (known: {', '.join(SEVERITIES)})")
    return upper


def _event(
    db: sqlite3.Connection, incident: int, at: float, who: str, kind: str, text: str
) -> None:
    db.execute(
        "INSERT INTO incident_events (incident_id, at, who, kind, text) VALUES (?, ?, ?, ?, ?)",
        (incident, at, who, kind, text),
    )


def open_incident(
    store: Store,
    title: str,
    severity: str,
    who: str,
    *,
    hosts: Sequence[str] = (),
    alert_ids: Sequence[int] = (),
    owner: str | None = None,
    impact: str = "",
) -> Incident:
    """Open an incident; the hosts of the alerts it covers are covered too."""
    if not title.strip():
        raise IncidentError("an incident needs a title")
    level = _severity(severity)
    now = time.time()
    with store.write() as db:
        covered = set(hosts)
        for alert_id in alert_ids:
            row = db.execute("SELECT host FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise IncidentError(f"no alert {alert_id} in {store.path}")
            covered.add(row["host"])
        cursor = db.execute(
            "INSERT INTO incidents (title, severity, status, owner, opened_at, opened_by, impact)"
            " VALUES (?, ?, 'opened', ?, ?, ?, ?)",
            (title.strip(), level, owner, now, who, impact),
        )
        number = cursor.lastrowid
        assert number is not None
        db.executemany(
            "INSERT INTO incident_hosts (incident_id, host) VALUES (?, ?)",
            [(number, h) for h in sorted(covered)],
        )
        db.executemany(
            "INSERT INTO incident_alerts (incident_id, alert_id) VALUES (?, ?)",
            [(number, a) for a in dict.fromkeys(alert_ids)],
        )
        _event(db, number, now, who, "opened", f"opened as {level}: {title.strip()}")
    return get_incident(store, number)


def get_incident(store: Store, number: int) -> Incident:
    rows = store.read("SELECT * FROM incidents WHERE id = ?", (number,))
    if not rows:
        raise IncidentError(f"no incident {number} in {store.path}")
    return _incident(store, rows[0])


def _incident(store: Store, row: sqlite3.Row) -> Incident:
    number = row["id"]
    hosts = store.read(
        "SELECT host FROM incident_hosts WHERE incident_id = ? ORDER BY host", (number,)
    )
    alerts = store.read(
        "SELECT alert_id FROM incident_alerts WHERE incident_id = ? ORDER BY alert_id", (number,)
    )
    return Incident(
        number,
        row["title"],
        row["severity"],
        IncidentStatus(row["status"]),
        row["owner"],
        row["opened_at"],
        row["opened_by"],
        row["acknowledged_at"],
        row["resolved_at"],
        row["reviewed_at"],
        row["impact"],
        tuple(r["host"] for r in hosts),
        tuple(r["alert_id"] for r in alerts),
    )


def list_incidents(store: Store, *, open_only: bool = False) -> list[Incident]:
    """Incidents, open ones first, the most severe and the oldest first among them."""
    rows = store.read("SELECT * FROM incidents ORDER BY id")
    found = [_incident(store, row) for row in rows]
    if open_only:
        found = [i for i in found if i.is_open]
    return sorted(found, key=lambda i: (not i.is_open, i.severity, i.opened_at))


def add_note(store: Store, number: int, who: str, text: str, *, kind: str = "note") -> None:
    """A note typed by an operator (`kind` "followup" for the report's follow-ups)."""
    if not text.strip():
        raise IncidentError("an empty note says nothing")
    with store.write() as db:
        _require(db, store, number)
        _event(db, number, time.time(), who, kind, text.strip())


def set_status(store: Store, number: int, status: str, who: str, note: str = "") -> Incident:
    """Move the incident to an I2 step; the first step past `opened` is its acknowledgement,
    `resolved` its resolution (a later step back to work clears it)."""
    try:
        new = IncidentStatus(status.lower())
    except ValueError:
        known = ", ".join(s.value for s in IncidentStatus if s is not IncidentStatus.OPENED)
        raise IncidentError(f"unknown status {status!r} (known: {known})") from None
    now = time.time()
    with store.write() as db:
        row = _require(db, store, number)
        old = IncidentStatus(row["status"])
        acknowledged = row["acknowledged_at"]
        if acknowledged is None and new is not IncidentStatus.OPENED:
            acknowledged = now
        resolved = row["resolved_at"]
        if new is IncidentStatus.RESOLVED or (new is IncidentStatus.REVIEWED and resolved is None):
            resolved = resolved if old is IncidentStatus.RESOLVED else now
        elif new is not IncidentStatus.REVIEWED:
            resolved = None  # back to work: it was not resolved after all
        reviewed = now if new is IncidentStatus.REVIEWED else None
        db.execute(
            "UPDATE incidents SET status = ?, acknowledged_at = ?, resolved_at = ?,"
            " reviewed_at = ? WHERE id = ?",
            (new.value, acknowledged, resolved, reviewed, number),
        )
        said = f"status {old.value} -> {new.value}" + (f": {note.strip()}" if note.strip() else "")
        _event(db, number, now, who, "status", said)
    return get_incident(store, number)


def update_incident(
    store: Store,
    number: int,
    who: str,
    *,
    severity: str | None = None,
    owner: str | None = None,
    impact: str | None = None,
    hosts: Sequence[str] = (),
    alert_ids: Sequence[int] = (),
) -> Incident:
    """Change what the incident says about itself; each change is an event."""
    now = time.time()
    with store.write() as db:
        row = _require(db, store, number)
        if severity is not None and _severity(severity) != row["severity"]:
            level = _severity(severity)
            db.execute("UPDATE incidents SET severity = ? WHERE id = ?", (level, number))
            _event(db, number, now, who, "severity", f"severity {row['severity']} -> {level}")
        if owner is not None and owner != row["owner"]:
            db.execute("UPDATE incidents SET owner = ? WHERE id = ?", (owner, number))
            _event(db, number, now, who, "owner", f"owner: {owner}")
        if impact is not None:
            db.execute("UPDATE incidents SET impact = ? WHERE id = ?", (impact, number))
            _event(db, number, now, who, "impact", f"impact: {impact}")
        for host in hosts:
            db.execute("INSERT OR IGNORE INTO incident_hosts VALUES (?, ?)", (number, host))
        for alert_id in alert_ids:
            found = db.execute("SELECT host FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if found is None:
                raise IncidentError(f"no alert {alert_id} in {store.path}")
            db.execute("INSERT OR IGNORE INTO incident_alerts VALUES (?, ?)", (number, alert_id))
            db.execute("INSERT OR IGNORE INTO incident_hosts VALUES (?, ?)", (number, found[0]))
        if hosts or alert_ids:
            _event(
                db,
                number,
                now,
                who,
                "scope",
                "covers " + ", ".join([*hosts, *(f"alert {a}" for a in alert_ids)]),
            )
    return get_incident(store, number)


def _require(db: sqlite3.Connection, store: Store, number: int) -> sqlite3.Row:
    row = db.execute("SELECT * FROM incidents WHERE id = ?", (number,)).fetchone()
    if row is None:
        raise IncidentError(f"no incident {number} in {store.path}")
    return row
