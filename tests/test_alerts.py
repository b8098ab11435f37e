"""Alerts follow Prometheus: pending, then firing after `for:`, then resolved."""

from __future__ import annotations

from fleetdeck.checks.alerts import AlertState, AlertTracker
from fleetdeck.checks.model import Finding, Status


def _disk(status: Status, pct: int = 95) -> Finding:
    return Finding("disk.space", status, "/var", f"/var {pct}% used")


def test_a_problem_is_pending_until_it_has_lasted_for_the_for_duration() -> None:
    tracker = AlertTracker("db-1", for_seconds=30)
    changes = tracker.update([_disk(Status.CRIT)], now=100)
    assert [(c.alert.state, c.previous) for c in changes] == [(AlertState.PENDING, None)]
    tracker.update([_disk(Status.CRIT)], now=129)
    assert tracker.alerts()[0].state is AlertState.PENDING
    changes = tracker.update([_disk(Status.CRIT)], now=130)
    (alert,) = tracker.alerts()
    assert (alert.state, alert.active_since, alert.fired_at) == (AlertState.FIRING, 100, 130)
    assert changes[0].previous is AlertState.PENDING


def test_a_blip_that_clears_while_pending_never_fires() -> None:
    tracker = AlertTracker("db-1", for_seconds=30)
    tracker.update([_disk(Status.WARN)], now=0)
    changes = tracker.update([_disk(Status.OK)], now=10)
    assert changes == [] and tracker.alerts() == []


def test_a_firing_alert_resolves_stays_visible_then_goes() -> None:
    tracker = AlertTracker("db-1", for_seconds=0, keep_resolved=60)
    tracker.update([_disk(Status.CRIT)], now=0)
    changes = tracker.update([], now=5)
    (alert,) = tracker.alerts()
    assert (alert.state, alert.resolved_at) == (AlertState.RESOLVED, 5)
    assert changes[0].previous is AlertState.FIRING
    tracker.update([], now=66)
    assert tracker.alerts() == []


def test_severity_follows_the_finding_and_firing_sorts_first() -> None:
    tracker = AlertTracker("db-1", for_seconds=10)
    tracker.update([_disk(Status.WARN, 85)], now=0)
    tracker.update(
        [_disk(Status.CRIT, 93), Finding("mem.usage", Status.WARN, "memory", "m")], now=10
    )
    first, second = tracker.alerts()
    assert (first.check, first.state, first.severity) == (
        "disk.space",
        AlertState.FIRING,
        Status.CRIT,
    )
    assert first.summary == "/var 93% used"
    assert (second.check, second.state) == ("mem.usage", AlertState.PENDING)
    assert tracker.counts()[AlertState.FIRING] == 1


def test_a_problem_that_returns_after_resolving_starts_pending_again() -> None:
    tracker = AlertTracker("db-1", for_seconds=10)
    tracker.update([_disk(Status.CRIT)], now=0)
    tracker.update([_disk(Status.CRIT)], now=10)
    tracker.update([], now=20)
    tracker.update([_disk(Status.CRIT)], now=30)
    (alert,) = tracker.alerts()
    assert (alert.state, alert.active_since) == (AlertState.PENDING, 30)
