"""Alert state that lasts: the tracker's transitions written to the store, acks, and the list
every console and command reads back.

`AlertRecorder` is the hook a `HostWatch`'s tracker calls after each evaluation: it gives each
alert its rule's `for`, and writes what changed (new, firing, resolved, a severity or summary
that changed) in one transaction, and nothing when nothing changed. Flap damping: an alert that
comes back within `flap_window` of resolving continues its episode (its ack stands, no new
page), and after `flap_count` returns it is shown as *flapping*.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fleetdeck.checks.alerts import Alert, AlertState, Transition
from fleetdeck.checks.incidents.config import RUNBOOK_WIZARDS, IncidentSettings, Rule
from fleetdeck.checks.incidents.rules import labels_of, rule_for
from fleetdeck.checks.incidents.silences import Silence, SilenceIndex, silences
from fleetdeck.checks.incidents.store import Store, StoreError, shared_store, state_path

log = logging.getLogger(__name__)

SHOWN_STATES = ("firing", "flapping", "acknowledged", "pending", "stale", "silenced", "resolved")
"""What the list says of an alert, most urgent first."""
HEARTBEAT = 60.0
"""Seconds between the notes a recorder writes that its host's alerts are still evaluated,
when nothing changes."""
STALE_AFTER = 3 * HEARTBEAT
"""An alert whose host nobody has evaluated for this long is shown as *stale*: the console
that raised it is gone, and whether it still holds is unknown."""


class AlertRecorder:
    """One host's alerts written to the store; implements `checks.alerts.AlertHook`."""

    def __init__(
        self, store: Store, host: str, settings: IncidentSettings, groups: Sequence[str] = ()
    ) -> None:
        self.store = store
        self.host = host
        self.settings = settings
        self.groups = tuple(groups)
        self.error: str | None = None
        """Why the last write failed (the store is shared and may be busy or broken)."""
        self._seen: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._beat = float("-inf")

    def rule(self, check: str, target: str) -> Rule | None:
        """The rule covering this host's alert (its `for`, its runbook), if any."""
        return rule_for(self.settings.rules, self.host, self.groups, check, target)

    def for_seconds(self, check: str, target: str) -> float | None:
        rule = self.rule(check, target)
        return rule.for_seconds if rule else None

    def record(self, transitions: Sequence[Transition], alerts: Sequence[Alert]) -> None:
        changed = [a for a in alerts if self._seen.get(a.key) not in (None, _mark(a))]
        now = time.time()
        beat = now - self._beat >= HEARTBEAT
        if not transitions and not changed and not beat:
            return
        try:
            with self.store.write() as db:
                db.execute(
                    "INSERT INTO evaluations (host, at) VALUES (?, ?)"
                    " ON CONFLICT (host) DO UPDATE SET at = excluded.at",
                    (self.host, now),
                )
                for transition in transitions:
                    self._transition(db, transition)
                for alert in changed:
                    if not any(t.alert.key == alert.key for t in transitions):
                        self._changed(db, alert)
        except (StoreError, sqlite3.Error) as error:
            self.error = str(error)
            log.warning("alert state not recorded: %s", error)
            return
        self.error = None
        self._seen = {a.key: _mark(a) for a in alerts}
        self._beat = now

    def marks(self) -> dict[tuple[str, str, str], str]:
        """What each of this host's alerts is shown as (acknowledged, silenced, flapping...),
        by alert key, for the console's alert list; empty if the store cannot be read."""
        try:
            found = stored_alerts(self.store, flap_count=self.settings.flap_count, host=self.host)
        except StoreError as error:
            self.error = str(error)
            return {}
        return {a.key: a.shown for a in found}

    def _transition(self, db: sqlite3.Connection, transition: Transition) -> None:
        a = transition.alert
        rule = rule_for(self.settings.rules, a.host, self.groups, a.check, a.target)
        labels = json.dumps(labels_of(rule, a.host, self.groups, a.check, a.target, a.severity))
        runbook = rule.runbook if rule else None
        row = db.execute(
            "SELECT id, state, resolved_at, flaps FROM alerts"
            " WHERE host = ? AND check_id = ? AND target = ?",
            (a.host, a.check, a.target),
        ).fetchone()
        now = a.resolved_at or a.fired_at or a.active_since
        if row is None:
            cursor = db.execute(
                "INSERT INTO alerts (host, check_id, target, severity, state, summary, labels,"
                " runbook, active_since, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    a.host,
                    a.check,
                    a.target,
                    a.severity.value,
                    a.state.value,
                    a.summary,
                    labels,
                    runbook,
                    a.active_since,
                    now,
                ),
            )
            alert_id = cursor.lastrowid
        else:
            alert_id = row["id"]
            if transition.previous is None and row["state"] != AlertState.RESOLVED:
                # Still active when a console stopped: the same episode, its ack stands.
                db.execute(
                    "UPDATE alerts SET state = ?, severity = ?, summary = ?, labels = ?,"
                    " runbook = ?, updated_at = ? WHERE id = ?",
                    (a.state.value, a.severity.value, a.summary, labels, runbook, now, alert_id),
                )
            elif transition.previous is None:  # a new episode, unless it is flapping back
                back_soon = (
                    row["resolved_at"] is not None
                    and a.active_since - row["resolved_at"] <= self.settings.flap_window
                )
                if back_soon:
                    db.execute(
                        "UPDATE alerts SET state = ?, severity = ?, summary = ?, labels = ?,"
                        " runbook = ?, resolved_at = NULL, flaps = flaps + 1, updated_at = ?"
                        " WHERE id = ?",
                        (
                            a.state.value,
                            a.severity.value,
                            a.summary,
                            labels,
                            runbook,
                            now,
                            alert_id,
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE alerts SET state = ?, severity = ?, summary = ?, labels = ?,"
                        " runbook = ?, active_since = ?, fired_at = NULL, resolved_at = NULL,"
                        " flaps = 0, acked_at = NULL, acked_by = NULL, ack_note = NULL,"
                        " updated_at = ? WHERE id = ?",
                        (
                            a.state.value,
                            a.severity.value,
                            a.summary,
                            labels,
                            runbook,
                            a.active_since,
                            now,
                            alert_id,
                        ),
                    )
            else:
                db.execute(
                    "UPDATE alerts SET state = ?, severity = ?, summary = ?,"
                    " fired_at = COALESCE(?, fired_at), resolved_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (
                        a.state.value,
                        a.severity.value,
                        a.summary,
                        a.fired_at,
                        a.resolved_at,
                        now,
                        alert_id,
                    ),
                )
        db.execute(
            "INSERT INTO transitions (alert_id, at, state, previous, severity, summary)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                now,
                a.state.value,
                transition.previous.value if transition.previous else None,
                a.severity.value,
                a.summary,
            ),
        )

    def _changed(self, db: sqlite3.Connection, alert: Alert) -> None:
        """A finding that changed under a standing alert (WARN -> CRIT, a new figure)."""
        row = db.execute(
            "SELECT id FROM alerts WHERE host = ? AND check_id = ? AND target = ?", alert.key
        ).fetchone()
        if row is None:
            return
        now = time.time()
        db.execute(
            "UPDATE alerts SET severity = ?, summary = ?, updated_at = ? WHERE id = ?",
            (alert.severity.value, alert.summary, now, row["id"]),
        )
        db.execute(
            "INSERT INTO transitions (alert_id, at, state, previous, severity, summary)"
            " VALUES (?, ?, 'changed', ?, ?, ?)",
            (row["id"], now, alert.state.value, alert.severity.value, alert.summary),
        )


def alert_hook(settings: IncidentSettings, host: str, sampler: object) -> AlertRecorder | None:
    """The recorder a `HostWatch` gives its tracker: alerts go to the state database (see
    `store.state_path`), with the host's inventory tags and groups for the rules' `groups`
    and maintenance windows. A database that cannot be opened is logged, and the console
    keeps its alerts in memory as before."""
    spec = getattr(sampler, "spec", None)
    groups = getattr(spec, "labels", ())
    try:
        store = shared_store(state_path(settings.state))
    except StoreError as error:
        log.warning("alerts are not kept: %s", error)
        return None
    return AlertRecorder(store, host, settings, groups)


def _mark(alert: Alert) -> tuple[str, str]:
    return (alert.severity.value, alert.summary)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as every console sees it, with what people did about it."""

    id: int
    host: str
    check: str
    target: str
    severity: str
    """The finding's status (WARN, CRIT, UNKNOWN)."""
    state: str
    """The tracker's state: pending, firing, resolved."""
    shown: str
    """What the list says: firing, flapping, acknowledged, pending, silenced, resolved."""
    summary: str
    labels: Mapping[str, str]
    runbook: str | None
    active_since: float
    fired_at: float | None
    resolved_at: float | None
    flaps: int
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    silenced_by: Silence | None = field(default=None, compare=False)
    evaluated_at: float | None = None
    """When a console last evaluated this alert's host (None: never recorded)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """The same key as the tracker's `Alert.key`."""
        return (self.host, self.check, self.target)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "host": self.host,
            "check": self.check,
            "target": self.target,
            "severity": self.severity,
            "state": self.shown,
            "tracker_state": self.state,
            "summary": self.summary,
            "labels": dict(self.labels),
            "runbook": self.runbook,
            "wizard": RUNBOOK_WIZARDS.get(self.runbook[0]) if self.runbook else None,
            "active_since": self.active_since,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "flaps": self.flaps,
            "acknowledged": None
            if self.acked_at is None
            else {"at": self.acked_at, "by": self.acked_by, "note": self.ack_note},
            "silenced_by": None if self.silenced_by is None else self.silenced_by.id,
            "evaluated_at": self.evaluated_at,
        }


def _shown(row: sqlite3.Row, silence: Silence | None, flap_count: int, now: float) -> str:
    if row["state"] == AlertState.RESOLVED:
        return "resolved"
    if silence is not None:
        return "silenced"
    if row["evaluated_at"] is None or now - row["evaluated_at"] > STALE_AFTER:
        return "stale"
    if row["acked_at"] is not None:
        return "acknowledged"
    if row["flaps"] >= flap_count:
        return "flapping"
    return str(row["state"])


def stored_alerts(
    store: Store,
    *,
    flap_count: int = 3,
    now: float | None = None,
    include_resolved: bool = False,
    ids: Sequence[int] = (),
    host: str | None = None,
) -> list[StoredAlert]:
    """The alerts in the store, most urgent first: what `fleetdeck alerts`, the console's
    list and the war-room screen show."""
    now = time.time() if now is None else now
    where = "" if include_resolved else "WHERE state != 'resolved'"
    params: tuple[object, ...] = ()
    if ids:
        where = f"WHERE id IN ({','.join('?' * len(ids))})"
        params = tuple(ids)
    if host is not None:
        where = f"{where} {'AND' if where else 'WHERE'} host = ?"
        params = (*params, host)
    rows = store.read(
        "SELECT alerts.*, evaluations.at AS evaluated_at FROM alerts"
        f" LEFT JOIN evaluations USING (host) {where}",
        params,
    )
    index = SilenceIndex(silences(store, now), now)
    found = []
    for row in rows:
        labels = json.loads(row["labels"])
        silence = index.silenced_by(labels) if row["state"] != "resolved" else None
        found.append(
            StoredAlert(
                row["id"],
                row["host"],
                row["check_id"],
                row["target"],
                row["severity"],
                row["state"],
                _shown(row, silence, flap_count, now),
                row["summary"],
                labels,
                row["runbook"],
                row["active_since"],
                row["fired_at"],
                row["resolved_at"],
                row["flaps"],
                row["acked_at"],
                row["acked_by"],
                row["ack_note"],
                silence,
                row["evaluated_at"],
            )
        )
    rank = {"CRIT": 0, "WARN": 1, "UNKNOWN": 2}
    return sorted(
        found,
        key=lambda a: (SHOWN_STATES.index(a.shown), rank.get(a.severity, 3), a.active_since),
    )


def counts(alerts: Sequence[StoredAlert]) -> dict[str, int]:
    """How many alerts are in each shown state ("3 silenced")."""
    found = dict.fromkeys(SHOWN_STATES, 0)
    for alert in alerts:
        found[alert.shown] += 1
    return found


class AckError(Exception):
    """An acknowledgement that cannot be recorded: no such alert, or it has resolved."""


def acknowledge(store: Store, alert_id: int, who: str, note: str = "") -> float:
    """Record who acknowledged the alert, when and why; returns the time."""
    now = time.time()
    with store.write() as db:
        row = db.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            raise AckError(f"no alert {alert_id} in {store.path}")
        if row["state"] == AlertState.RESOLVED:
            raise AckError(f"alert {alert_id} has resolved: nothing to acknowledge")
        db.execute(
            "UPDATE alerts SET acked_at = ?, acked_by = ?, ack_note = ? WHERE id = ?",
            (now, who, note, alert_id),
        )
        db.execute(
            "INSERT INTO acks (alert_id, at, who, note) VALUES (?, ?, ?, ?)",
            (alert_id, now, who, note),
        )
    return now
