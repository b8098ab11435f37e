"""The domains' panes on the Host screen, found by domain name: how the widget is built for
a host, and whether it says the domain's service is absent there (then the domain's periodic
checks find nothing, rather than report a host without Docker). `checks/` declares a pane's
cadence and when a host wants it (`Domain.pane`); the widgets live here, above it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.widget import Widget

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.config import Config
from fleetdeck.widgets import ContainersPane, DatabasePane


@dataclass(frozen=True, slots=True)
class PaneWidget:
    """`make(access, config, max_age, id)` builds the pane; `absent(pane)` reads it; `key`
    is the Host screen's key that jumps to it, shown before the domain's title."""

    key: str
    make: Callable[[HostAccess, Config, float, str], Widget]
    absent: Callable[[Widget], bool]


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


PANES: dict[str, PaneWidget] = {
    "database": PaneWidget("6", _database, _never),
    "containers": PaneWidget("7", _containers, _no_docker),
}
