"""The PostgreSQL checks on replication and on statements (runbook D4): a primary's standbys
and their lag, a standby's own lag, inactive replication slots holding WAL, and the slowest
statements pg_stat_statements recorded.

A standby's target is `standby NAME`, a slot's `slot NAME`.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from fleetdeck.checks.database.base import DbCheck, DbContext
from fleetdeck.checks.database.queries import (
    EXTENSION,
    MINE,
    QUERY_CHARS,
    SLOTS,
    STANDBYS,
    STATEMENTS,
    Statement,
    statement_from_row,
)
from fleetdeck.checks.database.standby import read_standby_lag
from fleetdeck.checks.database.wording import SHOWN_QUERY, plural, shown, worst
from fleetdeck.checks.model import Evidence, Finding, Status
from fleetdeck.hosts.postgres.session import PgQueryError
from fleetdeck.hosts.units import human_bytes, human_duration

# -- replication ----------------------------------------------------------------------------


async def _replication(db: DbContext) -> list[Finding]:
    server = await db.server()
    found: list[Finding] = []
    calm: list[str] = []
    if server.standby:
        found += await _as_standby(db)
    else:
        found, calm = await _standbys(db)
    slots = await db.fetch(SLOTS)
    limit = db.thresholds.slot_wal
    for slot in slots:
        name, retained = slot["slot_name"], slot["retained"]
        status = Status.OK if slot["active"] else limit.grade(retained)
        if slot["wal_status"] == "lost":
            status = Status.CRIT
        if status is Status.OK:
            continue
        summary = (
            f"replication slot {name} ({slot['slot_type']}) is inactive and holds "
            f"{human_bytes(retained or 0)} of WAL the server cannot recycle"
        )
        summary += (
            ": the WAL it needs is gone (wal_status lost)"
            if slot["wal_status"] == "lost"
            else f": if its consumer is gone for good, pg_drop_replication_slot('{name}') frees it"
        )
        text = f"slot {name} type {slot['slot_type']} database {slot['database']} "
        text += f"active {slot['active']} wal_status {slot['wal_status']} retained {retained}"
        found.append(
            Finding(
                "db.replication",
                status,
                f"slot {name}",
                summary,
                (Evidence("pg_replication_slots", text),),
            )
        )
    inactive = sum(1 for slot in slots if not slot["active"])
    calm.append(
        f"{plural(len(slots), 'replication slot')}, {inactive} inactive"
        if slots
        else "no replication slots"
    )
    if found:
        return found
    return [Finding("db.replication", Status.OK, db.label, "; ".join(calm))]


async def _standbys(db: DbContext) -> tuple[list[Finding], list[str]]:
    """The primary's standbys: a finding for each that lags or does not stream; what is calm."""
    limit = db.thresholds.replication_lag
    rows = await db.fetch(STANDBYS)
    found: list[Finding] = []
    worst_lag, hidden = 0.0, 0
    for r in rows:
        name = r["application_name"] or r["client_addr"] or f"pid {r['pid']}"
        if r["state"] is None:
            hidden += 1
            continue
        lag = r["replay_lag"] or 0.0
        worst_lag = max(worst_lag, lag)
        status = limit.grade(lag)
        if r["state"] != "streaming":
            status = worst([status, Status.WARN])
        if status is Status.OK:
            continue
        summary = (
            f"standby {name} ({r['client_addr']}) is {r['state']} ({r['sync_state']}): replay "
            f"{human_duration(lag)} behind, {human_bytes(r['behind_bytes'] or 0)} of WAL"
        )
        text = (
            f"write_lag {r['write_lag']} s, flush_lag {r['flush_lag']} s, replay_lag "
            f"{r['replay_lag']} s, {r['behind_bytes']} bytes behind"
        )
        evidence = (Evidence("pg_stat_replication", text),)
        found.append(Finding("db.replication", status, f"standby {name}", summary, evidence))
    said = [f"{plural(len(rows), 'standby')} (replay at most {human_duration(worst_lag)} behind)"]
    said = said if rows else ["no standbys"]
    if hidden:
        said.append(f"{hidden} hide their state: grant pg_monitor to see it")
        found.append(Finding("db.replication", Status.UNKNOWN, db.label, "; ".join(said)))
    return found, said


async def _as_standby(db: DbContext) -> list[Finding]:
    """The standby's own lag: WAL received and not replayed, and how long it has waited
    (see `checks.database.standby`); no receiver or paused replay is at least a warning."""
    lag = await read_standby_lag(db)
    status = db.thresholds.replication_lag.grade(lag.wait)
    problems = []
    if lag.receiver is None:
        problems.append("no WAL receiver: not streaming from a primary (archive only, or cut off)")
    if lag.paused:
        problems.append("replay is paused: SELECT pg_wal_replay_resume() resumes it")
    elif lag.stalled_unknown:
        problems.append(
            "replay is stuck, for how long is not known: a query on this standby may hold "
            "back a change it must apply (max_standby_streaming_delay)"
        )
    if problems:
        status = worst([status, Status.WARN])
    summary = (
        f"standby of {lag.sender or '?'} (receiver {lag.receiver or 'not running'}): {lag.words()}"
    )
    summary = "; ".join([summary, *problems])
    commit = "never" if lag.last_commit is None else f"{lag.last_commit:.1f} s ago"
    lines = [f"received and not replayed: {lag.behind:.0f} bytes"]
    if lag.probe:
        lines.append(
            f"looked again {lag.probe:.2f} s later: replayed {lag.advanced:.0f} bytes meanwhile;"
            f" past the first look's received position: {lag.caught}"
        )
    lines.append(
        f"last replayed commit {commit}; paused {lag.paused}; receiver {lag.receiver}; "
        f"sender {lag.sender}"
    )
    text = "\n".join(lines)
    source = "pg_last_wal_receive_lsn, pg_last_wal_replay_lsn, pg_stat_wal_receiver"
    return [Finding("db.replication", status, db.label, summary, (Evidence(source, text),))]


# -- D4 slowest statements ------------------------------------------------------------------

PRELOAD = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart PostgreSQL"
)
CREATE = "run CREATE EXTENSION pg_stat_statements in {db}"


def _not_available(db: DbContext, said: str) -> list[Finding]:
    """An optional extension this server lacks is no fault of the server: OK, with what it
    takes to have it (so `fleetdeck check --postgres` is not UNKNOWN on a fresh install)."""
    summary = f"not available: {said}; then the slowest statements are listed here"
    return [Finding("db.slow_statements", Status.OK, db.label, summary)]


async def _slow_statements(db: DbContext) -> list[Finding]:
    server = await db.server()
    preload = server.settings.get("shared_preload_libraries")
    loaded = None if preload is None else "pg_stat_statements" in preload.replace('"', "")
    installed = await db.fetch(EXTENSION)
    create = CREATE.format(db=server.database)
    if loaded is False:
        return _not_available(db, PRELOAD + ("" if installed else f", then {create}"))
    if not installed:
        if loaded:
            return _not_available(db, f"pg_stat_statements is loaded but not created: {create}")
        return _not_available(
            db,
            f"pg_stat_statements is not created in {server.database}: {create} (it must be in "
            f"shared_preload_libraries too, which {server.user} may not read)",
        )
    old = server.version_num < 130000
    query = STATEMENTS.format(
        view=sql.Identifier(installed[0]["schema"], "pg_stat_statements"),
        total=sql.Identifier("total_time" if old else "total_exec_time"),
        mean=sql.Identifier("mean_time" if old else "mean_exec_time"),
    )
    params = {"chars": QUERY_CHARS, "mine": MINE, "limit": db.thresholds.top}
    try:
        rows = await db.fetch(query, params)
    except PgQueryError as error:
        if "shared_preload_libraries" not in error.detail:
            raise
        return _not_available(db, f"pg_stat_statements is created but not loaded: {PRELOAD}")
    by_total = [statement_from_row(r) for r in rows if r["ranked"] == "total"]
    by_mean = [statement_from_row(r) for r in rows if r["ranked"] == "mean"]
    if not by_mean:
        said = "pg_stat_statements has recorded no statements yet (fleetdeck's own left out)"
        return [Finding("db.slow_statements", Status.OK, db.label, said)]
    limit = db.thresholds.slow_statement
    slow = [s for s in by_mean if limit.grade(s.mean_ms) is not Status.OK]
    top, most = by_mean[0], by_total[0]
    if slow:
        summary = (
            f"{plural(len(slow), 'statement')} take {limit.warn:g} ms or more on average; the "
            f"slowest: {top.mean_ms:,.0f} ms over {plural(top.calls, 'call')}: {_text(top, 80)}"
        )
    else:
        summary = (
            f"the slowest statement averages {top.mean_ms:,.1f} ms ({plural(top.calls, 'call')});"
            f" the most time in all: {most.total_ms / 1000:,.1f} s, {_text(most, 60)}"
        )
    hidden = len(
        {(s.user, s.database, s.calls, s.total_ms) for s in by_total + by_mean if s.hidden}
    )
    if hidden:
        summary += (
            f"; {plural(hidden, 'statement')} of other users "
            f"{'hides its' if hidden == 1 else 'hide their'} text: grant "
            f"pg_read_all_stats (part of pg_monitor) to {server.user} to see it"
        )
    evidence = (
        Evidence("pg_stat_statements, by total time", _statement_lines(by_total)),
        Evidence("pg_stat_statements, by mean time", _statement_lines(by_mean)),
    )
    status = worst([limit.grade(s.mean_ms) for s in by_mean])
    return [Finding("db.slow_statements", status, db.label, summary, evidence)]


def _text(statement: Statement, limit: int) -> str:
    return "(hidden)" if statement.hidden else shown(statement.query, limit)


def _statement_lines(statements: Sequence[Statement]) -> str:
    return "\n".join(
        f"{s.total_ms:>12,.0f} ms total {s.calls:>10,} calls {s.mean_ms:>10,.1f} ms mean  "
        f"{s.user}@{s.database}  {_text(s, SHOWN_QUERY)}"
        for s in statements
    )


REPLICATION = DbCheck("db.replication", "Replication lag and slots", _replication)
SLOW_STATEMENTS = DbCheck("db.slow_statements", "Slowest statements", _slow_statements)
