"""The domains' panes on the Host screen, found by domain name: how the widget is built for
a host, how it is read (when the screen's generic reader does it), whether it says the
domain's service is absent there (then the domain's periodic checks find nothing, rather
than report a host without Docker), and what the screen's keys do with the thing under its
cursor (its log, its wizard). `checks/` declares a pane's cadence and when a host wants it
(`Domain.pane`); the widgets live here, above it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.widget import Widget

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import printable
from fleetdeck.widgets import ContainersPane, DatabasePane
from fleetdeck.widgets.services_pane import ServicesPane

if TYPE_CHECKING:
    from fleetdeck.tui.logs_screen import LogBuffer, LogLine, LogSource, StateReport


@dataclass(frozen=True, slots=True)
class PaneWidget:
    """`make(access, config, max_age, id)` builds the pane; `absent(pane)` reads it; `key`
    is the Host screen's key that jumps to it, shown before the domain's title.

    `read(pane, access, config)`, when given, is one reading of the host into the pane,
    which the Host screen runs at the domain's pane cadence (and at once on `r`); it shows
    its own failures in the pane. `log(pane, access)` is the log of what is under the pane's
    cursor (the Logs screen's source; None: nothing there). `wizard` is the wizard the
    screen's `wizard_key` opens, its form filled by `given(pane)` from the pane's cursor."""

    key: str
    make: Callable[[HostAccess, Config, float, str], Widget]
    absent: Callable[[Widget], bool]
    read: Callable[[Widget, HostAccess, Config], Awaitable[None]] | None = None
    log: Callable[[Widget, HostAccess], LogSource | None] | None = None
    wizard: str | None = None
    wizard_key: str = ""
    given: Callable[[Widget], Mapping[str, str]] = lambda pane: {}


def _database(access: HostAccess, config: Config, max_age: float, id: str) -> Widget:
    first = access.postgres[0]
    return DatabasePane(first.label if first is not None else "postgres", max_age, id=id)


def _containers(access: HostAccess, config: Config, max_age: float, id: str) -> Widget:
    memory = config.thresholds.containers.memory
    return ContainersPane(access.name, max_age=max_age, memory=memory, id=id)


def _never(pane: Widget) -> bool:
    return False


def _no_docker(pane: Widget) -> bool:
    return isinstance(pane, ContainersPane) and pane.status.absent


def _container_log(pane: Widget, access: HostAccess) -> LogSource | None:
    from fleetdeck.tui.logs_screen import ContainerLog

    line = pane.selected if isinstance(pane, ContainersPane) else None
    return ContainerLog(access.docker_link(), line.id, line.name) if line is not None else None


def _container_given(pane: Widget) -> Mapping[str, str]:
    line = pane.selected if isinstance(pane, ContainersPane) else None
    return {"container": line.name} if line is not None else {}


def _services(access: HostAccess, config: Config, max_age: float, id: str) -> Widget:
    return ServicesPane(max_age, id=id)


async def _read_services(pane: Widget, access: HostAccess, config: Config) -> None:
    """The host's units into the pane, with the units the settings name as important; a
    host that cannot be reached just now is the pane's error, not the screen's."""
    import time

    from fleetdeck.checks.catalog import DOMAINS, domain_params
    from fleetdeck.checks.services.pane import ServicesSnapshot, read_services

    assert isinstance(pane, ServicesPane)
    domain = next(d for d in DOMAINS if d.name == "services")
    try:
        params = domain_params(domain, config, access.name, access.labels)
        shell = (await access.fix_host()).shell
    except Exception as error:
        said = f"{access.name}: not read: {type(error).__name__}: {error}"
        pane.show(ServicesSnapshot(access.name, time.monotonic(), time.time(), error=said))
        return
    pane.show(await read_services(access.name, shell, params))


class UnitLogSource:
    """A unit's journal as a Logs screen's source (`checks.services.logs.UnitLog`, polled
    over the host's shell from its cursor); a failed poll is said, and the next one tries
    again."""

    def __init__(self, access: HostAccess, unit: str) -> None:
        self.access = access
        self.unit = unit

    @property
    def name(self) -> str:
        return printable(self.unit, one_line=True)

    @property
    def where(self) -> str:
        return f"(journal) on {self.access.name}"

    async def follow(
        self, buffer: LogBuffer, tail: int, state: StateReport
    ) -> AsyncIterator[LogLine]:
        from fleetdeck.checks.services.logs import FOLLOW_EVERY, UnitLog

        log: UnitLog | None = None
        said: tuple[str, str | None] | None = None
        while True:
            try:
                if log is None:
                    shell = (await self.access.fix_host()).shell
                    log = UnitLog(shell, self.unit, tail=tail, keep=buffer.lines.maxlen or tail)
                new = await log.poll()
                error = log.error
            except Exception as failed:  # the host cannot be reached just now
                new, error = [], f"{type(failed).__name__}: {failed}"
            now = (f"retrying every {FOLLOW_EVERY:g} s", error) if error else ("following", None)
            if now != said:
                said = now
                state(*now)
            for raw in new:
                line = buffer.add(raw)
                if line is not None:
                    yield line
            await asyncio.sleep(FOLLOW_EVERY)


def _unit_log(pane: Widget, access: HostAccess) -> LogSource | None:
    line = pane.selected if isinstance(pane, ServicesPane) else None
    return UnitLogSource(access, line.name) if line is not None else None


def _unit_given(pane: Widget) -> Mapping[str, str]:
    line = pane.selected if isinstance(pane, ServicesPane) else None
    return {"unit": line.name} if line is not None else {}


PANES: dict[str, PaneWidget] = {
    "database": PaneWidget("6", _database, _never),
    "containers": PaneWidget(
        "7",
        _containers,
        _no_docker,
        log=_container_log,
        wizard="containers",
        wizard_key="o",
        given=_container_given,
    ),
    "services": PaneWidget(
        "8",
        _services,
        _never,
        read=_read_services,
        log=_unit_log,
        wizard="service",
        wizard_key="u",
        given=_unit_given,
    ),
}
