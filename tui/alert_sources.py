"""The settings' `[[sources.alertmanager]]` as alert sources, for every view that lists
alerts: the war room's board, `fleetdeck alerts` and the console's Host and Fleet screens.

Headless (no Textual): the command line imports it too. It sits above `checks/` because it
joins two domains, incidents' board and the sources' reader. Each Alertmanager's alerts
keep the label of where they came from ("alertmanager am1:9093"); a silenced alert is kept
(counted, not hidden); an Alertmanager that cannot be read is named with its cause, never
taken for one with no alerts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fleetdeck.checks.incidents.board import SOURCE_TIMEOUT, AlertSource, BoardAlert
from fleetdeck.checks.sources.alerts import SourceAlert, read_alertmanager
from fleetdeck.hosts.prometheus.api import Alertmanager
from fleetdeck.hosts.prometheus.http import HttpSource

HOST_LABELS = ("host", "hostname")
"""Labels besides `instance` that name the host an alert is about."""


def source_label(url: str) -> str:
    """How a list names an Alertmanager: "alertmanager am1:9093"."""
    return f"alertmanager {urllib.parse.urlsplit(url).netloc or url}"


def board_alert(alert: SourceAlert) -> BoardAlert:
    """An Alertmanager alert as a row of a merged list."""
    try:
        since = dt.datetime.fromisoformat(alert.starts_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        since = time.time()  # a start time it could not read: shown as new, not hidden
    return BoardAlert(
        source_label(alert.source),
        alert.instance or "-",
        alert.name,
        alert.severity.value,
        "silenced" if alert.silenced else "firing",
        since,
        alert.summary,
    )


def alertmanager_sources(sources: Sequence[HttpSource]) -> list[tuple[str, AlertSource]]:
    """The Alertmanagers as `board_alerts`' sources: their alerts, each labelled with where
    it came from (silenced ones kept, to be counted); one that cannot be read raises, which
    the board turns into a line naming it."""

    def source(http: HttpSource) -> AlertSource:
        async def alerts() -> list[BoardAlert]:
            found, problems = await read_alertmanager(Alertmanager(http))
            if problems:
                raise ConnectionError(problems[0].summary)
            return [board_alert(a) for a in found]

        return alerts

    return [(source_label(s.url), source(s)) for s in sources]


@dataclass(frozen=True, slots=True)
class SourceReading:
    """Every Alertmanager's alerts at one moment, and the ones that could not be read."""

    alerts: tuple[SourceAlert, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    """(source label, why) of each Alertmanager that gave no answer."""
    at: float = field(default_factory=time.time)
    by_host: Mapping[str, tuple[SourceAlert, ...]] = field(init=False, repr=False)
    """The alerts by each host name they are about (`alert_hosts`): a fleet of a thousand
    rows finds its own without going through every alert for each."""

    def __post_init__(self) -> None:
        index: dict[str, list[SourceAlert]] = {}
        for alert in self.alerts:
            for name in alert_hosts(alert):
                index.setdefault(name, []).append(alert)
        object.__setattr__(self, "by_host", {k: tuple(v) for k, v in index.items()})

    def about(self, *names: str) -> list[SourceAlert]:
        """The alerts about a host known by any of `names` (its inventory name, its
        address), each once, in the reading's order."""
        found = {id(a) for n in names if n for a in self.by_host.get(n.lower(), ())}
        return [a for a in self.alerts if id(a) in found] if found else []


async def read_sources(sources: Sequence[HttpSource]) -> SourceReading:
    """Ask every Alertmanager at once, each bounded by SOURCE_TIMEOUT."""

    async def ask(http: HttpSource) -> tuple[list[SourceAlert], str | None]:
        try:
            async with asyncio.timeout(SOURCE_TIMEOUT):
                found, problems = await read_alertmanager(Alertmanager(http))
        except TimeoutError:
            return [], f"no answer in {SOURCE_TIMEOUT:g} s"
        except Exception as error:  # a broken source is shown, never taken for silence
            return [], f"{type(error).__name__}: {error}".rstrip(": ")
        return found, problems[0].summary if problems else None

    answers = await asyncio.gather(*(ask(s) for s in sources))
    alerts = tuple(a for found, _ in answers for a in found)
    failed = tuple(
        (source_label(s.url), why) for s, (_, why) in zip(sources, answers, strict=True) if why
    )
    return SourceReading(alerts, failed)


def alert_hosts(alert: SourceAlert) -> set[str]:
    """The host names an alert is about: its `instance` without the port, and its `host` or
    `hostname` label."""
    named = {alert.labels.get(label, "") for label in HOST_LABELS}
    instance = alert.instance
    if instance:
        parsed = urllib.parse.urlsplit(f"//{instance}")
        try:
            named.add(parsed.hostname or instance)
        except ValueError:  # an instance that is no host:port: taken as it is
            named.add(instance)
    return {n.lower() for n in named if n}
