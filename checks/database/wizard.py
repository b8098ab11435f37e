"""The database wizard (runbooks D1-D8): the PostgreSQL checks as steps, on one target.

The steps ask through the `DbLink` in the context (`CheckContext.database`), each with a
fresh view of the server. A target that cannot be connected to stops the wizard at its
first step: every later answer would be "cannot connect" again. The checks list only what
is wrong, so a fix is verified when its target is no longer listed (the chain is gone, the
session ended, the table's dead rows dropped under the threshold).

`target` picks one of the host's `[[host.postgres]]` targets by name (or database) when it
has several; `dump_dir` is where an emergency `pg_dump` goes before a terminate (D8).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fleetdeck.checks.database.base import DbCheck
from fleetdeck.checks.database.clients import CLIENTS
from fleetdeck.checks.database.fixes import default_dump_dir
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
from fleetdeck.checks.wizards import Param, Step, Wizard
from fleetdeck.hosts.postgres.targets import PgTarget

DOMAIN = "database"


def _cannot_connect(findings: Sequence[Finding]) -> str | None:
    if any(f.status is Status.CRIT for f in findings):
        return "cannot connect; the later steps would only say so again"
    return None


def _dump_dir(text: str) -> str:
    path = os.path.expanduser(text.strip())
    if not os.path.isabs(path):
        raise ValueError("give an absolute directory (a dump holds the data: keep it known)")
    return os.path.normpath(path)


def _target_name(text: str) -> str:
    name = text.strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError("a target's name (or database), without spaces")
    return name


def _step(check: DbCheck, guidance: str) -> Step:
    return Step(check, guidance, gone_is_ok=True)


DATABASE_WIZARD = Wizard(
    domain=DOMAIN,
    title="PostgreSQL",
    steps=(
        Step(
            REACHABLE,
            "D1: the server must answer and let the user in; the message says whether it is "
            "down, refusing, frozen, or a password, pg_hba.conf or SSL setting",
            stop_if=_cannot_connect,
            gone_is_ok=True,
        ),
        _step(
            CONNECTIONS,
            "D2: near max_connections new clients are refused: find who holds the connections "
            "(by user and client) and fix the pool, or end idle ones",
        ),
        _step(
            CLIENTS,
            "R09: who connects from where: an address holding much of the server is a pool "
            "or a leak to fix at that client; one not in expected_clients is a security "
            "question (pg_hba.conf decides who may connect)",
        ),
        _step(
            LOCK_CHAIN,
            "D3: end the root blocker, not the waiters: cancel its query, or terminate it "
            "(its transaction rolls back); dump the database first if in doubt (D8)",
        ),
        _step(
            IDLE_IN_TRANSACTION,
            "D3: a session idle in a transaction holds its locks and row versions: ask its "
            "owner, or terminate it; set idle_in_transaction_session_timeout",
        ),
        _step(
            LONG_QUERIES,
            "D3: a statement running long may hold locks or I/O: cancel it (the session "
            "stays), or terminate the session",
        ),
        _step(
            SLOW_STATEMENTS,
            "D4: the statements with the most total time are where tuning pays: EXPLAIN "
            "(ANALYZE) them, add the index they lack",
        ),
        _step(
            VACUUM,
            "D5: dead rows bloat a table and slow scans: VACUUM (ANALYZE) it, and find why "
            "autovacuum did not (long transactions, its settings)",
        ),
        _step(
            WRAPAROUND_CHECK,
            "D5: near wraparound the server stops taking writes: VACUUM (FREEZE) the oldest "
            "tables and end what holds the xmin horizon back",
        ),
        _step(
            REPLICATION,
            "D5: a lagging standby or an inactive slot keeps WAL on the primary's disk: fix "
            "the standby, or drop a slot nobody uses",
        ),
        _step(
            INDEXES,
            "D6: an invalid index costs every write and serves no read: REINDEX INDEX "
            "CONCURRENTLY; drop an unused one after checking the standbys",
        ),
        _step(
            SIZE,
            "D7: the database and its largest tables, for capacity: compare with the disk's "
            "free space and its fill rate",
        ),
    ),
    params=(
        Param("target", "which of the host's PostgreSQL targets (its name)", _target_name),
        Param(
            "dump_dir",
            "directory for an emergency pg_dump before a terminate (D8); default "
            f"{default_dump_dir()}",
            _dump_dir,
        ),
    ),
)


def pick_target(targets: Sequence[PgTarget], wanted: str | None, host: str) -> PgTarget | None:
    """The target the wizard works on: the one named, the only one, or (none configured)
    libpq's defaults on this machine (None). ValueError says what to pick from."""
    if wanted:
        found = [t for t in targets if wanted in (t.name, t.label, t.dbname)]
        if not found:
            names = ", ".join(t.label for t in targets) or "none"
            raise ValueError(f"{host} has no PostgreSQL target {wanted!r} (it has: {names})")
        named = [t for t in found if t.name == wanted]
        if len(named) == 1:
            return named[0]
        if len(found) > 1:
            raise ValueError(
                f"{host} has {len(found)} PostgreSQL targets called {wanted!r}: give each a "
                "name in the inventory ([[host.postgres]] name = ...) and pick it by that"
            )
        return found[0]
    if len(targets) > 1:
        names = ", ".join(t.label for t in targets)
        raise ValueError(f"{host} has several PostgreSQL targets; pick one with target: {names}")
    return targets[0] if targets else None
