"""The PostgreSQL checks (runbooks D1-D7): each a `DbCheck` over one open `PgSession`.

A check reads through a `DbContext`, which shares the server facts and one pg_stat_activity
snapshot between the checks of a run and times every query. A query that fails (permission
denied, lock_timeout, statement_timeout) makes that check's UNKNOWN finding with the reason;
a session that is lost or stops answering makes every later check UNKNOWN at once instead of
waiting on it again. A target that cannot be connected to gives one `db.reachable` CRIT.

Targets: a backend is `pid N` (its evidence says pid and backend_start, the identity a fix
pins), a table or index its schema-qualified name, a database its name, a standby or slot
`standby NAME` / `slot NAME`; a finding about the whole server has the target's label.
fleetdeck's own sessions are in no list and no count (see `checks.dbqueries`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh
from psycopg import sql

from checks.dbconfig import DbThresholds
from checks.dbqueries import (
    DATABASE_SIZES,
    EXTENSION,
    INVALID_INDEXES,
    LARGEST_TABLES,
    MINE,
    QUERY_CHARS,
    RECEIVER,
    SIZE_ESTIMATE,
    SIZE_EXACT,
    SLOTS,
    STANDBYS,
    STATEMENTS,
    TOTAL_ESTIMATE,
    TOTAL_EXACT,
    UNUSED_INDEXES,
    WRAPAROUND,
    Activity,
    Backend,
    Fetcher,
    IndexStat,
    LockChain,
    ServerInfo,
    Statement,
    index_from_row,
    lock_chains,
    read_activity,
    read_dead_tables,
    read_server,
    redact,
    statement_from_row,
)
from checks.model import Evidence, Finding, Status, printable
from hosts.postgres import (
    PgConnectError,
    PgFailure,
    PgQueryError,
    PgSession,
    PgTarget,
    SessionSettings,
    open_session,
)
from hosts.units import human_bytes, human_duration

DOMAIN = "database"
SHOWN_QUERY = 200
"""Characters of query text a finding shows."""


@dataclass(frozen=True, slots=True)
class QueryTime:
    """One query a run sent: its name (from its leading comment), seconds, rows."""

    name: str
    seconds: float
    rows: int


class DbContext:
    """What the checks of one run share: the session (timed), the thresholds, and the
    server facts and activity snapshot, each read once (a failure is kept and raised again)."""

    def __init__(
        self,
        session: Fetcher,
        host: str,
        thresholds: DbThresholds | None = None,
        *,
        label: str = "postgres",
        connect_seconds: float | None = None,
    ) -> None:
        self.session = session
        self.host = host
        self.thresholds = thresholds or DbThresholds()
        self.label = label
        self.connect_seconds = connect_seconds
        self.timings: list[QueryTime] = []
        self.gone: PgQueryError | None = None
        """Set when the session was lost or stopped answering: later checks do not run."""
        self._cache: dict[str, Any] = {}

    async def fetch(
        self, query: Any, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        try:
            rows = await self.session.fetch(query, params)
            return rows
        except PgQueryError as error:
            if error.failure in (PgFailure.TIMEOUT, PgFailure.LOST):
                self.gone = error
            raise
        finally:
            text = query if isinstance(query, str) else query.as_string(None)
            name = text.partition("*/")[0].removeprefix("/* fleetdeck:").strip()
            self.timings.append(QueryTime(name, time.perf_counter() - started, len(rows)))

    @property
    def user(self) -> str:
        """The user fleetdeck logged in as, once known (for "grant pg_monitor to ...")."""
        server = self._cache.get("server")
        return server.user if isinstance(server, ServerInfo) else "the monitoring user"

    async def server(self) -> ServerInfo:
        info: ServerInfo = await self._once("server", read_server)
        return info

    async def activity(self) -> Activity:
        found: Activity = await self._once("activity", read_activity)
        return found

    async def _once(self, key: str, read: Callable[[Fetcher], Awaitable[Any]]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = await read(self)
            except PgQueryError as error:
                self._cache[key] = error
        found = self._cache[key]
        if isinstance(found, PgQueryError):
            raise found
        return found


Body = Callable[[DbContext], Awaitable[list[Finding]]]


@dataclass(frozen=True, slots=True)
class DbCheck:
    """A check that asks PostgreSQL through an open session."""

    id: str
    title: str
    body: Body
    domain: str = DOMAIN

    async def check(self, db: DbContext) -> list[Finding]:
        """The body's findings; a query it could not run is one UNKNOWN finding saying why."""
        try:
            return await self.body(db)
        except PgQueryError as error:
            return [Finding(self.id, Status.UNKNOWN, db.label, cannot_read(error, db))]
        except (KeyError, TypeError, ValueError) as error:  # a server that answers oddly
            said = f"unexpected answer from the server ({type(error).__name__}: {error})"
            return [Finding(self.id, Status.UNKNOWN, db.label, said)]


def cannot_read(error: PgQueryError, db: DbContext) -> str:
    said = f"cannot read: {error.failure.value}: {error.detail}"
    if error.failure is PgFailure.PERMISSION_DENIED:
        said += f" (grant pg_monitor to {db.user})"
    return said


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


def unreachable(error: PgConnectError, label: str) -> Finding:
    """db.reachable for a session that could not be opened (the message has no password)."""
    summary = f"cannot connect: {error.failure.value}: {error.detail}"
    return Finding(
        "db.reachable", Status.CRIT, label, summary, (Evidence(error.where, str(error)),)
    )


def resolved(findings: Sequence[Finding], check: str, target: str) -> Finding | None:
    """For a fix's verifier: the finding of `check` on `target`; when the check ran and no
    longer lists it (the chain is gone, the session ended), an OK finding saying so."""
    mine = [f for f in findings if f.check == check]
    same = next((f for f in mine if f.target == target), None)
    if same is not None or not mine or any(f.status is Status.UNKNOWN for f in mine):
        return same
    return Finding(check, Status.OK, target, f"{target} is no longer listed")


# -- shared wording -------------------------------------------------------------------------


def shown(text: str, limit: int = SHOWN_QUERY) -> str:
    """Query text on one line, printable, passwords blanked, cut at `limit` characters."""
    flat = printable(" ".join(redact(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def span(seconds: float) -> str:
    """A threshold in seconds as people say it: `0.2 s`, `1m 0s`."""
    return f"{seconds:g} s" if seconds < 60 else human_duration(seconds)


def ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{human_duration(seconds)} ago"


def who(backend: Backend) -> str:
    """`alice@10.0.0.5 (billing)`: the user, the client and the application."""
    text = backend.user or "?"
    text += f"@{backend.client}" if backend.client else ""
    return text + (f" ({printable(backend.application)})" if backend.application else "")


def backend_lines(backend: Backend) -> list[str]:
    """A backend as evidence: its identity first (what a fix pins), then what it does."""
    if backend.hidden:
        return [
            f"pid {backend.pid} user {backend.user} database {backend.database} "
            f"application {printable(backend.application)!r}: details hidden (another user's)"
        ]
    wait = f"{backend.wait_event_type}:{backend.wait_event}" if backend.wait_event else "none"
    xact = human_duration(backend.xact_seconds) if backend.xact_seconds is not None else "none"
    since = human_duration(backend.state_seconds or 0)
    return [
        backend.identity,
        f"  {who(backend)} database {backend.database} state {backend.state} for {since}, "
        f"transaction open {xact}, wait event {wait}",
        f"  query: {shown(backend.query)}",
    ]


def hidden_note(activity: Activity, server: ServerInfo) -> str:
    """What the monitoring user cannot see, and how to let it."""
    count = len(activity.hidden)
    if not count:
        return ""
    sessions = "session" if count == 1 else "sessions"
    return (
        f"{count} {sessions} of other users hide their state and query: "
        f"grant pg_monitor to {server.user} to see them"
    )


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def _with_hidden(
    check: str, db: DbContext, found: list[Finding], calm: str, note: str
) -> list[Finding]:
    """The findings, then one on the whole server: OK saying all is calm, or UNKNOWN when
    other users' sessions could not be looked at."""
    if note:
        said = calm if not found else "besides those listed"
        return [*found, Finding(check, Status.UNKNOWN, db.label, f"{said}; {note}")]
    return found or [Finding(check, Status.OK, db.label, calm)]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.0f} ms"


# -- D1 reachability and authentication -----------------------------------------------------


async def _reachable(db: DbContext) -> list[Finding]:
    server = await db.server()
    first = next((t.seconds for t in db.timings if t.name == "server"), None)
    took = db.connect_seconds
    limit = db.thresholds.connect_seconds
    status = limit.grade(took)
    role = "a standby (in recovery)" if server.standby else "a primary"
    summary = (
        f"{server.user} logged in to {server.database} in {_ms(took)}: "
        f"PostgreSQL {server.version}, {role}"
    )
    if status is not Status.OK:
        summary += f"; connecting took over {limit.warn:g} s"
    if server.version_num < 130000:
        summary += "; versions before 13 are past end of life and some checks cannot read them"
    lines = [
        f"connect and authenticate: {_ms(took)}",
        f"first query: {_ms(first)}",
        f"server_version {server.version}, in recovery: {server.standby}",
        f"user {server.user}, pg_read_all_stats: {server.read_all_stats}",
    ]
    return [
        Finding("db.reachable", status, db.label, summary, (Evidence("connect", "\n".join(lines)),))
    ]


# -- D2 connections -------------------------------------------------------------------------


def _state(backend: Backend) -> str:
    return "hidden" if backend.hidden else (backend.state or "starting")


async def _connections(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    clients = activity.clients
    usable = server.usable
    percent = 100.0 * len(clients) / usable
    status = db.thresholds.connections.grade(percent)
    states = Counter(_state(b) for b in clients)
    by_state = ", ".join(f"{n} {state}" for state, n in states.most_common()) or "none"
    summary = f"{len(clients)} of {usable} connections in use ({percent:.0f} %): {by_state}"
    if status is not Status.OK:
        summary += f"; {max(usable - len(clients), 0)} left before only superusers can connect"
    if note := hidden_note(activity, server):
        summary += f"; {note}"
    reserved = f"superuser_reserved_connections {server.setting('superuser_reserved_connections')}"
    if "reserved_connections" in server.settings:
        reserved += f", reserved_connections {server.setting('reserved_connections')}"
    groups = Counter((b.user or "?", b.client or "?", printable(b.application)) for b in clients)
    lines = [
        f"max_connections {server.setting('max_connections')} minus {reserved}: "
        f"{usable} for ordinary users",
        "by state: " + by_state,
        "by user, client, application:",
        *(f"  {n:5}  {u}  {c}  {a!r}" for (u, c, a), n in groups.most_common(10)),
        f"left out: {_plural(activity.own, 'session')} of fleetdeck's own",
    ]
    evidence = (Evidence("pg_stat_activity, pg_settings", "\n".join(lines)),)
    return [Finding("db.connections", status, db.label, summary, evidence)]


# -- D3 idle in transaction, long queries, lock chains --------------------------------------


def _blocking(activity: Activity) -> dict[int, int]:
    return {chain.root_pid: len(chain.waiting) for chain in lock_chains(activity.backends)}


async def _idle_in_transaction(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.idle_in_transaction
    blocking = _blocking(activity)
    idle = [b for b in activity.clients if (b.state or "").startswith("idle in transaction")]
    found = []
    for b in sorted(idle, key=lambda b: -(b.state_seconds or 0)):
        status = limit.grade(b.state_seconds)
        if status is Status.OK:
            continue
        summary = (
            f"pid {b.pid} ({who(b)}) has been idle in a transaction for "
            f"{human_duration(b.state_seconds or 0)}; the transaction has been open "
            f"{human_duration(b.xact_seconds or 0)}"
        )
        if (b.state or "").endswith("(aborted)"):
            summary += "; it failed and waits for a ROLLBACK"
        if waiting := blocking.get(b.pid):
            summary += f"; {_plural(waiting, 'session')} wait on its locks"
        evidence = (Evidence("pg_stat_activity", "\n".join(backend_lines(b))),)
        found.append(Finding("db.idle_in_transaction", status, b.target, summary, evidence))
    calm = f"no session has been idle in a transaction for {span(limit.warn)} or more"
    if brief := len(idle) - len(found):
        calm += f" ({brief} briefly)"
    return _with_hidden("db.idle_in_transaction", db, found, calm, hidden_note(activity, server))


async def _long_queries(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.long_query
    blocking = _blocking(activity)
    active = [b for b in activity.clients if b.state == "active"]
    found = []
    for b in sorted(active, key=lambda b: -(b.query_seconds or 0)):
        status = limit.grade(b.query_seconds)
        if status is Status.OK:
            continue
        summary = (
            f"pid {b.pid} ({who(b)}) has been running one statement for "
            f"{human_duration(b.query_seconds or 0)}"
        )
        if b.wait_event:
            summary += f", waiting on {b.wait_event_type} {b.wait_event}"
        if waiting := blocking.get(b.pid):
            summary += f"; {_plural(waiting, 'session')} wait on its locks"
        summary += f": {shown(b.query, 80)}"
        evidence = (Evidence("pg_stat_activity", "\n".join(backend_lines(b))),)
        found.append(Finding("db.long_queries", status, b.target, summary, evidence))
    calm = f"no statement has run for {span(limit.warn)} or more"
    calm += f" ({_plural(len(active), 'active session')})"
    return _with_hidden("db.long_queries", db, found, calm, hidden_note(activity, server))


def _root(chain: LockChain) -> str:
    root = chain.root
    if chain.root_pid == 0:
        return "a prepared transaction (see pg_prepared_xacts)"
    if root is None:
        return f"pid {chain.root_pid} (not listed: fleetdeck's own, or it just ended)"
    if root.hidden:
        return f"pid {root.pid} ({root.user}: another user's session, its state is hidden)"
    xact = f", transaction open {human_duration(root.xact_seconds)}" if root.xact_seconds else ""
    return f"pid {root.pid} ({who(root)}, {root.state}{xact})"


def _chain_text(chain: LockChain) -> str:
    lines = backend_lines(chain.root) if chain.root else [_root(chain)]
    lines.append(f"waiting behind it ({len(chain.direct)} directly):")
    for waiter in chain.waiting:
        on = ", ".join(str(pid) for pid in waiter.blocked_by)
        lines.append(
            f"  {waiter.identity} ({who(waiter)}) waits on pid {on} for "
            f"{human_duration(waiter.waiting or 0)}: {shown(waiter.query, 120)}"
        )
    return "\n".join(lines)


async def _lock_chain(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.lock_wait
    found, brief, unseen = [], 0, 0
    for chain in lock_chains(activity.backends):
        status = limit.grade(chain.longest_wait)
        if status is Status.OK:
            brief += len(chain.waiting)
            unseen += sum(1 for waiter in chain.waiting if waiter.hidden)
            continue
        total, direct = len(chain.waiting), len(chain.direct)
        summary = f"{_root(chain)} blocks {_plural(total, 'session')}"
        summary += f" ({direct} directly)" if direct != total else ""
        summary += f"; the longest has waited {human_duration(chain.longest_wait)}"
        target = f"pid {chain.root_pid}" if chain.root_pid else "prepared transaction"
        evidence = (Evidence("pg_stat_activity, pg_blocking_pids", _chain_text(chain)),)
        found.append(Finding("db.lock_chain", status, target, summary, evidence))
    calm = f"no session has waited on another's lock for {span(limit.warn)} or more"
    calm += f" ({brief} waiting briefly)" if brief else ""
    note = ""
    if unseen:  # the chain is known (pg_blocking_pids), how long they waited is not
        note = (
            f"{_plural(unseen, 'session')} of other users wait on locks and hide for how "
            f"long: grant pg_monitor to {server.user} to see it"
        )
    return _with_hidden("db.lock_chain", db, found, calm, note)


# -- D5 dead tuples and vacuum, wraparound --------------------------------------------------


async def _vacuum(db: DbContext) -> list[Finding]:
    server = await db.server()
    th = db.thresholds
    if server.settings.get("track_counts") == "off":
        said = "track_counts is off: PostgreSQL counts no dead rows, and autovacuum cannot run"
        return [Finding("db.vacuum", Status.WARN, db.label, said)]
    tables, matching = await read_dead_tables(db, th.dead_rows, th.dead_ratio.warn, th.top)
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
        found.append(
            Finding(
                "db.vacuum", status, t.qualified, summary, (Evidence("pg_stat_user_tables", text),)
            )
        )
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
        f"{_plural(len(slots), 'replication slot')}, {inactive} inactive"
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
    said = [f"{_plural(len(rows), 'standby')} (replay at most {human_duration(worst_lag)} behind)"]
    said = said if rows else ["no standbys"]
    if hidden:
        said.append(f"{hidden} hide their state: grant pg_monitor to see it")
        found.append(Finding("db.replication", Status.UNKNOWN, db.label, "; ".join(said)))
    return found, said


async def _as_standby(db: DbContext) -> list[Finding]:
    (r,) = await db.fetch(RECEIVER)
    delay = r["delay"] or 0.0
    status = db.thresholds.replication_lag.grade(delay)
    problems = []
    if r["receiver"] is None:
        problems.append("no WAL receiver: not streaming from a primary (archive only, or cut off)")
    if r["paused"]:
        problems.append("replay is paused: SELECT pg_wal_replay_resume() resumes it")
    if problems:
        status = worst([status, Status.WARN])
    summary = (
        f"standby of {r['sender'] or '?'} (receiver {r['receiver'] or 'not running'}): replay "
        f"{human_duration(delay)} behind, {human_bytes(r['behind_bytes'] or 0)} received and "
        "not yet replayed"
    )
    summary = "; ".join([summary, *problems])
    text = ", ".join(f"{key} {value}" for key, value in r.items())
    evidence = (Evidence("pg_last_wal_receive_lsn, pg_stat_wal_receiver", text),)
    return [Finding("db.replication", status, db.label, summary, evidence)]


# -- D4 slowest statements ------------------------------------------------------------------

ENABLE = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart "
    "PostgreSQL, then run CREATE EXTENSION pg_stat_statements in {db}"
)


async def _slow_statements(db: DbContext) -> list[Finding]:
    server = await db.server()
    preload = server.settings.get("shared_preload_libraries")
    loaded = None if preload is None else "pg_stat_statements" in preload.replace('"', "")
    installed = await db.fetch(EXTENSION)
    if loaded is False or not installed:
        said = "pg_stat_statements is " + ("not loaded" if loaded is False else "not installed")
        said += ", so the slowest statements cannot be listed: "
        if loaded:
            said += f"run CREATE EXTENSION pg_stat_statements in {server.database} (it is loaded)"
        else:
            said += ENABLE.format(db=server.database)
        return [Finding("db.slow_statements", Status.UNKNOWN, db.label, said)]
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
        said = (
            f"pg_stat_statements is installed but not loaded: {ENABLE.format(db=server.database)}"
        )
        return [Finding("db.slow_statements", Status.UNKNOWN, db.label, said)]
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
            f"{_plural(len(slow), 'statement')} take {limit.warn:g} ms or more on average; the "
            f"slowest: {top.mean_ms:,.0f} ms over {_plural(top.calls, 'call')}: {_text(top, 80)}"
        )
    else:
        summary = (
            f"the slowest statement averages {top.mean_ms:,.1f} ms ({_plural(top.calls, 'call')});"
            f" the most time in all: {most.total_ms / 1000:,.1f} s, {_text(most, 60)}"
        )
    hidden = len(
        {(s.user, s.database, s.calls, s.total_ms) for s in by_total + by_mean if s.hidden}
    )
    if hidden:
        summary += (
            f"; {_plural(hidden, 'statement')} of other users "
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


# -- D6 indexes, D7 sizes -------------------------------------------------------------------

ESTIMATED = " (sizes estimated from pg_class.relpages: a relation is locked exclusively now)"


async def _sized(
    db: DbContext, template: sql.SQL, key: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """A query sizing a few relations exactly; behind an exclusive lock (pg_relation_size
    takes AccessShare and lock_timeout gives up at once), again from relpages estimates."""
    exact, estimate = (
        (SIZE_EXACT, SIZE_ESTIMATE) if key == "size" else (TOTAL_EXACT, TOTAL_ESTIMATE)
    )
    try:
        return await db.fetch(template.format(**{key: exact}), params), False
    except PgQueryError as error:
        if error.failure is not PgFailure.LOCK_TIMEOUT:
            raise
    return await db.fetch(template.format(**{key: estimate}), params), True


async def _indexes(db: DbContext) -> list[Finding]:
    server = await db.server()
    th = db.thresholds
    invalid_rows, guess1 = await _sized(db, INVALID_INDEXES, "size", {"limit": 50})
    unused_rows, guess2 = await _sized(db, UNUSED_INDEXES, "size", {"limit": th.top})
    estimated = ESTIMATED if guess1 or guess2 else ""
    found, building = [], []
    for index in map(index_from_row, invalid_rows):
        if index.building:
            building.append(index.qualified)
            continue
        summary = (
            f"index {index.qualified} on {index.schema}.{index.table} is invalid (a CREATE or "
            "REINDEX ... CONCURRENTLY that failed leaves one): every write still updates it and "
            "no query uses it; REINDEX INDEX CONCURRENTLY rebuilds it"
        )
        found.append(_index_finding(index, Status.WARN, summary, "pg_index", estimated))
    since = (
        f"since statistics were reset {ago(server.stats_age)}"
        if server.stats_age is not None
        else "since statistics began"
    )
    unused = [index_from_row(r) for r in unused_rows if (r["bytes"] or 0) >= th.unused_index_bytes]
    for index in unused:
        summary = (
            f"index {index.qualified} on {index.schema}.{index.table} "
            f"({human_bytes(index.bytes)}) has not been used by any query {since}: it slows "
            "every write and takes space"
        )
        summary += (
            " (these counts are this standby's: the primary may use it)" if server.standby else ""
        )
        found.append(_index_finding(index, Status.WARN, summary, "pg_stat_user_indexes", estimated))
    if found:
        return found
    matching = unused_rows[0]["matching"] if unused_rows else 0
    calm = f"no invalid index; no unused index of {human_bytes(th.unused_index_bytes)} or more"
    calm += f" ({_plural(matching, 'smaller index')} never scanned {since})" if matching else ""
    calm += f"; being built now: {', '.join(building)}" if building else ""
    return [Finding("db.indexes", Status.OK, db.label, calm + estimated)]


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
    summary = f"database {server.database} is {human_bytes(mine['bytes'])}" if mine else ""
    summary = summary or f"the size of database {server.database} cannot be read"
    if tables:
        big = tables[0]
        summary += (
            f"; its largest table is {big['schemaname']}.{big['relname']} at "
            f"{human_bytes(big['bytes'])} with its indexes and TOAST"
        )
    estimated = ESTIMATED if guess else ""
    evidence = (
        Evidence(
            "pg_database_size",
            "\n".join(f"{human_bytes(r['bytes']):>10}  {r['datname']}" for r in databases),
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


# -- the table ------------------------------------------------------------------------------

REACHABLE = DbCheck("db.reachable", "Reachable and logged in", _reachable)
CONNECTIONS = DbCheck("db.connections", "Connections against max_connections", _connections)
IDLE_IN_TRANSACTION = DbCheck(
    "db.idle_in_transaction", "Sessions idle in a transaction", _idle_in_transaction
)
LONG_QUERIES = DbCheck("db.long_queries", "Long-running queries", _long_queries)
LOCK_CHAIN = DbCheck("db.lock_chain", "Lock chains and their root blockers", _lock_chain)
VACUUM = DbCheck("db.vacuum", "Dead rows and vacuum", _vacuum)
WRAPAROUND_CHECK = DbCheck("db.wraparound", "Transaction ID wraparound", _wraparound)
REPLICATION = DbCheck("db.replication", "Replication lag and slots", _replication)
SLOW_STATEMENTS = DbCheck("db.slow_statements", "Slowest statements", _slow_statements)
INDEXES = DbCheck("db.indexes", "Unused and invalid indexes", _indexes)
SIZE = DbCheck("db.size", "Database and table sizes", _size)

DB_CHECKS: tuple[DbCheck, ...] = (
    REACHABLE,
    CONNECTIONS,
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
