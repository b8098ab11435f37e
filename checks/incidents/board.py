"""Alerts from every source as one list, for the war-room screen.

The war room shows fleetdeck's own alerts (from the state database) and, once they are wired,
alerts from other engines (Alertmanager, Prometheus) side by side. Each source is a function
that returns `BoardAlert`s, each labelled with where it came from; `board_alerts` merges them,
the most severe and then the oldest first, and turns a source that fails into one UNKNOWN
record saying why, so a dead source is never shown as "no alerts".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
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
    """firing, flapping, acknowledged, stale; or silenced (counted, not listed)."""
    since: float
    """When it became active (epoch seconds): its age on the board."""
    summary: str


AlertSource = Callable[[], Awaitable[Sequence[BoardAlert]]]
"""A source the war room asks on each refresh; it may raise, which the board shows."""

UNREADABLE = "source unreadable"
"""The name of the one line a source that failed is shown as."""
SOURCE_TIMEOUT = 15.0
"""Seconds one source may take before the board shows it as unreadable."""


def unreadable(label: str, why: str, now: float) -> BoardAlert:
    """The one line a source that could not be read is shown as: never "no alerts"."""
    return BoardAlert(label, "-", UNREADABLE, "UNKNOWN", "stale", now, why)


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


async def board_alerts(
    own: Sequence[StoredAlert], sources: Sequence[tuple[str, AlertSource]], now: float
) -> list[BoardAlert]:
    """fleetdeck's alerts and each named source's (asked at once, each bounded in time), the
    most severe then the oldest first. A source that fails is one UNKNOWN line naming it and
    the error."""

    async def ask(label: str, source: AlertSource) -> Sequence[BoardAlert]:
        try:
            async with asyncio.timeout(SOURCE_TIMEOUT):
                return await source()
        except Exception as error:  # a broken source is shown, never taken for silence
            said = f"{type(error).__name__}: {error}".rstrip(": ")
            if isinstance(error, TimeoutError):
                said = f"no answer in {SOURCE_TIMEOUT:g} s"
            return [unreadable(label, said, now)]

    found = [from_stored(a) for a in own]
    for answer in await asyncio.gather(*(ask(label, source) for label, source in sources)):
        found.extend(answer)
    return sorted(found, key=board_order)


def board_order(alert: BoardAlert) -> tuple[int, float, str, str]:
    """The most severe first, then the oldest."""
    return (SEVERITY_RANK.get(alert.severity, 3), alert.since, alert.host, alert.name)
