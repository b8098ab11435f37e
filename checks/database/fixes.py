"""The fixes the PostgreSQL checks offer (runbooks D3, D5, D6, D8), all run by the gate.

A backend fix is pinned on pid plus backend_start, and its statement names both, so even a
pid reused in the instant between the gate's pin reading and the statement acts on nothing:
`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start =
$2` returns no row, and the step fails saying the target is gone. A table or index fix is
pinned on its oid (dropped and re-created reads as changed). Identifiers go through
`psycopg.sql.Identifier`, values through parameters; what the operator reads is the same
statement with the values written in.

Terminating a backend rolls its transaction back, so it is destructive (the host name is
typed), and it comes twice: alone, and after an emergency `pg_dump` of the database (D8) to
a new file in the dump directory. The dump runs first; if it fails, nothing is terminated.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path
from typing import Any

import platformdirs
from psycopg import sql

from fleetdeck.checks.database.queries import Backend, IndexStat, TableStat, qualify
from fleetdeck.checks.model import DbStep, Fix, Pin, Risk
from fleetdeck.hosts.units import human_duration

STATEMENT_PIN = sql.SQL(
    "/* fleetdeck: pin */ SELECT backend_start, query_start FROM pg_stat_activity "
    "WHERE pid = %(pid)s AND state = 'active'"
)
TRANSACTION_PIN = sql.SQL(
    "/* fleetdeck: pin */ SELECT backend_start, xact_start FROM pg_stat_activity "
    "WHERE pid = %(pid)s"
)
RELATION_PIN = sql.SQL(
    "/* fleetdeck: pin */ SELECT c.oid FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relname = %(name)s"
)
CANCEL = (
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = {pid} "
    "AND backend_start = {start} AND query_start = {since} AND state = 'active'"
)
TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {pid} "
    "AND backend_start = {start} AND xact_start IS NOT DISTINCT FROM {since}"
)
REINDEX_LOCK_TIMEOUT = 30.0
"""REINDEX CONCURRENTLY waits for every transaction older than it to end; it may wait this
long for them (its impact says so) before it gives up."""

CANCEL_TIMEOUT = 10.0
VACUUM_TIMEOUT = 600.0
REINDEX_TIMEOUT = 900.0
DUMP_TIMEOUT = 1800.0


def default_dump_dir() -> str:
    """Where an emergency dump goes when no `dump_dir` is given: fleetdeck's data directory
    (next to the audit log), on this machine."""
    return str(Path(platformdirs.user_data_dir("fleetdeck")) / "dumps")


def _signal(template: str, backend: Backend, since: dt.datetime | None) -> DbStep:
    """The statement that signals the backend only if it is still the one shown: the same
    process (backend_start) and the same statement (cancel) or transaction (terminate), so
    a reused pid, or a session that has moved on to other work, is left alone."""

    def build(pid: Any, start: Any, when: Any) -> sql.Composed:
        return sql.SQL(template).format(pid=pid, start=start, since=when)

    values = (backend.pid, backend.backend_start, since)
    return DbStep(
        shown=build(*(sql.Literal(v) for v in values)).as_string(None),
        query=build(*(sql.Placeholder(n) for n in ("pid", "start", "since"))),
        params=dict(zip(("pid", "start", "since"), values, strict=True)),
        must_match=True,
    )


def _backend_pin(backend: Backend, transaction: bool) -> Pin:
    assert backend.backend_start is not None
    since = backend.xact_start if transaction else backend.query_start
    which = "xact_start" if transaction else "query_start"
    return Pin(
        f"pid {backend.pid}'s backend_start and {which}",
        (),
        f"{backend.backend_start.isoformat()} {since.isoformat() if since else 'none'}",
        query=DbStep(
            f"backend_start and {which} of pid {backend.pid}",
            TRANSACTION_PIN if transaction else STATEMENT_PIN,
            {"pid": backend.pid},
        ),
    )


def _relation_pin(kind: str, schema: str, name: str, oid: int) -> Pin:
    return Pin(
        f"the oid of {kind} {schema}.{name}",
        (),
        str(oid),
        query=DbStep(f"oid of {schema}.{name}", RELATION_PIN, {"schema": schema, "name": name}),
    )


def fixable(backend: Backend | None) -> bool:
    """Whether fleetdeck can pin this backend (its start time is visible to it)."""
    return backend is not None and not backend.hidden and backend.backend_start is not None


def cancel(backend: Backend, check: str, waiting: int = 0) -> Fix:
    """D3: cancel the backend's running statement; the session stays."""
    ran = human_duration(backend.query_seconds or 0)
    impact = (
        f"stops the statement pid {backend.pid} has run for {ran}; the client gets an error "
        "(57014) and, inside a transaction, must roll it back; the session stays"
    )
    if waiting:
        impact += f"; {waiting} waiting session(s) may go on if it held their locks"
    return Fix(
        id="db.cancel",
        title=f"Cancel pid {backend.pid}'s query",
        risk=Risk.DISRUPTIVE,
        commands=(),
        target=backend.target,
        pin=_backend_pin(backend, transaction=False),
        verify=check,
        impact=impact,
        timeout=CANCEL_TIMEOUT,
        statements=(_signal(CANCEL, backend, backend.query_start),),
    )


def terminate(
    backend: Backend, check: str, waiting: int, database: str, dump_dir: str = ""
) -> tuple[Fix, ...]:
    """D3: end the backend's session (its transaction rolls back), alone or after a
    pg_dump of `database` (D8)."""
    xact = (
        f"its transaction, open {human_duration(backend.xact_seconds)}, is rolled back"
        if backend.xact_seconds is not None
        else "it has no open transaction"
    )
    impact = (
        f"ends pid {backend.pid}'s session ({backend.user}@{backend.client or 'local'}, "
        f"state {backend.state}): {xact}, and its client loses the connection; "
        f"{waiting} session(s) wait on its locks"
    )
    alone = Fix(
        id="db.terminate",
        title=f"Terminate pid {backend.pid}",
        risk=Risk.DESTRUCTIVE,
        commands=(),
        target=backend.target,
        pin=_backend_pin(backend, transaction=True),
        verify=check,
        impact=impact,
        timeout=CANCEL_TIMEOUT,
        statements=(_signal(TERMINATE, backend, backend.xact_start),),
    )
    path = dump_path(dump_dir, database, backend.pid)
    dumped = Fix(
        id="db.dump_terminate",
        title=f"Dump {database} to {path}, then terminate pid {backend.pid}",
        risk=Risk.DESTRUCTIVE,
        commands=(),
        target=backend.target,
        pin=alone.pin,
        verify=check,
        impact=(
            f"first an emergency pg_dump of database {database} to {path} on this machine "
            "(D8; the terminate runs only if the dump succeeds, and a long dump holds the "
            "incident up; pg_dump needs a share lock on every table, so behind a queued "
            f"ALTER TABLE or another exclusive lock it gives up after 5 s); then: {impact}"
        ),
        timeout=DUMP_TIMEOUT + CANCEL_TIMEOUT,
        statements=(dump_step(database, path), *alone.statements),
    )
    return alone, dumped


def dump_path(dump_dir: str, database: str, pid: int) -> str:
    """`<database>-<UTC time>-pid<N>.dump`: dumps offered in the same second for two
    sessions get two names; the same offer applied twice finds its file there and stops."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in database) or "database"
    return str(Path(dump_dir or default_dump_dir()) / f"{safe}-{stamp}-pid{pid}.dump")


def dump_step(database: str, path: str) -> DbStep:
    shown = shlex.join(["pg_dump", "--format=custom", "--no-password", database])
    return DbStep(f"{shown} > {shlex.quote(path)}", dump_to=path)


def vacuum(table: TableStat, check: str) -> Fix:
    """D5: VACUUM (ANALYZE) the table: dead rows made reusable, statistics fresh."""
    statement = sql.SQL("VACUUM (ANALYZE) {}.{}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name)
    )
    return Fix(
        id="db.vacuum_analyze",
        title=f"VACUUM (ANALYZE) {table.qualified}",
        risk=Risk.SAFE,
        commands=(),
        target=table.qualified,
        pin=_relation_pin("table", table.schema, table.name, table.oid),
        verify=check,
        impact=(
            f"reads {table.qualified} ({table.live + table.dead:,} rows) and its indexes, "
            "which adds I/O; reads and writes go on (no exclusive lock); rows an open "
            "transaction may still see stay dead"
        ),
        timeout=VACUUM_TIMEOUT,
        statements=(DbStep(statement.as_string(None), statement),),
    )


def reindex(index: IndexStat, check: str) -> Fix:
    """D6: rebuild an invalid index without blocking writes."""
    statement = sql.SQL("REINDEX INDEX CONCURRENTLY {}.{}").format(
        sql.Identifier(index.schema), sql.Identifier(index.name)
    )
    leftover = qualify(index.schema, f"{index.name}_ccnew")
    return Fix(
        id="db.reindex",
        title=f"REINDEX INDEX CONCURRENTLY {index.qualified}",
        risk=Risk.DISRUPTIVE,
        commands=(),
        target=index.qualified,
        pin=_relation_pin("index", index.schema, index.name, index.oid),
        verify=check,
        impact=(
            f"builds {index.qualified} again beside the old one, scanning "
            f"{qualify(index.schema, index.table)} twice: I/O and CPU, writes go on; it waits "
            f"up to {REINDEX_LOCK_TIMEOUT:g} s for every transaction older than it (an idle "
            f"one too), and if it stops midway it leaves an invalid index {leftover} to drop"
        ),
        timeout=REINDEX_TIMEOUT,
        statements=(
            DbStep(
                statement.as_string(None),
                statement,
                lock_timeout=REINDEX_LOCK_TIMEOUT,
                on_failure=(
                    f"if it stopped after building, an invalid {leftover} is left behind: "
                    f"DROP INDEX CONCURRENTLY {leftover}"
                ),
            ),
        ),
    )


def leftover_of_reindex(index: IndexStat) -> bool:
    """An index an interrupted REINDEX ... CONCURRENTLY left (`x_ccnew`, `x_ccold`, with a
    number when there were several): it is dropped, never rebuilt."""
    return bool(re.search(r"_cc(new|old)[0-9]*$", index.name))
