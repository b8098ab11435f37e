"""What the war-room screen and `fleetdeck serve` read, in one call each: the open incidents
with their time against the target, the alerts that fire by severity and age, and the latest
actions from the audit log. Read-only; a screen refreshes by calling again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleetdeck.checks.audit import AuditRecord, read_audit
from fleetdeck.checks.incidents.alertlog import StoredAlert, counts, stored_alerts
from fleetdeck.checks.incidents.config import IncidentSettings, Target
from fleetdeck.checks.incidents.incidents import Incident, list_incidents
from fleetdeck.checks.incidents.store import Store


@dataclass(frozen=True, slots=True)
class OpenIncident:
    incident: Incident
    age: float
    """Seconds since it opened."""
    target: Target
    acknowledge_late: bool
    """Not acknowledged and past the acknowledge target."""
    resolve_left: float
    """Seconds left before the resolve target (negative: late by that much)."""


@dataclass(frozen=True, slots=True)
class Overview:
    incidents: list[OpenIncident]
    firing: list[StoredAlert]
    """Firing, flapping, acknowledged and stale alerts (firing when last seen, but nobody
    evaluates their host now): the most severe, then the oldest, first."""
    counts: dict[str, int]
    """Alerts in each shown state, silenced ones included ("3 silenced")."""
    actions: list[AuditRecord]
    """The latest fix attempts, newest first."""
    audit_warnings: list[str]


def open_incidents(
    store: Store, targets: Mapping[str, Target], now: float | None = None
) -> list[OpenIncident]:
    now = time.time() if now is None else now
    found = []
    for incident in list_incidents(store, open_only=True):
        target = targets[incident.severity]
        age = now - incident.opened_at
        late = incident.acknowledged_at is None and age > target.acknowledge
        found.append(OpenIncident(incident, age, target, late, target.resolve - age))
    return found


def overview(
    store: Store,
    settings: IncidentSettings,
    audit_path: Path,
    *,
    actions: int = 10,
    now: float | None = None,
) -> Overview:
    now = time.time() if now is None else now
    alerts = stored_alerts(store, flap_count=settings.flap_count, now=now)
    firing = [a for a in alerts if a.shown in ("firing", "flapping", "acknowledged", "stale")]
    rank = {"CRIT": 0, "WARN": 1, "UNKNOWN": 2}
    firing.sort(key=lambda a: (rank.get(a.severity, 3), a.active_since))
    records: list[AuditRecord] = []
    warnings: list[str] = []
    if audit_path.exists():
        reading = read_audit(audit_path)
        records = list(reversed(reading.records))[:actions]
        warnings = reading.warnings()
    return Overview(
        open_incidents(store, settings.targets, now), firing, counts(alerts), records, warnings
    )
