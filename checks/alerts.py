"""Alerts from findings, with Prometheus semantics.

A non-OK finding makes its alert *pending*; once it has stayed non-OK for `for_seconds` the
alert is *firing*. When the finding turns OK a pending alert is dropped (it never fired) and a
firing one becomes *resolved*, kept on the list for a while so the operator sees it ended.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from fleetdeck.checks.model import Finding, Status


class AlertState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: which check on which target, how bad, since when, and where it stands."""

    host: str
    check: str
    target: str
    severity: Status
    state: AlertState
    summary: str
    active_since: float
    fired_at: float | None = None
    resolved_at: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.check, self.target)


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert that changed state in one evaluation (for the audit timeline)."""

    alert: Alert
    previous: AlertState | None


class AlertHook(Protocol):
    """What keeps alerts beyond the tracker (checks.incidents' state database): a rule's own
    `for` duration, and every evaluation's changes, to be written down."""

    def for_seconds(self, check: str, target: str) -> float | None: ...

    def record(self, transitions: Sequence[Transition], alerts: Sequence[Alert]) -> None: ...


class AlertTracker:
    """Keeps the alerts of one host from one evaluation of its findings to the next."""

    def __init__(
        self,
        host: str,
        for_seconds: float,
        keep_resolved: float = 300.0,
        hook: AlertHook | None = None,
    ) -> None:
        self.host = host
        self.for_seconds = for_seconds
        self.keep_resolved = keep_resolved
        self.hook = hook
        self._alerts: dict[tuple[str, str, str], Alert] = {}

    def update(self, findings: Iterable[Finding], now: float) -> list[Transition]:
        """Evaluate a full set of findings taken at `now`; return what changed state."""
        changes: list[Transition] = []
        active: set[tuple[str, str, str]] = set()
        for finding in findings:
            if finding.status is Status.OK:
                continue
            key = (self.host, finding.check, finding.target)
            active.add(key)
            alert = self._alerts.get(key)
            if alert is None or alert.state is AlertState.RESOLVED:
                alert = Alert(
                    self.host,
                    finding.check,
                    finding.target,
                    finding.status,
                    AlertState.PENDING,
                    finding.summary,
                    active_since=now,
                )
                changes.append(Transition(alert, None))
            else:
                alert = replace(alert, severity=finding.status, summary=finding.summary)
            wait = self.hook.for_seconds(finding.check, finding.target) if self.hook else None
            wait = self.for_seconds if wait is None else wait
            if alert.state is AlertState.PENDING and now - alert.active_since >= wait:
                alert = replace(alert, state=AlertState.FIRING, fired_at=now)
                changes.append(Transition(alert, AlertState.PENDING))
            self._alerts[key] = alert
        for key, alert in list(self._alerts.items()):
            if key in active:
                continue
            if alert.state is AlertState.PENDING:
                del self._alerts[key]
            elif alert.state is AlertState.FIRING:
                resolved = replace(alert, state=AlertState.RESOLVED, resolved_at=now)
                self._alerts[key] = resolved
                changes.append(Transition(resolved, AlertState.FIRING))
            elif alert.resolved_at is not None and now - alert.resolved_at > self.keep_resolved:
                del self._alerts[key]
        if self.hook is not None:
            self.hook.record(changes, self.alerts())
        return changes

    def alerts(self) -> list[Alert]:
        """Current alerts, firing first, then by severity and age."""
        order = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}
        return sorted(
            self._alerts.values(),
            key=lambda a: (order[a.state], -a.severity.rank, a.active_since, a.check, a.target),
        )

    def counts(self) -> dict[AlertState, int]:
        counts = dict.fromkeys(AlertState, 0)
        for alert in self._alerts.values():
            counts[alert.state] += 1
        return counts
