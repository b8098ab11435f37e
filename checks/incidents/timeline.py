"""An incident's timeline (runbook I4), built from what was recorded, never typed twice:
alert transitions and findings that changed (the state database), every fix attempt on the
incident's hosts (the audit log: who, what, outcome, undo), notes and status changes.

The window is from `LEAD` before the incident opened (the alerts that led to it) to its
resolution, or now while it is open.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleetdeck.checks.audit import AuditRecord, read_audit
from fleetdeck.checks.incidents.incidents import Incident
from fleetdeck.checks.incidents.store import Store

LEAD = 3600.0
"""Seconds before the opening that the timeline looks back for what led to the incident."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline."""

    at: float
    kind: str
    """alert, finding, action, note, followup, status, opened, severity, owner, impact, scope."""
    who: str
    text: str
    details: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "at": _iso(self.at),
            "kind": self.kind,
            "who": self.who,
            "text": self.text,
            **({"details": self.details} if self.details else {}),
        }


@dataclass(frozen=True, slots=True)
class Action:
    """A fix attempt from the audit log, with its outcome and how to put it back."""

    at: float
    id: str
    who: str
    host: str
    title: str
    commands: tuple[str, ...]
    outcome: str
    message: str
    undo: tuple[str, ...]

    @property
    def said(self) -> str:
        """The outcome and the gate's message, without saying the outcome twice."""
        if self.message.startswith(f"{self.outcome}: "):
            return self.message
        return f"{self.outcome}: {self.message}" if self.message else self.outcome

    def to_json(self) -> dict[str, object]:
        return {
            "at": _iso(self.at),
            "id": self.id,
            "who": self.who,
            "host": self.host,
            "title": self.title,
            "commands": list(self.commands),
            "outcome": self.outcome,
            "message": self.message,
            "undo": list(self.undo),
        }


@dataclass(slots=True)
class Timeline:
    entries: list[Entry]
    actions: list[Action]
    warnings: list[str]
    """What could not be read (damaged audit lines, a missing log): said, never dropped."""


def _iso(at: float) -> str:
    return (
        dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def window(incident: Incident, now: float | None = None) -> tuple[float, float]:
    end = incident.resolved_at if incident.resolved_at is not None else (now or time.time())
    return incident.opened_at - LEAD, max(end, incident.reviewed_at or end)


def build_timeline(
    store: Store, incident: Incident, audit_path: Path, now: float | None = None
) -> Timeline:
    start, end = window(incident, now)
    entries: list[Entry] = []
    warnings: list[str] = []
    hosts = set(incident.hosts)
    ids = set(incident.alert_ids)
    rows = store.read(
        "SELECT t.*, a.host, a.check_id, a.target FROM transitions t"
        " JOIN alerts a ON a.id = t.alert_id WHERE t.at BETWEEN ? AND ? ORDER BY t.at, t.id",
        (start, end),
    )
    for row in rows:
        if row["host"] not in hosts and row["alert_id"] not in ids:
            continue
        what = f"{row['host']} {row['check_id']}"
        summary = str(row["summary"])
        if row["target"] not in summary:  # most summaries begin with their target
            summary = f"{row['target']}: {summary}"
        details: dict[str, object] = {
            "alert": row["alert_id"],
            "target": row["target"],
            "severity": row["severity"],
        }
        if row["state"] == "changed":
            text = f"{what} now {row['severity']}: {summary}"
            entries.append(Entry(row["at"], "finding", "fleetdeck", text, details))
        elif row["state"] == "resolved":  # its summary is the last bad one: not said again
            text = f"{what} {row['target']} resolved (was {row['severity']})"
            entries.append(Entry(row["at"], "alert", "fleetdeck", text, details))
        else:
            text = f"{what} {row['state']} ({row['severity']}): {summary}"
            entries.append(Entry(row["at"], "alert", "fleetdeck", text, details))
    acks = store.read(
        "SELECT k.*, a.host, a.check_id, a.target FROM acks k JOIN alerts a ON a.id = k.alert_id"
        " WHERE k.at BETWEEN ? AND ? ORDER BY k.at",
        (start, end),
    )
    for row in acks:
        if row["host"] in hosts or row["alert_id"] in ids:
            note = f": {row['note']}" if row["note"] else ""
            entries.append(
                Entry(
                    row["at"],
                    "ack",
                    row["who"],
                    f"acknowledged alert {row['alert_id']} ({row['host']} {row['check_id']}){note}",
                )
            )
    for row in store.read(
        "SELECT * FROM incident_events WHERE incident_id = ? ORDER BY at, id", (incident.id,)
    ):
        entries.append(Entry(row["at"], row["kind"], row["who"], row["text"]))
    actions: list[Action] = []
    if audit_path.exists():
        since = dt.datetime.fromtimestamp(start, dt.UTC)
        reading = read_audit(audit_path, since=since)
        warnings += [f"{audit_path}: {w}" for w in reading.warnings()]
        for record in reading.records:
            at = record.time.timestamp()
            if record.data.get("host") not in hosts or not start <= at <= end:
                continue
            action = _action(record, at)
            actions.append(action)
            entries.append(
                Entry(
                    at,
                    "action",
                    action.who,
                    f"{action.host}: {action.title}: {action.said}",
                    {"audit_id": action.id},
                )
            )
    else:
        warnings.append(f"{audit_path}: no audit log, so no fix attempts are listed")
    entries.sort(key=lambda e: e.at)
    return Timeline(entries, actions, warnings)


def _action(record: AuditRecord, at: float) -> Action:
    data = record.data
    return Action(
        at,
        record.id,
        record.operator,
        str(data.get("host", "?")),
        str(data.get("title") or data.get("fix") or "?"),
        tuple(str(c) for c in data.get("commands", [])),
        record.outcome,
        str(data.get("message", "")),
        tuple(str(u) for u in data.get("undo", [])),
    )
