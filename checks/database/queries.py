"""What the database checks read: the SQL, and the plain data each query gives.

Every query is cheap on a big cluster and takes no lock a writer could wait on: statistics
views and catalogs only (AccessShare on catalogs), `pg_blocking_pids` only for sessions that
wait on a lock, and `pg_relation_size` only for the few relations a `LIMIT` picked by
`pg_class.relpages` (it takes AccessShare on each; behind a queued exclusive lock the
session's short lock_timeout gives up, and `SIZE_ESTIMATE` reads relpages instead).

Every query starts with a `/* fleetdeck: ... */` comment, so pg_stat_statements can leave
fleetdeck's own statements out (`MINE`), and a log line says who sent it. Sessions that are
fleetdeck's own (application_name `fleetdeck`, and the reading session itself) are flagged
in `ACTIVITY` and never reach a list or a count. Identifiers go through `sql.Identifier`,
values through parameters.

The readers take any `Fetcher` (a `PgSession`, or one that times each query) and return
frozen dataclasses that the fixes reuse: a `Backend` carries pid AND backend_start (a pid is
reused), a `TableStat` or `IndexStat` its schema, name and oid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql

from fleetdeck.checks.model import printable
from fleetdeck.hosts.postgres.session import APPLICATION_NAME

MINE = "/* fleetdeck%"
"""How fleetdeck's own statements begin (a LIKE pattern)."""
QUERY_CHARS = 1000
"""Query text read per session or statement; findings show less."""
SETTINGS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",  # 16 and later
    "shared_preload_libraries",
    "autovacuum",
    "track_counts",
    "track_activities",
    "autovacuum_freeze_max_age",
)

SERVER = """/* fleetdeck: server */ SELECT current_setting('server_version') AS version,
 current_setting('server_version_num')::int AS version_num, pg_is_in_recovery() AS standby,
 current_user AS username, current_database() AS dbname,
 pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
 (SELECT json_object_agg(name, setting) FROM pg_settings WHERE name = ANY(%(names)s))
   AS settings,
 (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
   IS NOT NULL AS stats_were_reset,
 (SELECT stats_reset FROM pg_stat_archiver) > pg_postmaster_start_time() AS stats_discarded,
 extract(epoch FROM now() - coalesce((SELECT stats_reset FROM pg_stat_database
   WHERE datname = current_database()),
   greatest(pg_postmaster_start_time(), (SELECT stats_reset FROM pg_stat_archiver))))::float8
   AS stats_age"""
"""`stats_age`: how far back this database's usage counters (idx_scan ...) go. PostgreSQL 15
keeps them across a clean restart and discards them after a crash; pg_stat_reset() and
pg_stat_reset_single_table_counters() set pg_stat_database.stats_reset. When that is null
(never reset), the counters go back at least to the server's start (pg_postmaster_start_time)
unless a crash discarded them since: a backend that crashes makes the postmaster reinitialize
without restarting (its start time stays), and the crash recovery that follows discards every
counter and sets the shared ones' stats_reset, pg_stat_archiver's among them, to that moment.
So the later of the two is the bound: a lower one, which can only make "unused" said later,
never too soon (pg_stat_reset_shared('archiver') makes it later still)."""

ACTIVITY = """/* fleetdeck: activity */ SELECT pid, backend_start, backend_type, usename,
 application_name, host(client_addr) AS client_addr, client_port, datname, state,
 wait_event_type, wait_event, left(query, %(chars)s) AS query, xact_start, query_start,
 extract(epoch FROM now() - xact_start)::float8 AS xact_seconds,
 extract(epoch FROM now() - query_start)::float8 AS query_seconds,
 extract(epoch FROM now() - state_change)::float8 AS state_seconds,
 backend_type IS NULL AS hidden,
 CASE WHEN wait_event_type = 'Lock' OR backend_type IS NULL
      THEN pg_blocking_pids(pid) END AS blocked_by,
 pid = pg_backend_pid() OR application_name = %(me)s AS own
FROM pg_stat_activity"""
"""One row per server process. Another user's session shows only pid, user, database and
application_name without pg_read_all_stats (`hidden`); its blockers are still asked for."""

HELD_LOCKS = """/* fleetdeck: held locks */ SELECT h.pid AS holder, w.pid AS waiter,
 h.mode AS holds, w.mode AS wants,
 CASE w.locktype WHEN 'relation' THEN 'table ' || w.relation::regclass::text
  WHEN 'tuple' THEN 'a row of ' || w.relation::regclass::text
  WHEN 'transactionid' THEN 'its transaction ' || w.transactionid || ' (rows it changed)'
  WHEN 'virtualxid' THEN 'its virtual transaction ' || w.virtualxid
  ELSE w.locktype END AS object
FROM pg_locks w JOIN pg_locks h ON h.granted AND h.pid <> w.pid AND h.locktype = w.locktype
 AND h.database IS NOT DISTINCT FROM w.database AND h.relation IS NOT DISTINCT FROM w.relation
 AND h.page IS NOT DISTINCT FROM w.page AND h.tuple IS NOT DISTINCT FROM w.tuple
 AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid
 AND h.transactionid IS NOT DISTINCT FROM w.transactionid
 AND h.classid IS NOT DISTINCT FROM w.classid AND h.objid IS NOT DISTINCT FROM w.objid
 AND h.objsubid IS NOT DISTINCT FROM w.objsubid
WHERE NOT w.granted AND h.pid = ANY(%(roots)s) ORDER BY h.pid, w.pid"""
"""What each root blocker holds that a session waits for (read only when there are chains;
pg_locks shows every session's locks to any user)."""

BACKEND = """/* fleetdeck: backend */ SELECT backend_start FROM pg_stat_activity
WHERE pid = %(pid)s"""

DEAD_TABLES = """/* fleetdeck: dead tuples */ SELECT s.relid::int8 AS oid, s.schemaname,
 s.relname, s.n_live_tup, s.n_dead_tup,
 extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 AS vacuumed,
 extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 AS analyzed,
 c.reloptions, count(*) OVER () AS matching
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.n_dead_tup >= %(rows)s
 AND s.n_dead_tup * 100.0 >= %(ratio)s * greatest(s.n_live_tup + s.n_dead_tup, 1)
ORDER BY s.n_dead_tup DESC LIMIT %(limit)s"""

SIZE_EXACT = sql.SQL("pg_relation_size(c.oid)")
SIZE_ESTIMATE = sql.SQL("c.relpages::int8 * current_setting('block_size')::int8")
_LOCKED = """EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'relation'
  AND l.mode = 'AccessExclusiveLock' AND l.database = (SELECT oid FROM pg_database
   WHERE datname = current_database())
  AND (l.relation IN (c.oid, c.reltoastrelid)
   OR l.relation IN (SELECT indexrelid FROM pg_index WHERE indrelid = c.oid)
   OR l.relation IN (SELECT indrelid FROM pg_index WHERE indexrelid = c.oid)))"""
"""An exclusive lock held or asked for on the relation, its TOAST, its indexes or (for an
index) its table: sizing it exactly would queue behind that lock, so it is estimated."""
TOTAL_EXACT = sql.SQL("pg_total_relation_size(c.oid)")
TOTAL_ESTIMATE = sql.SQL(
    "(c.relpages::int8 + coalesce(toast.relpages, 0)) * current_setting('block_size')::int8"
)
GUESSED = sql.SQL(_LOCKED)
SIZE_GUARDED = sql.SQL("CASE WHEN {locked} THEN {estimate} ELSE {exact} END").format(
    locked=sql.SQL(_LOCKED), estimate=SIZE_ESTIMATE, exact=SIZE_EXACT
)
TOTAL_GUARDED = sql.SQL("CASE WHEN {locked} THEN {estimate} ELSE {exact} END").format(
    locked=sql.SQL(_LOCKED), estimate=TOTAL_ESTIMATE, exact=TOTAL_EXACT
)

UNUSED_INDEXES = sql.SQL("""/* fleetdeck: unused indexes */ SELECT u.*,
 {size}::int8 AS bytes, {guessed} AS guessed
FROM (SELECT s.indexrelid::int8 AS oid, s.schemaname, s.relname AS table_name,
  s.indexrelname AS index_name, c.relpages, count(*) OVER () AS matching,
  CASE WHEN current_setting('track_commit_timestamp')::bool
   THEN extract(epoch FROM now() - pg_xact_commit_timestamp(c.xmin))::float8 END AS built
 FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
 JOIN pg_class c ON c.oid = s.indexrelid
 WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisexclusion
 ORDER BY c.relpages DESC LIMIT %(limit)s) u JOIN pg_class c ON c.oid = u.oid::oid
ORDER BY bytes DESC""")

INVALID_INDEXES = sql.SQL("""/* fleetdeck: invalid indexes */ SELECT
 c.oid::int8 AS oid, n.nspname AS schemaname, t.relname AS table_name, c.relname AS index_name,
 {size}::int8 AS bytes, {guessed} AS guessed,
 EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid) AS building
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
 JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid ORDER BY c.relpages DESC LIMIT %(limit)s""")

EXTENSION = """/* fleetdeck: extension */ SELECT n.nspname AS schema FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"""

STATEMENTS = sql.SQL("""/* fleetdeck: statements */ WITH s AS (
 SELECT s.queryid, s.userid::regrole::text AS username, d.datname, s.calls, s.rows,
  s.{total}::float8 AS total_ms, s.{mean}::float8 AS mean_ms, left(s.query, %(chars)s) AS query
 FROM {view} s LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.query NOT LIKE %(mine)s)
(SELECT 'total' AS ranked, * FROM s ORDER BY total_ms DESC LIMIT %(limit)s)
UNION ALL (SELECT 'mean', * FROM s ORDER BY mean_ms DESC LIMIT %(limit)s)""")

WRAPAROUND = """/* fleetdeck: wraparound */ SELECT datname, age(datfrozenxid)::int8 AS xid_age,
 mxid_age(datminmxid)::int8 AS mxid_age FROM pg_database ORDER BY 2 DESC"""

_LSN_NOW = (
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"
)
STANDBYS = f"""/* fleetdeck: standbys */ SELECT pid, application_name,
 host(client_addr) AS client_addr, state, sync_state,
 extract(epoch FROM write_lag)::float8 AS write_lag,
 extract(epoch FROM flush_lag)::float8 AS flush_lag,
 extract(epoch FROM replay_lag)::float8 AS replay_lag,
 pg_wal_lsn_diff({_LSN_NOW}, replay_lsn)::float8 AS behind_bytes
FROM pg_stat_replication ORDER BY application_name"""

SLOTS = f"""/* fleetdeck: slots */ SELECT slot_name, slot_type, database, active, wal_status,
 pg_wal_lsn_diff({_LSN_NOW}, restart_lsn)::float8 AS retained
FROM pg_replication_slots ORDER BY slot_name"""

RECEIVER = """/* fleetdeck: standby */ SELECT pg_is_wal_replay_paused() AS paused,
 pg_last_wal_receive_lsn()::text AS received, pg_last_wal_replay_lsn()::text AS replayed,
 greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8
  AS behind_bytes,
 extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS last_commit,
 (SELECT coalesce(status, 'hidden: grant pg_monitor to see it') FROM pg_stat_wal_receiver)
  AS receiver,
 (SELECT sender_host FROM pg_stat_wal_receiver) AS sender"""
"""A standby's WAL: received (streamed and flushed here) and replayed. Received past
replayed is the backlog; the time since the last replayed commit is NOT lag (a primary that
is quiet, or busy in one long transaction, commits nothing for a while). A user without
pg_read_all_stats sees the receiver's row (pid) with its details null: hidden, not absent."""

REPLAY_SINCE = """/* fleetdeck: replay progress */ SELECT
 pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %(replayed)s::pg_lsn)::float8 AS advanced,
 pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %(received)s::pg_lsn)::float8 AS past_received"""
"""How far replay moved since a first look, and whether it passed what was received then."""

DATABASE_SIZES = """/* fleetdeck: database sizes */ SELECT datname,
 CASE WHEN datname = current_database()
  THEN (SELECT sum(relpages)::int8 * current_setting('block_size')::int8 FROM pg_class)
  ELSE pg_database_size(oid)::int8 END AS bytes,
 datname = current_database() AS estimated
FROM pg_database WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')
ORDER BY bytes DESC"""
"""pg_database_size stats every file of a database: on one with 10,000 tables that is most
of the wizard's time. The database the checks read is sized from pg_class.relpages instead
(what VACUUM and ANALYZE last counted), and said to be an estimate."""

LARGEST_TABLES = sql.SQL("""/* fleetdeck: largest tables */ SELECT t.*,
 {total}::int8 AS bytes, {guessed} AS guessed
FROM (SELECT c.oid::int8 AS oid, n.nspname AS schemaname, c.relname,
  c.reltuples::int8 AS rows_estimate
 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 LEFT JOIN pg_class toast ON toast.oid = c.reltoastrelid
 WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_(catalog$|toast|temp)'
 ORDER BY c.relpages + coalesce(toast.relpages, 0) DESC LIMIT %(limit)s) t
 JOIN pg_class c ON c.oid = t.oid::oid LEFT JOIN pg_class toast ON toast.oid = c.reltoastrelid
ORDER BY bytes DESC""")


class Fetcher(Protocol):
    """Anything that runs one statement and gives its rows as dicts (a `PgSession`)."""

    async def fetch(
        self, query: Any, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    version_num: int
    standby: bool
    user: str
    database: str
    read_all_stats: bool
    settings: Mapping[str, str]
    stats_age: float | None
    """Seconds this database's usage counters go back (see `SERVER`)."""
    stats_were_reset: bool = False
    """Whether that is since pg_stat_reset (else: at least since the server started)."""
    stats_discarded: bool = False
    """Whether, never reset, they were discarded since the server started (crash recovery)."""

    def setting(self, name: str, default: int = 0) -> int:
        value = self.settings.get(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else default

    @property
    def reserved(self) -> int:
        """Slots ordinary users cannot take (superuser_reserved + reserved on 16+)."""
        return self.setting("superuser_reserved_connections") + self.setting("reserved_connections")

    @property
    def usable(self) -> int:
        return max(self.setting("max_connections") - self.reserved, 1)


@dataclass(frozen=True, slots=True)
class Backend:
    """One server process as pg_stat_activity shows it; (pid, backend_start) is its identity."""

    pid: int
    backend_start: datetime | None
    backend_type: str | None
    user: str | None
    application: str
    client: str | None
    database: str | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query: str
    xact_seconds: float | None
    query_seconds: float | None
    state_seconds: float | None
    blocked_by: tuple[int, ...] = ()
    hidden: bool = False
    """Another user's session, its details hidden (no pg_read_all_stats)."""
    xact_start: datetime | None = None
    query_start: datetime | None = None
    """When its transaction and its (last) statement began: a cancel is pinned on the
    statement, a terminate on the transaction, not only on the session."""

    @property
    def target(self) -> str:
        return f"pid {self.pid}"

    @property
    def identity(self) -> str:
        """What a fix pins: the pid and the exact start of the process holding it."""
        start = self.backend_start.isoformat() if self.backend_start else "hidden"
        return f"pid {self.pid} backend_start {start}"

    @property
    def is_client(self) -> bool:
        """A client connection (counts against max_connections); a hidden one is taken for
        one when it has a user and a database."""
        if self.hidden:
            return self.user is not None and self.database is not None
        return self.backend_type == "client backend"

    @property
    def waiting(self) -> float | None:
        """Seconds it has waited on a lock (since its statement began), or None."""
        return self.query_seconds if self.wait_event_type == "Lock" else None


@dataclass(frozen=True, slots=True)
class Activity:
    """Every process but fleetdeck's own; `own` counts those left out."""

    backends: tuple[Backend, ...]
    own: int

    @property
    def clients(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.backends if b.is_client)

    @property
    def hidden(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.clients if b.hidden)


@dataclass(frozen=True, slots=True)
class LockChain:
    """A root blocker (waiting on no lock itself) and every session waiting behind it."""

    root_pid: int
    root: Backend | None
    """None: not in the list (fleetdeck's own, gone, or pid 0: a prepared transaction)."""
    direct: tuple[Backend, ...]
    waiting: tuple[Backend, ...]
    """Everyone behind it, directly or through others, in the order they are reached."""

    @property
    def longest_wait(self) -> float:
        return max((b.waiting or 0.0 for b in self.waiting), default=0.0)


@dataclass(frozen=True, slots=True)
class TableStat:
    oid: int
    schema: str
    name: str
    live: int
    dead: int
    vacuum_seconds: float | None
    analyze_seconds: float | None
    autovacuum_off: bool

    @property
    def qualified(self) -> str:
        return qualify(self.schema, self.name)

    @property
    def dead_ratio(self) -> float:
        return 100.0 * self.dead / max(self.live + self.dead, 1)


@dataclass(frozen=True, slots=True)
class IndexStat:
    oid: int
    schema: str
    table: str
    name: str
    bytes: int
    building: bool = False
    built: float | None = None
    """Seconds since the index was created or rebuilt, when track_commit_timestamp tells."""

    @property
    def qualified(self) -> str:
        return qualify(self.schema, self.name)


@dataclass(frozen=True, slots=True)
class Statement:
    queryid: int | None
    user: str | None
    database: str | None
    calls: int
    total_ms: float
    mean_ms: float
    query: str

    @property
    def hidden(self) -> bool:
        return self.query == "<insufficient privilege>"


def statement_from_row(row: Mapping[str, Any]) -> Statement:
    return Statement(
        queryid=row.get("queryid"),
        user=row.get("username"),
        database=row.get("datname"),
        calls=int(row["calls"]),
        total_ms=float(row["total_ms"]),
        mean_ms=float(row["mean_ms"]),
        query=row.get("query") or "",
    )


# -- readers --------------------------------------------------------------------------------


async def read_server(db: Fetcher) -> ServerInfo:
    (row,) = await db.fetch(SERVER, {"names": list(SETTINGS)})
    return ServerInfo(
        version=row["version"],
        version_num=row["version_num"],
        standby=row["standby"],
        user=row["username"],
        database=row["dbname"],
        read_all_stats=bool(row["read_all_stats"]),
        settings={str(k): str(v) for k, v in (row["settings"] or {}).items()},
        stats_age=_age(row["stats_age"]),
        stats_were_reset=bool(row["stats_were_reset"]),
        stats_discarded=bool(row["stats_discarded"]),
    )


def backend_from_row(row: Mapping[str, Any]) -> Backend:
    port = row.get("client_port")
    client = row.get("client_addr") or ("local socket" if port == -1 else None)
    return Backend(
        pid=int(row["pid"]),
        backend_start=row.get("backend_start"),
        backend_type=row.get("backend_type"),
        user=row.get("usename"),
        application=row.get("application_name") or "",
        client=client,
        database=row.get("datname"),
        state=row.get("state"),
        wait_event_type=row.get("wait_event_type"),
        wait_event=row.get("wait_event"),
        query=row.get("query") or "",
        xact_seconds=_age(row.get("xact_seconds")),
        query_seconds=_age(row.get("query_seconds")),
        state_seconds=_age(row.get("state_seconds")),
        blocked_by=tuple(int(p) for p in row.get("blocked_by") or ()),
        hidden=bool(row.get("hidden")),
        xact_start=row.get("xact_start"),
        query_start=row.get("query_start"),
    )


async def read_activity(db: Fetcher) -> Activity:
    """Every server process but fleetdeck's own, with the pids each lock waiter waits on."""
    rows = await db.fetch(ACTIVITY, {"chars": QUERY_CHARS, "me": APPLICATION_NAME})
    own = sum(1 for row in rows if row["own"])
    return Activity(tuple(backend_from_row(row) for row in rows if not row["own"]), own)


async def read_held(db: Fetcher, roots: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """What each root blocker holds that others wait for: `ExclusiveLock on table
    public.orders (pid 812 wants AccessShareLock)`, by the root's pid."""
    if not roots:
        return {}
    rows = await db.fetch(HELD_LOCKS, {"roots": list(roots)})
    held: dict[int, dict[str, list[str]]] = {}
    for r in rows:
        what = f"{r['holds']} on {r['object']}"
        held.setdefault(r["holder"], {}).setdefault(what, []).append(
            f"pid {r['waiter']} wants {r['wants']}"
        )
    return {
        pid: tuple(f"{what} ({', '.join(wanted)})" for what, wanted in locks.items())
        for pid, locks in held.items()
    }


async def backend_start(db: Fetcher, pid: int) -> datetime | None:
    """The start of the process that has `pid` now (None: no such process, or hidden): a
    fix's pin compares it with the finding's."""
    rows = await db.fetch(BACKEND, {"pid": pid})
    return rows[0]["backend_start"] if rows else None


def lock_chains(backends: Sequence[Backend]) -> list[LockChain]:
    """The root blockers among `backends` (processes that block others and wait on no lock
    themselves), each with the sessions behind it, most waiters first. A waiting cycle
    (a deadlock about to be broken) has no root and is left out."""
    known = {b.pid: b for b in backends}
    behind: dict[int, list[Backend]] = {}
    for backend in backends:
        for blocker in dict.fromkeys(backend.blocked_by):
            behind.setdefault(blocker, []).append(backend)
    chains = []
    for pid, direct in behind.items():
        root = known.get(pid)
        if root is not None and root.blocked_by:
            continue  # it waits too: it is in someone else's chain
        seen: dict[int, Backend] = {}
        todo = list(direct)
        while todo:
            waiter = todo.pop(0)
            if waiter.pid not in seen and waiter.pid != pid:
                seen[waiter.pid] = waiter
                todo += behind.get(waiter.pid, [])
        chains.append(LockChain(pid, root, tuple(direct), tuple(seen.values())))
    return sorted(chains, key=lambda c: (-len(c.waiting), -c.longest_wait, c.root_pid))


async def read_dead_tables(
    db: Fetcher, rows: int, ratio: float, limit: int
) -> tuple[list[TableStat], int]:
    """Tables with at least `rows` dead rows making at least `ratio` % of them, most dead
    rows first, and how many tables match in all."""
    found = await db.fetch(DEAD_TABLES, {"rows": rows, "ratio": ratio, "limit": limit})
    tables = [
        TableStat(
            oid=r["oid"],
            schema=r["schemaname"],
            name=r["relname"],
            live=r["n_live_tup"],
            dead=r["n_dead_tup"],
            vacuum_seconds=_age(r["vacuumed"]),
            analyze_seconds=_age(r["analyzed"]),
            autovacuum_off=_autovacuum_off(r["reloptions"] or ()),
        )
        for r in found
    ]
    return tables, (found[0]["matching"] if found else 0)


def _autovacuum_off(options: Sequence[str]) -> bool:
    values = dict(option.partition("=")[::2] for option in options)
    return values.get("autovacuum_enabled", "on").lower() in ("false", "off", "no", "0", "f", "n")


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def qualify(schema: str, name: str) -> str:
    """`schema.name` as psql shows it: a name that needs quotes is quoted (so `"a.b".c` and
    `a."b.c"` stay two names), and a control character, a line break too, shows as an
    escape: a table's name never writes a line of its own into a confirmation."""
    return f"{_quoted(schema)}.{_quoted(name)}"


def _quoted(name: str) -> str:
    text = name if _PLAIN.fullmatch(name) else '"' + name.replace('"', '""') + '"'
    return printable(text, one_line=True)


def index_from_row(row: Mapping[str, Any]) -> IndexStat:
    return IndexStat(
        oid=row["oid"],
        schema=row["schemaname"],
        table=row["table_name"],
        name=row["index_name"],
        bytes=row["bytes"] or 0,
        building=bool(row.get("building")),
        built=_age(row.get("built")),
    )


def _age(value: Any) -> float | None:
    """Seconds since a moment, never below 0 (another session's start may follow ours)."""
    return None if value is None else max(float(value), 0.0)
