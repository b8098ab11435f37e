"""The PostgreSQL checks (runbooks D1-D7): each a `DbCheck` over one open `PgSession`.

A check reads through a `DbContext`, which shares the server facts and one pg_stat_activity
snapshot between the checks of a run and times every query. A query that fails (permission
denied, lock_timeout, statement_timeout) makes that check's UNKNOWN finding with the reason;
a session that is lost or stops answering makes every later check UNKNOWN at once instead of
waiting on it again. A target that cannot be connected to gives one `db.reachable` CRIT.

Targets: a backend is `pid N` (its evidence says pid and backend_start, the identity a fix
pins), a table or index its schema-qualified name, a database its name, a standby or slot
`standby NAME` / `slot NAME`; a finding about the whole server has the target's label.
fleetdeck's own sessions are in no list and no count (see `checks.database.queries`).

This module runs the checks; they live in `checks.database.sessions` (D1-D3),
`checks.database.clients` (connections by client address, R09),
`checks.database.replication` (replication, D4) and `checks.database.maintenance` (D5-D7), on
`checks.database.base` (`DbContext`, `DbCheck`) and `checks.database.wording`. Every name other
modules use is importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncssh

from fleetdeck.checks.database.base import (
    DOMAIN,
    Body,
    DbCheck,
    DbContext,
    QueryTime,
    cannot_read,
    unreachable,
)
from fleetdeck.checks.database.clients import CLIENTS
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.database.maintenance import INDEXES, SIZE, VACUUM, WRAPAROUND_CHECK
from fleetdeck.checks.database.replication import REPLICATION, SLOW_STATEMENTS
from fleetdeck.checks.database.sessions import (
    CONNECTIONS,
    IDLE_IN_TRANSACTION,
    LOCK_CHAIN,
    LONG_QUERIES,
    REACHABLE,
)
from fleetdeck.checks.model import Finding, Status
from fleetdeck.hosts.postgres.session import (
    PgConnectError,
    PgSession,
    PgTarget,
    SessionSettings,
    open_session,
)

__all__ = [
    "CLIENTS",
    "CONNECTIONS",
    "DB_CHECKS",
    "DOMAIN",
    "IDLE_IN_TRANSACTION",
    "INDEXES",
    "LOCK_CHAIN",
    "LONG_QUERIES",
    "REACHABLE",
    "REPLICATION",
    "SIZE",
    "SLOW_STATEMENTS",
    "VACUUM",
    "WRAPAROUND_CHECK",
    "Body",
    "DbCheck",
    "DbContext",
    "QueryTime",
    "cannot_read",
    "check_database",
    "resolved",
    "run_db_checks",
    "run_on",
    "unreachable",
]

DB_CHECKS: tuple[DbCheck, ...] = (
    REACHABLE,
    CONNECTIONS,
    CLIENTS,
    IDLE_IN_TRANSACTION,
    LONG_QUERIES,
    LOCK_CHAIN,
    VACUUM,
    WRAPAROUND_CHECK,
    REPLICATION,
    SLOW_STATEMENTS,
    INDEXES,
    SIZE,
)


async def run_db_checks(
    session: PgSession,
    host: str,
    thresholds: DbThresholds | None = None,
    *,
    label: str = "postgres",
    checks: Sequence[DbCheck] | None = None,
) -> list[Finding]:
    """Every database check (or `checks`) over one open session, in order."""
    db = DbContext(session, host, thresholds, label=label, connect_seconds=session.connect_seconds)
    return await run_on(db, checks)


async def run_on(db: DbContext, checks: Sequence[DbCheck] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for check in DB_CHECKS if checks is None else checks:
        if db.gone is not None:
            said = f"not checked: the session ended ({db.gone.failure.value}: {db.gone.detail})"
            findings.append(Finding(check.id, Status.UNKNOWN, db.label, said))
            continue
        findings += await check.check(db)
    return findings


async def check_database(
    target: PgTarget | None,
    host: str,
    thresholds: DbThresholds | None = None,
    *,
    ssh: asyncssh.SSHClientConnection | None = None,
    settings: SessionSettings | None = None,
) -> list[Finding]:
    """Connect to `target` on inventory host `host`, run every check, close: what
    `fleetdeck check` needs. A target that cannot be reached is one db.reachable CRIT."""
    label = target.label if target is not None else "postgres"
    try:
        session = await open_session(target, host=host, ssh=ssh, settings=settings)
    except PgConnectError as error:
        return [unreachable(error, label)]
    async with session:
        return await run_db_checks(session, host, thresholds, label=label)


def resolved(findings: Sequence[Finding], check: str, target: str) -> Finding | None:
    """For a fix's verifier: the finding of `check` on `target`; when the check ran and no
    longer lists it (the chain is gone, the session ended), an OK finding saying so."""
    mine = [f for f in findings if f.check == check]
    same = next((f for f in mine if f.target == target), None)
    if same is not None or not mine or any(f.status is Status.UNKNOWN for f in mine):
        return same
    return Finding(check, Status.OK, target, f"{target} is no longer listed")
