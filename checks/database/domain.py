"""The database domain's declaration: its wizard, checks in `fleetdeck check`, settings and
pane (the Host screen shows the pane and runs no periodic database checks)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import FixHost
from fleetdeck.checks.database.config import TABLE, DbThresholds
from fleetdeck.checks.domain import Domain, DomainRun, Pane, Periodic, WizardRef
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.wizards import Wizard
from fleetdeck.hosts.postgres.targets import PgTarget

if TYPE_CHECKING:
    from fleetdeck.checks.database.link import DbLink

PANE_EVERY = 2.0
"""The database pane reads at most this often (seconds), whatever the host's interval."""


def _wizard() -> Wizard:
    from fleetdeck.checks.database.wizard import DATABASE_WIZARD

    return DATABASE_WIZARD


async def _periodic(run: DomainRun) -> list[Finding]:
    """The database checks of each of the host's targets, all at once: a target that cannot
    be reached is its own db.reachable CRIT, and nothing one target does stops the others."""
    from fleetdeck.checks.database.checks import check_database

    thresholds = run.settings
    assert isinstance(thresholds, DbThresholds)
    access = run.access
    ssh = await access.ssh() if access.ssh is not None else None

    async def one(target: PgTarget | None) -> list[Finding]:
        try:
            return await check_database(target, access.name, thresholds, ssh=ssh)
        except Exception as error:  # a bug or an odd server: that target's UNKNOWN, no crash
            label = target.label if target is not None else "postgres"
            said = f"database checks stopped: {type(error).__name__}: {error}"
            return [Finding("db.reachable", Status.UNKNOWN, label, said)]

    results = await asyncio.gather(*(one(t) for t in access.postgres))
    return [finding for result in results for finding in result]


def database_link(
    access: HostAccess,
    thresholds: DbThresholds,
    target: str = "",
    dump_dir: str = "",
    *,
    first: bool = False,
) -> DbLink:
    """A link to one of the host's databases (the named one, its only one, or with `first`
    its first; none configured: libpq's defaults here), through the host's SSH connection
    for a remote host; ValueError says which to pick."""
    from fleetdeck.checks.database.link import DbLink
    from fleetdeck.checks.database.wizard import pick_target

    targets = [t for t in access.postgres if t is not None]
    if first:
        chosen = targets[0] if targets else None
    else:
        chosen = pick_target(targets, target or None, access.name)
    return DbLink(chosen, access.name, ssh=access.ssh, thresholds=thresholds, dump_dir=dump_dir)


def _equip(
    host: FixHost, access: HostAccess, settings: object, params: Mapping[str, str]
) -> FixHost:
    """The database wizard runs on the database its parameters name (`target`, `dump_dir`)."""
    assert isinstance(settings, DbThresholds)
    link = database_link(access, settings, params.get("target", ""), params.get("dump_dir", ""))
    return replace(host, database=link)


def _wanted(access: HostAccess) -> bool:
    return bool(access.postgres)


DATABASE = Domain(
    "database",
    "Database",
    wizard=WizardRef("database", _wizard, _equip),
    periodic=Periodic(_periodic, None, frozenset({"database"})),
    settings=TABLE,
    inventory_keys=("postgres",),
    pane=Pane(PANE_EVERY, _wanted),
)
