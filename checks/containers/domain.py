"""The container domain's declaration: its wizard, checks on every host, settings and pane."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import FixHost
from fleetdeck.checks.containers.config import TABLE
from fleetdeck.checks.domain import Domain, DomainRun, Pane, Periodic, WizardRef
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.wizards import Wizard

CHECKS_EVERY = 10.0
"""Seconds between runs of the container checks (C1, C3, C5) while a Host screen is open:
their findings raise alerts; the restart-loop and memory-growth checks read the pane's
readings (the same link)."""
PANE_EVERY = 2.0
"""The containers pane reads at most this often (seconds), whatever the host's interval."""


def _wizard() -> Wizard:
    from fleetdeck.checks.containers.wizard import CONTAINERS_WIZARD

    return CONTAINERS_WIZARD


async def _periodic(run: DomainRun) -> list[Finding]:
    """The containers wizard's steps as health checks. A host with no Docker is one OK
    finding saying so (see `checks.containers.checks`), so Docker's absence never makes a
    healthy host's exit status worse; a bug or an odd engine is that host's UNKNOWN."""
    from fleetdeck.checks.containers.checks import ENGINE, ENGINE_ID
    from fleetdeck.checks.containers.wizard import container_findings

    try:
        return await container_findings(run.ctx)
    except Exception as error:
        said = f"container checks stopped: {type(error).__name__}: {error}"
        return [Finding(ENGINE_ID, Status.UNKNOWN, ENGINE, said)]


def _equip(
    host: FixHost, access: HostAccess, settings: object, params: Mapping[str, str]
) -> FixHost:
    """The container wizard asks the host's Docker engine, through its one link."""
    return replace(host, docker=access.docker_link())


def _wanted(access: HostAccess) -> bool:
    return access.wants_docker


CONTAINERS = Domain(
    "containers",
    "Containers",
    wizard=WizardRef("containers", _wizard, _equip),
    periodic=Periodic(_periodic, CHECKS_EVERY, frozenset({"docker"}), after_pane_reads=2),
    settings=TABLE,
    inventory_keys=("docker",),
    pane=Pane(PANE_EVERY, _wanted),
    switch="leave out the container checks (state and health, restart loops, memory "
    "against the limit, memory growth) that ask the host's Docker engine. Thresholds: "
    "[thresholds.containers]",
    also_off_with=("storage",),
)
