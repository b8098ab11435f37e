"""The PostgreSQL checks on tables (runbooks D5-D7): dead rows and vacuum, transaction ID
wraparound, unused and invalid indexes, database and table sizes.

A table or index's target is its schema-qualified name, a database's its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from psycopg import sql

from fleetdeck.checks.database import fixes as db_fixes
from fleetdeck.checks.database.base import DbCheck, DbContext
from fleetdeck.checks.database.queries import (
    DATABASE_SIZES,
    GUESSED,
    INVALID_INDEXES,
    LARGEST_TABLES,
    SIZE_ESTIMATE,
    SIZE_GUARDED,
    TOTAL_ESTIMATE,
    TOTAL_GUARDED,
    UNUSED_INDEXES,
    WRAPAROUND,
    IndexStat,
    ServerInfo,
    index_from_row,
    qualify,
    read_dead_tables,
)
from fleetdeck.checks.database.wording import ago, span
from fleetdeck.checks.model import Evidence, Finding, Status
from fleetdeck.hosts.postgres.session import PgFailure, PgQueryError
from fleetdeck.hosts.units import human_bytes, human_duration

# -- D5 dead tuples and vacuum, wraparound --------------------------------------------------

FOCUS_LIMIT = 100_000


async def _vacuum(db: DbContext) -> list[Finding]:
    server = await db.server()
    th = db.thresholds
    if server.settings.get("track_counts") == "off":
        said = "track_counts is off: PostgreSQL counts no dead rows, and autovacuum cannot run"
        return [Finding("db.vacuum", Status.WARN, db.label, said)]
    # Verifying a VACUUM: every table past the thresholds is read, so the one vacuumed is
    # judged on its own rows, never on whether others outranked it in the top list.
    limit = th.top if not db.focus else FOCUS_LIMIT
    tables, matching = await read_dead_tables(db, th.dead_rows, th.dead_ratio.warn, limit)
    if db.focus:
        tables = [t for i, t in enumerate(tables) if i < th.top or t.qualified == db.focus]
    server_off = server.settings.get("autovacuum") == "off"
    found = []
    for t in tables:
        summary = (
            f"{t.qualified} has {t.dead:,} dead rows ({t.dead_ratio:.0f} % of its rows); "
            f"last vacuum {ago(t.vacuum_seconds)}, last analyze {ago(t.analyze_seconds)}"
        )
        if t.autovacuum_off:
            summary += "; autovacuum is off for this table (autovacuum_enabled = false)"
        elif server_off:
            summary += "; autovacuum is off on this server"
        text = (
            f"table {t.qualified} (oid {t.oid}) in database {server.database}\n"
            f"live rows {t.live:,}, dead rows {t.dead:,} ({t.dead_ratio:.1f} %)\n"
            f"last vacuum {ago(t.vacuum_seconds)}, last analyze {ago(t.analyze_seconds)}"
        )
        status = th.dead_ratio.grade(t.dead_ratio)
        evidence = (Evidence("pg_stat_user_tables", text),)
        fix = db_fixes.vacuum(t, "db.vacuum")
        found.append(Finding("db.vacuum", status, t.qualified, summary, evidence, (fix,)))
    if matching > len(tables):
        more = f"{matching - len(tables)} more tables are past the thresholds (the worst listed)"
        found.append(Finding("db.vacuum", Status.WARN, db.label, more))
    if found:
        return found
    calm = (
        f"no table in {server.database} has {th.dead_rows:,} dead rows or more making "
        f"{th.dead_ratio.warn:g} % of its rows"
    )
    if server_off:
        return [Finding("db.vacuum", Status.WARN, db.label, calm + "; autovacuum is off")]
    return [Finding("db.vacuum", Status.OK, db.label, calm)]


WRAPAROUND_AT = 2**31


async def _wraparound(db: DbContext) -> list[Finding]:
    server = await db.server()
    rows = await db.fetch(WRAPAROUND)
    limit = db.thresholds.wraparound
    freeze = server.setting("autovacuum_freeze_max_age", 200_000_000)
    lines = [
        f"{r['xid_age']:>14,} xid  {r['mxid_age']:>14,} multixact  {r['datname']}" for r in rows
    ]
    evidence = (Evidence("pg_database: age(datfrozenxid), mxid_age(datminmxid)", "\n".join(lines)),)
    found = []
    for r in rows:
        xid, mxid = r["xid_age"], r["mxid_age"]
        kind, age = ("transaction ID", xid) if xid >= mxid else ("multixact ID", mxid)
        status = limit.grade(age)
        if status is Status.OK:
            continue
        summary = (
            f"database {r['datname']}: its oldest unfrozen {kind} is {age:,} old "
            f"({100 * age / WRAPAROUND_AT:.0f} % of the way to wraparound, where the server "
            f"refuses new transactions); autovacuum should have frozen it at {freeze:,}: "
            "VACUUM (FREEZE) its oldest tables and find what holds autovacuum back (long "
            "transactions, inactive replication slots, prepared transactions)"
        )
        found.append(Finding("db.wraparound", status, r["datname"], summary, evidence))
    if found or not rows:
        return found or [Finding("db.wraparound", Status.UNKNOWN, db.label, "no database listed")]
    oldest = rows[0]
    calm = (
        f"oldest unfrozen transaction ID: database {oldest['datname']} at "
        f"{oldest['xid_age']:,} (autovacuum freezes at {freeze:,}; wraparound at 2^31)"
    )
    return [Finding("db.wraparound", Status.OK, db.label, calm, evidence)]


# -- D6 indexes, D7 sizes -------------------------------------------------------------------

ESTIMATED = " (sizes estimated from pg_class.relpages: a relation is locked exclusively now)"


async def _sized(
    db: DbContext, template: sql.SQL, key: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """A query sizing a few relations: exactly, but from relpages estimates for those an
    exclusive lock is held or asked for on (pg_relation_size would queue behind it), and
    whether any was estimated. A lock taken between the two looks of the same query still
    meets the short lock_timeout: then it asks again, estimating all."""
    guarded, estimate = (
        (SIZE_GUARDED, SIZE_ESTIMATE) if key == "size" else (TOTAL_GUARDED, TOTAL_ESTIMATE)
    )
    try:
        rows = await db.fetch(template.format(**{key: guarded, "guessed": GUESSED}), params)
        return rows, any(row["guessed"] for row in rows)
    except PgQueryError as error:
        if error.failure is not PgFailure.LOCK_TIMEOUT:
            raise
    rows = await db.fetch(template.format(**{key: estimate, "guessed": sql.SQL("true")}), params)
    return rows, True


async def _indexes(db: DbContext) -> list[Finding]:
    server = await db.server()
    th = db.thresholds
    invalid_rows, guess1 = await _sized(db, INVALID_INDEXES, "size", {"limit": 50})
    unused_rows: list[dict[str, Any]] = []
    guess2 = False
    if not server.standby:  # a standby's counters are its own scans only
        unused_rows, guess2 = await _sized(db, UNUSED_INDEXES, "size", {"limit": th.top})
    estimated = ESTIMATED if guess1 or guess2 else ""
    found, building = [], []
    for index in map(index_from_row, invalid_rows):
        if index.building:
            building.append(index.qualified)
            continue
        found.append(_invalid(index, estimated, server.standby))
    unused, calm = _unused(db, server, unused_rows)
    for index in unused:
        summary = (
            f"index {index.qualified} on {qualify(index.schema, index.table)} "
            f"({human_bytes(index.bytes)}) has not been used by any query {_since(server)}: "
            "it slows every write and takes space"
        )
        found.append(_index_finding(index, Status.WARN, summary, "pg_stat_user_indexes", estimated))
    if found:
        return found
    calm = f"no invalid index; {calm}"
    calm += f"; being built now: {', '.join(building)}" if building else ""
    return [Finding("db.indexes", Status.OK, db.label, calm + estimated)]


def _invalid(index: IndexStat, estimated: str, standby: bool) -> Finding:
    """An invalid index: a leftover of a stopped REINDEX (drop it), or a failed build
    (rebuild it; on a standby, on the primary: a standby cannot write)."""
    table = qualify(index.schema, index.table)
    if db_fixes.leftover_of_reindex(index):
        summary = (
            f"index {index.qualified} on {table} is invalid, left by a REINDEX ... "
            "CONCURRENTLY that stopped midway: every write still updates it; drop it "
            f"(DROP INDEX CONCURRENTLY {index.qualified}), never rebuild it"
        )
        return _index_finding(index, Status.WARN, summary, "pg_index", estimated)
    summary = (
        f"index {index.qualified} on {table} is invalid (a CREATE or REINDEX ... "
        "CONCURRENTLY that failed leaves one): every write still updates it and no query "
        "uses it; REINDEX INDEX CONCURRENTLY rebuilds it"
    )
    finding = _index_finding(index, Status.WARN, summary, "pg_index", estimated)
    if standby:
        return replace(finding, summary=summary + " (on the primary: this is a standby)")
    return replace(finding, fixes=(db_fixes.reindex(index, "db.indexes"),))


def _count(indexes: int) -> str:
    return f"{indexes} index" + ("" if indexes == 1 else "es")


def _since(server: ServerInfo) -> str:
    """How far back the usage counters go, in words (see `checks.database.queries.SERVER`)."""
    age = human_duration(server.stats_age or 0)
    if server.stats_were_reset:
        return f"in the {age} since its statistics were reset"
    if server.stats_discarded:
        return (
            f"in the {age} since its statistics were discarded (crash recovery, or "
            "pg_stat_reset_shared: pg_stat_archiver.stats_reset)"
        )
    return f"in the {age} since the server started (its statistics go back at least that far)"


def _unused(
    db: DbContext, server: ServerInfo, rows: list[dict[str, Any]]
) -> tuple[list[IndexStat], str]:
    """The indexes never scanned that count as unused, and what to say when none does: on
    the primary only, once the statistics go back `unused_index_age`, and only indexes
    built before that (when track_commit_timestamp tells when they were)."""
    th = db.thresholds
    need = span(th.unused_index_age)
    if server.standby:
        return [], (
            "unused indexes are judged on the primary: usage statistics are per server, and "
            "this standby counts only the queries run on it"
        )
    matching = rows[0]["matching"] if rows else 0
    never = f"{_count(matching)} never scanned {_since(server)}"
    if (server.stats_age or 0) < th.unused_index_age:
        return [], f"unused indexes not judged yet: {never}, under the {need} needed"
    sized = [index_from_row(r) for r in rows if (r["bytes"] or 0) >= th.unused_index_bytes]
    # Verifying a REINDEX of an invalid index: what is asked is whether it is valid now; a
    # rebuilt index has not been scanned yet, which is no news about the fix.
    sized = [index for index in sized if index.qualified != db.focus]
    young = [i for i in sized if i.built is not None and i.built < th.unused_index_age]
    unused = [i for i in sized if i not in young]
    calm = f"no unused index of {human_bytes(th.unused_index_bytes)} or more"
    calm += f" ({never})" if matching else ""
    if young:
        calm += f"; {_count(len(young))} built within {need} not judged yet"
    return unused, calm


def _index_finding(
    index: IndexStat, status: Status, summary: str, source: str, estimated: str
) -> Finding:
    text = (
        f"index {index.qualified} (oid {index.oid}) on table {index.schema}.{index.table}, "
        f"{human_bytes(index.bytes)}{estimated}"
    )
    return Finding("db.indexes", status, index.qualified, summary, (Evidence(source, text),))


async def _size(db: DbContext) -> list[Finding]:
    server = await db.server()
    databases = await db.fetch(DATABASE_SIZES)
    tables, guess = await _sized(db, LARGEST_TABLES, "total", {"limit": db.thresholds.top})
    mine = next((r for r in databases if r["datname"] == server.database), None)
    summary = ""
    if mine:
        about = "about " if mine.get("estimated") else ""
        summary = f"database {server.database} is {about}{human_bytes(mine['bytes'])}"
    summary = summary or f"the size of database {server.database} cannot be read"
    if tables:
        big = tables[0]
        summary += (
            f"; its largest table is {qualify(big['schemaname'], big['relname'])} at "
            f"{human_bytes(big['bytes'])} with its indexes and TOAST"
        )
    estimated = ESTIMATED if guess else ""
    evidence = (
        Evidence(
            "pg_database_size (this database: the sum of pg_class.relpages, an estimate)",
            "\n".join(
                f"{human_bytes(r['bytes']):>10}  {r['datname']}"
                + ("  (estimated)" if r.get("estimated") else "")
                for r in databases
            ),
        ),
        Evidence(
            f"largest tables in {server.database}{estimated}",
            "\n".join(
                f"{human_bytes(r['bytes']):>10}  {r['schemaname']}.{r['relname']}  "
                f"about {max(r['rows_estimate'], 0):,} rows"
                for r in tables
            ),
        ),
    )
    return [Finding("db.size", Status.OK, db.label, summary + estimated, evidence)]


VACUUM = DbCheck("db.vacuum", "Dead rows and vacuum", _vacuum)
WRAPAROUND_CHECK = DbCheck("db.wraparound", "Transaction ID wraparound", _wraparound)
INDEXES = DbCheck("db.indexes", "Unused and invalid indexes", _indexes)
SIZE = DbCheck("db.size", "Database and table sizes", _size)
