"""The database wizard's own load on a crowded server, next to check_postgres.

Starts a PostgreSQL of its own (tests/pgserver.py: initdb in a temporary directory,
pg_stat_statements preloaded, max_connections 300, log_lock_waits on with a 10 ms
deadlock_timeout), fills it with --tables tables (10,000: a primary key each, a second index
on every tenth, a few rows each, VACUUM ANALYZE), a few big ones (an unused index of more
than 10 MiB), three with dead rows and autovacuum off, an invalid index and an unused
replication slot. It restarts the server, drops the page cache, and holds --sessions client
sessions open (200): idle ones, idle in transaction, pg_sleep, a row-lock chain, and a
"migration" left open holding ACCESS EXCLUSIVE locks with sessions queued behind it. Then:

1. the real database wizard (`WizardRun(DATABASE_WIZARD, ...)` on a `DbLink` as the
   pg_monitor user), --runs times (the first cold, the rest warm): the sum of its queries'
   times (`DbLink.timings`), per query, and the wall time of the whole run;
2. whether any of its queries waited on a lock: a thread polls pg_stat_activity and pg_locks
   every --interval seconds (5 ms; 0 turns it off) for fleetdeck's active backends, counting
   what each waits on and any lock it has asked for and not been granted; the server log's
   lock-wait lines (log_lock_waits) from its sessions; and the size queries that gave up at
   lock_timeout and asked again for estimates. --locked says what the open migration locks:
   the largest table and its unused index (which the wizard sizes), or a small table;
3. the peer: check_postgres's nearest actions for the same steps against the same server and
   sessions, --peer-rounds times, each bounded by its own --timeout (--peer-timeout, 10 s,
   its default); the same sampler watches its psql sessions.

    .venv/bin/python benchmarks/db_wizard.py                 # as root: about 2 minutes
    .venv/bin/python benchmarks/db_wizard.py --tables 2000 --locked small --json

Needs PostgreSQL's server (apt-get install postgresql) and check_postgres (apt-get install
check-postgres). The server, its sessions and its directory are removed at the end, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # fleetdeck itself, and tests/pgserver.py

import psycopg  # noqa: E402

from fleetdeck.checks.config import Config  # noqa: E402
from fleetdeck.checks.database.link import DbLink  # noqa: E402
from fleetdeck.checks.database.maintenance import ESTIMATED  # noqa: E402
from fleetdeck.checks.database.wizard import DATABASE_WIZARD  # noqa: E402
from fleetdeck.checks.model import CheckContext  # noqa: E402
from fleetdeck.checks.wizards import WizardRun  # noqa: E402
from fleetdeck.hosts.metrics import SampleHistory  # noqa: E402
from fleetdeck.hosts.postgres.session import APPLICATION_NAME, PgTarget  # noqa: E402

from pgserver import MONITOR, SUPERUSER, PgFactory, PgServer  # noqa: E402

PASSWORD_ENV = "FD_BENCH_PG_PASSWORD"
PEER_APP = "psql"  # check_postgres runs psql, which says so in application_name
BATCH = 500  # tables per transaction: each takes ~5 locks, and the lock table is finite
TARGET_S = 1.0

MAKE_TABLES = """CREATE FUNCTION bench_make(lo int, hi int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
  FOR i IN lo .. hi - 1 LOOP
    t := format('%I.%I', 'app_' || (i % 10), 't_' || lpad(i::text, 5, '0'));
    EXECUTE format('CREATE TABLE %s (id int PRIMARY KEY, account int NOT NULL, note text)', t);
    EXECUTE format('INSERT INTO %s SELECT g, g %% 7, md5(g::text)
                    FROM generate_series(1, %s) g', t, 1 + i % 50);
    IF i % 10 = 0 THEN EXECUTE format('CREATE INDEX ON %s (account)', t); END IF;
  END LOOP;
END $$"""

BIG_TABLES = (
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, placed timestamptz,"
    " note text)",
    "INSERT INTO orders SELECT g, g % 50000, now() - g * interval '1 s', md5(g::text)"
    " FROM generate_series(1, 600000) g",
    "CREATE INDEX orders_customer_idx ON orders (customer)",  # never scanned: db.indexes
    "CREATE TABLE events (id bigint PRIMARY KEY, kind int, body text)",
    "INSERT INTO events SELECT g, g % 13, repeat(md5(g::text), 3)"
    " FROM generate_series(1, 200000) g",
    "CREATE TABLE chain (id int PRIMARY KEY, v int)",
    "INSERT INTO chain SELECT g, 0 FROM generate_series(1, 10) g",
    "CREATE TABLE signups (email text)",
    "INSERT INTO signups VALUES ('a@example.org'), ('a@example.org')",
    "SELECT pg_create_physical_replication_slot('standby_gone', true)",
)
DEAD_TABLES = 3  # after VACUUM: 60,000 rows, 60 % deleted, autovacuum off for the table

SAMPLE = """SELECT a.pid, a.application_name, coalesce(a.wait_event_type, 'CPU') AS wait_type,
 a.wait_event, left(a.query, 70) AS query,
 (SELECT string_agg(l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype), ', ')
  FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) AS ungranted
FROM pg_stat_activity a
WHERE a.application_name = ANY(%s) AND a.state = 'active' AND a.pid <> pg_backend_pid()"""

# check_postgres's nearest action for each wizard step (thresholds as the wizard's defaults).
PEER_ACTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("connection", "db.reachable", ()),
    ("backends", "db.connections", ("--warning=80%", "--critical=90%")),
    ("locks", "db.lock_chain", ("--warning=waiting=1", "--critical=waiting=10")),
    ("txn_idle", "db.idle_in_transaction", ("--warning=60s", "--critical=600s")),
    ("query_time", "db.long_queries", ("--warning=60s", "--critical=600s")),
    ("txn_time", "db.long_queries", ("--warning=600s", "--critical=3600s")),
    ("last_vacuum", "db.vacuum", ()),
    ("last_analyze", "db.vacuum", ()),
    ("bloat", "db.vacuum", ()),
    ("txn_wraparound", "db.wraparound", ("--warning=500000000", "--critical=1000000000")),
    ("replication_slots", "db.replication", ("--warning=1GB", "--critical=10GB")),
    ("index_size", "db.indexes", ("--warning=10GB", "--critical=20GB", "--perflimit=5")),
    ("database_size", "db.size", ("--warning=100GB", "--critical=200GB")),
    ("table_size", "db.size", ("--warning=10GB", "--critical=20GB", "--perflimit=5")),
)
SIZED = ("invalid indexes", "unused indexes", "largest tables")
"""The queries that size relations: exact first, estimated after a lock_timeout."""
PEER_NOISE = re.compile(r'POSTGRES_\w+ \w+: |DB "[^"]*" \(host:[^)]*\) \(port=\d+\) ')
PEER_STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


# -- the crowded server ----------------------------------------------------------------------


def build(server: PgServer, tables: int) -> dict[str, float]:
    """The tables, indexes, dead rows, invalid index and slot; seconds each part took."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(
        **server.conninfo(tcp=False), autocommit=True, application_name="fd-bench-setup"
    ) as admin:  # statements without parameters: their % signs are SQL's, not placeholders
        for n in range(10):
            admin.execute(f"CREATE SCHEMA app_{n}")
        admin.execute(MAKE_TABLES)
        for lo in range(0, tables, BATCH):
            admin.execute("SELECT bench_make(%s, %s)", [lo, min(lo + BATCH, tables)])
        admin.execute("DROP FUNCTION bench_make(int, int)")
        for statement in BIG_TABLES:
            admin.execute(statement)
        with contextlib.suppress(psycopg.Error):  # fails on the duplicate: leaves it invalid
            admin.execute("CREATE UNIQUE INDEX CONCURRENTLY signups_email_key ON signups (email)")
        took["tables"] = time.perf_counter() - started
        started = time.perf_counter()
        admin.execute("VACUUM (ANALYZE)")
        took["vacuum"] = time.perf_counter() - started
        for n in range(DEAD_TABLES):
            admin.execute(
                f"CREATE TABLE audit_{n} (id int, note text) WITH (autovacuum_enabled = off)"
            )
            admin.execute(
                f"INSERT INTO audit_{n} SELECT g, md5(g::text) FROM generate_series(1, 60000) g"
            )
            admin.execute(f"DELETE FROM audit_{n} WHERE id % 5 < 3")
        for n in range(50):  # something for pg_stat_statements to rank
            admin.execute("SELECT count(*) FROM orders WHERE id BETWEEN %s AND %s", [n, n + 5000])
    return took


def restart_cold(server: PgServer) -> None:
    """Restart the server and drop the page cache, so the first run reads from disk."""
    prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
    argv = [*prefix, str(server.bindir / "pg_ctl"), "restart", "-D", str(server.data)]
    argv += ["-m", "fast", "-w", "-t", "60", "-l", str(server.log_path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=server.workdir, timeout=90)
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def crowd(server: PgServer, sessions: int, locked: str) -> dict[str, int]:
    """Open the client sessions; how many of each kind."""
    kinds: Counter[str] = Counter()
    migration = server.session(name="migrate")
    migration.execute("BEGIN")
    if locked == "largest":  # what the wizard sizes: the largest table and its unused index
        migration.execute("ALTER TABLE orders ADD COLUMN shipped timestamptz")
        migration.execute("DROP INDEX orders_customer_idx")
        queued_on = "orders"
    else:  # a small table no size query picks (and none of the sessions below reads)
        queued_on = "app_7.t_00017"
        migration.execute(f"LOCK TABLE {queued_on} IN ACCESS EXCLUSIVE MODE")
    kinds["migration holding ACCESS EXCLUSIVE"] += 1
    for _ in range(4):
        server.session(name="report").start(f"SELECT count(*) FROM {queued_on}")
        kinds[f"queued behind it (on {queued_on})"] += 1
    root = server.session(name="worker")
    root.execute("BEGIN")
    root.execute("UPDATE chain SET v = v + 1 WHERE id = 1")
    kinds["row-lock root, idle in transaction"] += 1
    for _ in range(3):
        server.session(name="worker").start("UPDATE chain SET v = v + 1 WHERE id = 1")
        kinds["waiting on the row lock"] += 1
    for _ in range(5):
        server.session(name="batch").start("SELECT pg_sleep(3600)")
        kinds["active (pg_sleep)"] += 1
    for n in range(16):
        idle = server.session(name="web")
        idle.execute("BEGIN")
        idle.execute(f"SELECT count(*) FROM app_{n % 10}.t_{n:05d}")
        kinds["idle in transaction"] += 1
    rest = sessions - sum(kinds.values())
    for n in range(rest):
        server.session(name=("web", "worker", "cron", "api")[n % 4])
    kinds["idle"] += rest
    server.wait_for(
        "SELECT count(*) >= 7 FROM pg_stat_activity WHERE wait_event_type = 'Lock'", timeout=30
    )
    return dict(kinds)


# -- the lock-wait sampler -------------------------------------------------------------------


@dataclass
class LockWait:
    app: str
    pid: int
    query: str
    what: str
    polls: int = 0
    first: float = 0.0
    last: float = 0.0


@dataclass
class Watch:
    """What the sampler saw of one application's active backends."""

    polls: int = 0
    seconds: float = 0.0
    active: int = 0
    """Polls in which one of its queries was running."""
    waits: Counter[str] = field(default_factory=Counter)
    locks: dict[tuple[int, str], LockWait] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)


class Sampler(threading.Thread):
    """Polls pg_stat_activity (and each active backend's ungranted locks) every `interval`
    seconds for one application's backends, in a session of its own, over the socket."""

    def __init__(self, server: PgServer, app: str, interval: float) -> None:
        super().__init__(daemon=True, name=f"sampler-{app}")
        self.server, self.app, self.interval = server, app, interval
        self.watch = Watch()
        self.ready, self.done = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(
                **self.server.conninfo(tcp=False), autocommit=True, application_name="fd-bench"
            ) as connection:
                self.ready.set()
                started = time.perf_counter()
                while not self.done.is_set():
                    rows = connection.execute(SAMPLE, ([self.app],)).fetchall()
                    self._tally(rows, time.perf_counter())
                    self.done.wait(self.interval)
                self.watch.seconds = time.perf_counter() - started
        except BaseException as error:
            self.error = error
            self.ready.set()

    def _tally(self, rows: list[tuple[Any, ...]], now: float) -> None:
        watch = self.watch
        watch.polls += 1
        watch.active += bool(rows)
        for pid, app, wait_type, wait_event, query, ungranted in rows:
            watch.pids.add(pid)
            watch.waits[wait_type] += 1
            if wait_type == "Lock" or ungranted:
                what = ungranted or f"{wait_type}:{wait_event}"
                wait = watch.locks.setdefault((pid, query), LockWait(app, pid, query, what))
                wait.first = wait.first or now
                wait.polls, wait.last = wait.polls + 1, now

    def __enter__(self) -> Sampler:
        if self.interval > 0:
            self.start()
            self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.is_alive():
            self.join(10)
        if self.error is not None:
            raise RuntimeError(f"the sampler failed: {self.error}")


def log_waits(text: str, app: str) -> list[str]:
    """The server log's lock-wait lines (log_lock_waits, lock_timeout) from `app`'s sessions."""
    pattern = re.compile(r"still waiting for|acquired \w+Lock|due to (lock|statement) timeout")
    return [
        line
        for line in text.splitlines()
        if f"] {app} " in line and pattern.search(line)  # log_line_prefix: '%m [%p] %q%a ...'
    ]


def log_since(server: PgServer, offset: int) -> tuple[str, int]:
    with server.log_path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    return data.decode(errors="replace"), offset + len(data)


# -- fleetdeck and the peer ------------------------------------------------------------------


async def wizard_once(target: PgTarget, host: str) -> dict[str, Any]:
    config = Config()
    link = DbLink(target, host, thresholds=config.database)
    ctx = CheckContext(host, SampleHistory(size=2), config.thresholds, None, None, {}, link)
    run = WizardRun(DATABASE_WIZARD, ctx)
    started = time.perf_counter()
    try:
        await run.run()
        wall = time.perf_counter() - started
        session = await link.session()
        pid, connect = session.backend_pid, session.connect_seconds
    finally:
        await link.close()
    findings = [f for r in run.results for f in r.findings]
    estimated = [
        f.check
        for f in findings
        if ESTIMATED.strip() in "\n".join([f.summary, *(e.source + e.output for e in f.evidence)])
    ]
    return {
        "wall": wall,
        "connect": connect,
        "pid": pid,
        "queries": [(t.name, t.seconds, t.rows) for t in link.timings],
        "steps": [
            (r.step.id, r.duration, r.status.value if r.status else r.state.value)
            for r in run.results
        ],
        "estimated": sorted(set(estimated)),
    }


def peer_once(server: PgServer, pgpass: Path, timeout: float) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = str(pgpass)
    common = ["-H", server.host, "-p", str(server.port), "-u", MONITOR, "--db", server.dbname]
    done = []
    for action, step, extra in PEER_ACTIONS:
        argv = ["check_postgres", f"--action={action}", *common, f"--timeout={timeout:g}", *extra]
        started = time.perf_counter()
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout * 3 + 30
        )
        seconds = time.perf_counter() - started
        said = (result.stdout.strip() or result.stderr.strip()).split("\n")[0]
        done.append(
            {
                "action": action,
                "step": step,
                "seconds": seconds,
                "status": PEER_STATUS.get(result.returncode, f"exit {result.returncode}"),
                "said": PEER_NOISE.sub("", said.split("|")[0]).strip()[:110],
                "timed_out": "timed out" in said.lower() or "timeout" in said.lower(),
            }
        )
    return done


def peer_version() -> str:
    found = subprocess.run(["check_postgres", "--version"], capture_output=True, text=True)
    return found.stdout.strip().removeprefix("check_postgres version ")


# -- the run -----------------------------------------------------------------------------------


def measure(args: argparse.Namespace, factory: PgFactory) -> dict[str, Any]:
    settings = {
        "log_lock_waits": True,
        "deadlock_timeout": "10ms",
        "log_line_prefix": "%m [%p] %q%a %u@%d ",
        "shared_buffers": "128MB",
    }
    server = factory(max_connections=300, settings=settings)
    version = server.sql("SHOW server_version")[0][0]
    setup = build(server, args.tables)
    restart_cold(server)
    started = time.perf_counter()
    kinds = crowd(server, args.sessions, args.locked)
    setup["sessions"] = time.perf_counter() - started
    os.environ[PASSWORD_ENV] = server.passwords[MONITOR]
    target = PgTarget(
        host=server.host,
        port=server.port,
        dbname=server.dbname,
        user=MONITOR,
        password_env=PASSWORD_ENV,
        name="bench",
    )
    host = socket.gethostname()
    _, offset = log_since(server, 0)
    runs = []
    with Sampler(server, APPLICATION_NAME, args.interval) as fd_watch:
        for _ in range(args.runs):
            runs.append(asyncio.run(wizard_once(target, host)))
    fd_log, offset = log_since(server, offset)
    pgpass = server.workdir / "bench.pgpass"
    pgpass.write_text(f"*:*:*:{MONITOR}:{server.passwords[MONITOR]}\n")
    pgpass.chmod(0o600)
    peer_runs = []
    with Sampler(server, PEER_APP, args.interval) as peer_watch:
        for _ in range(args.peer_rounds):
            peer_runs.append(peer_once(server, pgpass, args.peer_timeout))
    peer_log, offset = log_since(server, offset)
    relations = server.sql(
        "SELECT count(*) FILTER (WHERE relkind = 'r'), count(*) FILTER (WHERE relkind = 'i')"
        " FROM pg_class WHERE relnamespace <> 'pg_catalog'::regnamespace"
        " AND relnamespace <> 'pg_toast'::regnamespace"
        " AND relnamespace <> 'information_schema'::regnamespace"
    )[0]
    dboid = server.sql("SELECT oid FROM pg_database WHERE datname = current_database()")[0][0]
    files = sum(1 for _ in (server.data / "base" / str(dboid)).iterdir())
    clients = server.sql(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )[0][0]
    return {
        "server": f"PostgreSQL {version}",
        "tables": relations[0],
        "indexes": relations[1],
        "files": files,
        "clients": clients,
        "sessions": kinds,
        "locked": args.locked,
        "setup_s": {k: round(v, 1) for k, v in setup.items()},
        "runs": runs,
        "fleetdeck_watch": _watch_json(fd_watch.watch, args.interval),
        "fleetdeck_log": log_waits(fd_log, APPLICATION_NAME),
        "fleetdeck_pids": [r["pid"] for r in runs],
        "peer": {"version": peer_version(), "timeout_s": args.peer_timeout, "runs": peer_runs},
        "peer_watch": _watch_json(peer_watch.watch, args.interval),
        "peer_log": log_waits(peer_log, PEER_APP),
    }


def _watch_json(watch: Watch, interval: float) -> dict[str, Any]:
    return {
        "interval_s": interval,
        "polls": watch.polls,
        "seconds": round(watch.seconds, 2),
        "active_polls": watch.active,
        "wait_types": dict(watch.waits.most_common()),
        "lock_waits": [
            {
                "pid": w.pid,
                "query": w.query,
                "waiting_for": w.what,
                "polls": w.polls,
                "seen_ms": round((w.last - w.first) * 1000 + interval * 1000, 1),
            }
            for w in watch.locks.values()
        ],
    }


# -- the report ------------------------------------------------------------------------------


def per_query(runs: list[dict[str, Any]]) -> list[tuple[str, float, float, float]]:
    """(name, calls per run, cold ms, warm median ms) per query name, by warm time."""
    names = list(dict.fromkeys(name for r in runs for name, _, _ in r["queries"]))

    def total(run: dict[str, Any], name: str) -> float:
        return 1000 * sum(float(s) for n, s, _ in run["queries"] if n == name)

    warm = runs[1:] or runs
    rows = [
        (
            name,
            sum(1 for r in runs for n, _, _ in r["queries"] if n == name) / len(runs),
            total(runs[0], name),
            statistics.median(total(r, name) for r in warm),
        )
        for name in names
    ]
    return sorted(rows, key=lambda row: -row[3])


def gave_up_ms(run: dict[str, Any]) -> list[tuple[str, float]]:
    """The queries of a run that were sent again at once (a size query that gave up at
    lock_timeout, then asked for estimates): name and how long the first try took."""
    queries = run["queries"]
    return [
        (name, 1000 * seconds)
        for (name, seconds, _), (again, _, _) in itertools.pairwise(queries)
        if name == again and name in SIZED
    ]


def report(result: dict[str, Any]) -> None:
    runs = result["runs"]
    sessions = ", ".join(f"{n} {k}" for k, n in result["sessions"].items())
    setup = ", ".join(f"{k} {v:.0f} s" for k, v in result["setup_s"].items())
    print(
        f"{result['server']}: {result['tables']:,} tables, {result['indexes']:,} indexes "
        f"({result['files']:,} files in the database's directory), "
        f"{result['clients']} client sessions ({sessions}); setup: {setup}"
    )
    print(f"\nfleetdeck database wizard ({len(DATABASE_WIZARD.steps)} steps), as {MONITOR}:")
    head = (
        f"{'run':<6}{'queries':>8}{'query s':>9}{'lock wait s':>12}{'wall s':>8}{'connect ms':>11}"
    )
    print(head + "  slowest steps (ms)")
    for n, run in enumerate(runs):
        spent = sum(s for _, s, _ in run["queries"])
        steps = sorted(run["steps"], key=lambda s: -s[1])[:3]
        slow = ", ".join(f"{i} {1000 * d:.0f}" for i, d, _ in steps)
        label = "cold" if n == 0 else "warm"
        waited = sum(ms for _, ms in gave_up_ms(run)) / 1000
        print(
            f"{label:<6}{len(run['queries']):>8}{spent:>9.3f}{waited:>12.3f}{run['wall']:>8.3f}"
            f"{1000 * run['connect']:>11.1f}  {slow}"
        )
    print(f"\n{'query':<20}{'per run':>8}{'cold ms':>9}{'warm ms':>9}  (warm: median of runs 2+)")
    for name, calls, cold, warm in per_query(runs):
        print(f"{name:<20}{calls:>8.1f}{cold:>9.1f}{warm:>9.1f}")
    statuses = ", ".join(f"{i} {s}" for i, _, s in runs[-1]["steps"])
    print(f"step results (last run): {statuses}")

    print("\nlock waits:")
    for who, key, log_key in (("fleetdeck", "fleetdeck_watch", "fleetdeck_log"),
                              ("check_postgres", "peer_watch", "peer_log")):  # fmt: skip
        watch = result[key]
        if watch["polls"]:
            every = 1000 * watch["seconds"] / max(watch["polls"], 1)
            types = ", ".join(f"{k} {v}" for k, v in watch["wait_types"].items())
            print(
                f"  {who}: {watch['polls']:,} polls (every {every:.1f} ms); a query of its was "
                f"running in {watch['active_polls']:,} ({types}); waiting on a lock in "
                f"{sum(w['polls'] for w in watch['lock_waits'])}"
            )
            for w in watch["lock_waits"]:
                print(
                    f"    pid {w['pid']} waited for {w['waiting_for']}, seen in {w['polls']} "
                    f"polls over ~{w['seen_ms']:.0f} ms: {w['query']}"
                )
        lines = result[log_key]
        print(f"    server log (log_lock_waits, deadlock_timeout 10 ms): {len(lines)} lines")
        for line in lines[:6]:
            print(f"      {line[:150]}")
    fallbacks = sorted({e for r in runs for e in r["estimated"]})
    gave_up = [gave_up_ms(r) for r in runs]
    print(
        "  sizes estimated (an exclusive lock on the relation, seen in pg_locks, or a"
        " lock_timeout fallback): " + ("; ".join(fallbacks) or "none")
    )
    for n, given in enumerate(gave_up):
        if given:
            said = ", ".join(f"{name} after {ms:.0f} ms" for name, ms in given)
            print(f"    run {n + 1}: gave up at lock_timeout and asked again: {said}")

    peer = result["peer"]
    print(
        f"\ncheck_postgres {peer['version']}, same server and sessions "
        f"(--timeout {peer['timeout_s']:g} s per action, its default 10):"
    )
    rounds = peer["runs"]
    numbers = "".join(f"{'s #' + str(i + 1):>8}" for i in range(len(rounds)))
    print(f"{'action':<18}{'for step':<24}{numbers}  status (last)")
    for i, (action, step, _) in enumerate(PEER_ACTIONS):
        times = "".join(f"{r[i]['seconds']:>8.2f}" for r in rounds)
        last = rounds[-1][i]
        print(f"{action:<18}{step:<24}{times}  {last['status']}: {last['said'][:60]}")
    totals = [sum(a["seconds"] for a in r) for r in rounds]
    bounded = [sum(a["seconds"] for a in r if not a["timed_out"]) for r in rounds]
    print(f"{'total':<42}" + "".join(f"{t:>8.2f}" for t in totals))
    print(f"{'total without timed-out actions':<42}" + "".join(f"{t:>8.2f}" for t in bounded))
    timed_out = sorted({a["action"] for r in rounds for a in r if a["timed_out"]})
    if timed_out:
        print(f"timed out (bounded by --timeout): {', '.join(timed_out)}")

    warm = runs[1:] or runs
    fd_wall = statistics.median(r["wall"] for r in warm)
    fd_queries = statistics.median(sum(s for _, s, _ in r["queries"]) for r in warm)
    peer_total, peer_bounded = statistics.median(totals), statistics.median(bounded)
    print(
        f"\nratio fleetdeck/check_postgres (warm medians): wall {fd_wall:.3f} s / {peer_total:.2f}"
        f" s = {fd_wall / peer_total:.3f}; without the peer's timed-out actions "
        f"{fd_wall / peer_bounded:.3f}"
    )
    cold_q = sum(s for _, s, _ in runs[0]["queries"])
    met = "MET" if max(cold_q, fd_queries) < TARGET_S else "NOT MET"
    print(
        f"target: the wizard's queries under {TARGET_S:g} s in total: {met} "
        f"(cold {cold_q:.3f} s, warm {fd_queries:.3f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=4, help="wizard runs; the first is cold")
    parser.add_argument("--peer-rounds", type=int, default=2)
    parser.add_argument("--peer-timeout", type=float, default=10.0, help="check_postgres -t")
    parser.add_argument("--interval", type=float, default=0.005, help="sampler poll (s); 0: off")
    parser.add_argument(
        "--locked",
        choices=("largest", "small"),
        default="largest",
        help="what the open migration locks: the largest table and its unused index (the "
        "wizard's size queries meet it), or a small table none of its queries touch",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tables < 100:
        parser.error("--tables: at least 100")
    if args.sessions < 40:
        parser.error("--sessions: at least 40 (the locked, waiting and busy ones come first)")
    if shutil.which("check_postgres") is None:
        print(
            "db_wizard.py: check_postgres is not installed: apt-get install check-postgres",
            file=sys.stderr,
        )
        return 2
    for name in [k for k in os.environ if k.startswith("PG")]:
        del os.environ[name]  # a person's PGHOST or PGSSLMODE must not steer fleetdeck's session

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    factory = PgFactory()
    try:
        result = measure(args, factory)
    except KeyboardInterrupt:
        print("db_wizard.py: interrupted; stopping the server", file=sys.stderr)
        return 130
    finally:
        factory.close()  # the sessions (blocked ones terminated), the server, its directory
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
