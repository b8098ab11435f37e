"""Alerts from every source as one list, for the war-room screen.

The war room shows fleetdeck's own alerts (from the state database) and, once they are wired,
alerts from other engines (Alertmanager, Prometheus) side by side. Each source is a function
that returns `BoardAlert`s, each labelled with where it came from; `board_alerts` merges them,
the most severe and then the oldest first, and turns a source that fails into one UNKNOWN
record saying why, so a dead source is never shown as "no alerts".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetdeck.checks.incidents.alertlog import StoredAlert

SEVERITY_RANK = {"CRIT": 0, "WARN": 1, "UNKNOWN": 2}
"""Most severe first; a severity no source should send sorts last."""


@dataclass(frozen=True, slots=True)
class BoardAlert:
    """One alert as the war room shows it, whatever raised it."""

    source: str
    """Where it came from: "fleetdeck", or an engine's label ("alertmanager prod")."""
    host: str
    name: str
    """What fires: a check and its target (disk.space /srv), or an alert name."""
    severity: str
    """CRIT, WARN or UNKNOWN (other engines' severities mapped onto these)."""
    state: str
    """firing, flapping, acknowledged or stale."""
    since: float
    """When it became active (epoch seconds): its age on the board."""
    summary: str


AlertSource = Callable[[], Sequence[BoardAlert]]
"""A source the war room asks on each refresh; it may raise, which the board shows."""


def from_stored(alert: StoredAlert) -> BoardAlert:
    """A fleetdeck alert from the state database."""
    name = alert.check if alert.target in ("", alert.host) else f"{alert.check} {alert.target}"
    return BoardAlert(
        "fleetdeck",
        alert.host,
        name,
        alert.severity,
        alert.shown,
        alert.fired_at or alert.active_since,
        alert.summary,
    )


def board_alerts(
    own: Sequence[StoredAlert], sources: Sequence[tuple[str, AlertSource]], now: float
) -> list[BoardAlert]:
    """fleetdeck's alerts and each named source's, the most severe then the oldest first.
    A source that raises is one UNKNOWN line naming it and the error."""
    found = [from_stored(a) for a in own]
    for label, source in sources:
        try:
            found.extend(source())
        except Exception as error:  # a broken source is shown, never taken for silence
            said = f"{type(error).__name__}: {error}".rstrip(": ")
            found.append(BoardAlert(label, "-", "source unreadable", "UNKNOWN", "stale", now, said))
    found.sort(key=lambda a: (SEVERITY_RANK.get(a.severity, 3), a.since, a.host, a.name))
    return found
