"""The PostgreSQL checks (D1-D7) against real servers started from initdb.

Each test sets up what an operator meets during an incident (a lock chain, a session left
idle in a transaction, a full connection table, a runaway query, a table nobody vacuums, an
index nobody uses) and reads the findings fleetdeck gives for it, through a session opened
the way the console opens one (as the pg_monitor user `fd_monitor`, unless the story is
about a user without rights). Thresholds are lowered in the test instead of waiting minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from fleetdeck.checks.database.checks import (
    CONNECTIONS,
    DB_CHECKS,
    IDLE_IN_TRANSACTION,
    INDEXES,
    LOCK_CHAIN,
    LONG_QUERIES,
    REACHABLE,
    REPLICATION,
    SIZE,
    SLOW_STATEMENTS,
    VACUUM,
    WRAPAROUND_CHECK,
    DbCheck,
    DbContext,
    check_database,
    resolved,
    run_db_checks,
    run_on,
)
from fleetdeck.checks.database.config import DbThresholds, parse_db_thresholds
from fleetdeck.checks.database.queries import Backend, lock_chains, read_activity, read_dead_tables
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.secrets import redact
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.postgres.session import PgSession, PgTarget, open_session

from pgserver import LIMITED, MONITOR, PgFactory, PgServer, clear_libpq_env, password_target
from pgserver import make_pg as make_pg
from pgserver import pg as pg
from pgserver import pg_server as pg_server

HOST = "db-01"
LOW = DbThresholds(
    idle_in_transaction=Limit(0.2, 600),
    long_query=Limit(0.2, 600),
    lock_wait=Limit(0.0, 600),
    unused_index_bytes=0,
    unused_index_age=1,
    slow_statement=Limit(100, 60_000),
    top=10,
)


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_libpq_env(tmp_path / "home", monkeypatch)


def _target(server: PgServer, user: str, monkeypatch: pytest.MonkeyPatch) -> PgTarget:
    return password_target(server, user, monkeypatch)


async def _open(server: PgServer, user: str, monkeypatch: pytest.MonkeyPatch) -> PgSession:
    return await open_session(_target(server, user, monkeypatch), host=HOST)


@pytest.fixture
async def monitor(pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PgSession]:
    """fleetdeck's session to the shared server, as the pg_monitor user."""
    async with await _open(pg, MONITOR, monkeypatch) as session:
        yield session


async def _run(
    session: PgSession, *checks: DbCheck, thresholds: DbThresholds = LOW
) -> list[Finding]:
    return await run_db_checks(session, HOST, thresholds, label="fleetdeck", checks=checks)


def _on(findings: Sequence[Finding], target: str) -> Finding:
    found = [f for f in findings if f.target == target]
    assert len(found) == 1, f"no single finding on {target!r}: {findings}"
    return found[0]


def _text(findings: Sequence[Finding]) -> str:
    return "\n".join(
        f"{f.check} {f.target} {f.summary}\n"
        + "\n".join(f"{e.source}\n{e.output}" for e in f.evidence)
        for f in findings
    )


def _table(pg: PgServer, request: pytest.FixtureRequest) -> str:
    """A fresh table name, dropped after the test (the server is shared)."""
    name = re.sub(r"[^a-z0-9_]", "_", f"t_{request.node.name[5:25]}_{secrets.token_hex(3)}")

    def drop() -> None:
        pg.close_sessions()  # a session of the test may hold a lock on it
        pg.sql(f"DROP TABLE IF EXISTS {name} CASCADE")

    request.addfinalizer(drop)
    return name


# -- D3: lock chains, idle in transaction, long queries --------------------------------------


async def test_lock_chain_of_three_names_the_root_blocker_with_two_waiting(
    pg: PgServer, monitor: PgSession, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    pg.sql(f"INSERT INTO {table} VALUES (1, 0)")
    a, b, c = (pg.session(name=f"chain-{n}") for n in "abc")
    a.execute("BEGIN")
    a.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")  # holds the row, then goes idle
    b.start(f"UPDATE {table} SET v = 2 WHERE id = 1")  # waits on a's transaction
    pg.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [a.pid, b.pid])
    c.start(f"UPDATE {table} SET v = 3 WHERE id = 1")  # waits on b, which holds the tuple lock
    pg.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [b.pid, c.pid])

    at_once = replace(LOW, idle_in_transaction=Limit(0, 600))
    findings = await _run(monitor, LOCK_CHAIN, IDLE_IN_TRANSACTION, thresholds=at_once)
    chain = _on([f for f in findings if f.check == "db.lock_chain"], f"pid {a.pid}")
    assert chain.status is Status.WARN
    assert "chain-a" in chain.summary and "idle in transaction" in chain.summary
    assert "blocks 2 sessions (1 directly)" in chain.summary
    evidence = chain.evidence[0].output
    assert f"pid {a.pid} backend_start {a.backend_start.isoformat()}" in evidence
    assert f"pid {b.pid} backend_start" in evidence and f"waits on pid {a.pid}" in evidence
    assert f"waits on pid {b.pid} for" in evidence  # c waits on b, not on a
    assert f"UPDATE {table} SET v = 1 WHERE id = 1" in evidence  # the root's last statement
    idle = _on([f for f in findings if f.check == "db.idle_in_transaction"], f"pid {a.pid}")
    assert "2 sessions wait on its locks" in idle.summary

    # What a fix reuses: the root blocker's identity and who waits behind it.
    activity = await read_activity(monitor)
    (root,) = lock_chains(activity.backends)
    assert root.root is not None
    assert (root.root.pid, root.root.backend_start) == (a.pid, a.backend_start)
    assert [w.pid for w in root.direct] == [b.pid]
    assert {w.pid for w in root.waiting} == {b.pid, c.pid}

    # The root ends: the chain is gone, and a verifier reading the check again says so.
    pg.sql("SELECT pg_terminate_backend(%s)", [a.pid])
    b.settle()
    c.settle()
    after = await _run(monitor, LOCK_CHAIN)
    verdict = resolved(after, "db.lock_chain", f"pid {a.pid}")
    assert verdict is not None and verdict.status is Status.OK


async def test_a_young_lock_chain_is_listed_as_ok_with_its_root_and_an_old_one_is_graded(
    pg: PgServer,
    monitor: PgSession,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """During an incident the operator sees who blocks whom before the threshold: the chain
    is listed as OK with its root blocker, what it holds and how long the waiter waited;
    past the threshold the same chain is a WARN with the fixes."""
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int)")
    holder, waiter = pg.session(name="migration"), pg.session(name="report")
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    waiter.start(f"SELECT count(*) FROM {table}")
    pg.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [holder.pid, waiter.pid])

    (young,) = await _run(monitor, LOCK_CHAIN, thresholds=DbThresholds())
    assert (young.status, young.target, young.fixes) == (Status.OK, f"pid {holder.pid}", ())
    assert re.fullmatch(
        rf"pid {holder.pid} \(postgres@127\.0\.0\.1 \(migration\), idle in transaction"
        rf"(, transaction open \d+s)?\) blocks 1 session: waiting \d s, under the 10 s "
        rf"threshold; it holds AccessExclusiveLock on table {table} \(pid {waiter.pid} wants "
        rf"AccessShareLock\); waiters: pid {waiter.pid} \(\d s\)",
        young.summary,
    ), young.summary
    assert f"  holds AccessExclusiveLock on table {table}" in young.evidence[0].output
    async with await _open(pg, LIMITED, monkeypatch) as limited:  # no pg_read_all_stats
        chain, note = await _run(limited, LOCK_CHAIN, thresholds=DbThresholds())
    assert (chain.status, note.status) == (Status.OK, Status.UNKNOWN), (chain, note)
    assert chain.summary.endswith(
        "blocks 1 session: how long they wait is hidden, so not judged against the 10 s "
        f"threshold; it holds AccessExclusiveLock on table {table} (pid {waiter.pid} wants "
        f"AccessShareLock); waiters: pid {waiter.pid} (wait hidden)"
    ), chain.summary  # never a made-up "waiting 0 s"

    await asyncio.sleep(1.2)
    (old,) = await _run(monitor, LOCK_CHAIN, thresholds=DbThresholds(lock_wait=Limit(1, 600)))
    assert (old.status, old.target) == (Status.WARN, f"pid {holder.pid}")
    assert re.search(r"blocks 1 session; the longest has waited \d s; it holds", old.summary)
    assert "db.terminate" in {fix.id for fix in old.fixes}


async def test_session_idle_in_transaction_past_the_threshold(
    pg: PgServer, monitor: PgSession
) -> None:
    idle, fresh = pg.session(name="billing"), pg.session(name="fresh")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    await asyncio.sleep(0.4)
    fresh.execute("BEGIN")
    fresh.execute("SELECT 1")

    findings = await _run(monitor, IDLE_IN_TRANSACTION)
    (found,) = [f for f in findings if f.status is not Status.OK]
    assert (found.status, found.target) == (Status.WARN, f"pid {idle.pid}")
    assert re.search(
        r"\(postgres@127\.0\.0\.1 \(billing\)\) has been idle in a transaction", found.summary
    )
    assert f"backend_start {idle.backend_start.isoformat()}" in found.evidence[0].output
    assert f"pid {fresh.pid}" not in _text(findings)

    critical = replace(LOW, idle_in_transaction=Limit(0.1, 0.3))
    findings = await _run(monitor, IDLE_IN_TRANSACTION, thresholds=critical)
    assert _on(findings, f"pid {idle.pid}").status is Status.CRIT

    idle.execute("ROLLBACK")
    fresh.execute("ROLLBACK")
    (calm,) = await _run(monitor, IDLE_IN_TRANSACTION)
    assert calm.status is Status.OK and calm.target == "fleetdeck"


async def test_long_query_past_the_threshold_with_its_wait_event(
    pg: PgServer, monitor: PgSession
) -> None:
    runner = pg.session(name="report")
    runner.start("SELECT pg_sleep(30)")
    pg.wait_for("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", [runner.pid])
    await asyncio.sleep(0.4)

    findings = await _run(monitor, LONG_QUERIES)
    found = _on(findings, f"pid {runner.pid}")
    assert found.status is Status.WARN
    assert "has been running one statement for" in found.summary
    assert "waiting on Timeout PgSleep" in found.summary
    assert found.summary.endswith(": SELECT pg_sleep(30)")
    assert f"backend_start {runner.backend_start.isoformat()}" in found.evidence[0].output


# -- D2: connections ---------------------------------------------------------------------------


async def test_connection_saturation_under_a_low_max_connections(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pg(max_connections=10)  # 3 reserved for superusers: 7 for everyone else
    async with await _open(server, MONITOR, monkeypatch) as session:
        sessions = server.open_sessions(5)
        (found,) = await _run(session, CONNECTIONS)
        assert found.status is Status.OK
        assert found.summary.startswith("5 of 7 connections in use (71 %): 5 idle")

        sessions.append(server.session())
        (found,) = await _run(session, CONNECTIONS)
        assert found.status is Status.WARN
        assert found.summary.startswith("6 of 7 connections in use (86 %)")
        assert "1 left before only superusers can connect" in found.summary
        evidence = found.evidence[0].output
        assert "max_connections 10 minus superuser_reserved_connections 3: 7" in evidence
        assert "left out: 1 session of fleetdeck's own" in evidence

        sessions.append(server.session())
        (found,) = await _run(session, CONNECTIONS)
        assert found.status is Status.CRIT
        assert found.summary.startswith("7 of 7 connections in use (100 %)")


# -- D5: dead tuples; D6: indexes; D7: sizes --------------------------------------------------


async def test_table_with_many_dead_rows_and_autovacuum_off(
    pg: PgServer, monitor: PgSession, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)")
    pg.sql(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 20000) g")
    pg.sql(f"DELETE FROM {table} WHERE id > 5000")
    pg.wait_for("SELECT n_dead_tup = 15000 FROM pg_stat_user_tables WHERE relname = %s", [table])

    findings = await _run(monitor, VACUUM, thresholds=DbThresholds())  # the defaults
    found = _on(findings, f"public.{table}")
    assert found.status is Status.CRIT  # 75 % dead: past the default 50 %
    assert found.summary.startswith(f"public.{table} has 15,000 dead rows (75 % of its rows)")
    assert "last vacuum never" in found.summary
    assert "autovacuum is off for this table" in found.summary

    tables, _ = await read_dead_tables(monitor, 10_000, 20, 5)
    mine = next(t for t in tables if t.name == table)
    assert (mine.schema, mine.dead, mine.autovacuum_off) == ("public", 15000, True)

    pg.sql(f"VACUUM (ANALYZE) {table}")  # what the fix will run
    pg.wait_for("SELECT n_dead_tup = 0 FROM pg_stat_user_tables WHERE relname = %s", [table])
    verdict = resolved(await _run(monitor, VACUUM), "db.vacuum", f"public.{table}")
    assert verdict is not None and verdict.status is Status.OK


async def test_unused_and_invalid_indexes(
    pg: PgServer, monitor: PgSession, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int, note text)")
    pg.sql(f"INSERT INTO {table} SELECT g, g / 2, 'n' || g FROM generate_series(1, 5000) g")
    pg.sql(f"CREATE INDEX {table}_note ON {table} (note)")
    with pytest.raises(psycopg.errors.UniqueViolation):  # leaves an invalid index behind
        pg.sql(f"CREATE UNIQUE INDEX CONCURRENTLY {table}_v ON {table} (v)")
    # LOW: "unused" once the statistics go back 1 s (to the server's start here)
    pg.wait_for("SELECT now() - pg_postmaster_start_time() > interval '1.1 s'")

    findings = await _run(monitor, INDEXES)
    unused = _on(findings, f"public.{table}_note")
    assert unused.status is Status.WARN
    assert f"on public.{table}" in unused.summary
    assert "has not been used by any query in the " in unused.summary
    assert "since the server started (its statistics go back at least that far)" in unused.summary
    invalid = _on(findings, f"public.{table}_v")
    assert invalid.status is Status.WARN and "is invalid" in invalid.summary
    assert "REINDEX INDEX CONCURRENTLY" in invalid.summary
    assert f"public.{table}_pkey" not in _text(findings)  # a primary key is never "unused"

    pg.sql(f"DROP INDEX {table}_v")
    findings = await _run(monitor, INDEXES, thresholds=replace(LOW, unused_index_bytes=1 << 30))
    assert [f.status for f in findings] == [Status.OK]
    assert "no invalid index; no unused index of 1.0 GiB or more" in findings[0].summary
    assert "index never scanned in the " in findings[0].summary or "indexes never" in (
        findings[0].summary
    )


async def test_an_index_is_unused_only_once_its_statistics_are_older_than_the_stated_age(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics reset a moment ago say nothing about an index yet: not "unused" with an
    hour or the default 7 days asked for; with 1 s asked for, a second later it is."""
    server = make_pg()
    server.sql("CREATE TABLE events (id int, kind text)")
    server.sql("INSERT INTO events SELECT g, 'k' || mod(g, 7) FROM generate_series(1, 5000) g")
    server.sql("CREATE INDEX events_kind ON events (kind)")
    server.sql("SELECT pg_stat_reset()")
    young = replace(LOW, unused_index_age=3600)
    async with await _open(server, MONITOR, monkeypatch) as session:
        (calm,) = await _run(session, INDEXES, thresholds=young)
        (default,) = await _run(session, INDEXES, thresholds=DbThresholds(unused_index_bytes=0))
    assert calm.status is Status.OK and default.status is Status.OK
    assert re.search(
        r"unused indexes not judged yet: 1 index never scanned in the \d+s since its "
        r"statistics were reset, under the 1h 0m needed",
        calm.summary,
    ), calm.summary
    assert "under the 7d 0h needed" in default.summary

    await asyncio.sleep(1.1)
    async with await _open(server, MONITOR, monkeypatch) as session:
        (old,) = await _run(session, INDEXES)  # LOW: 1 s
    assert old.status is Status.WARN and old.target == "public.events_kind"
    assert "since its statistics were reset: it slows every write" in old.summary


async def test_counters_a_crash_discarded_are_as_young_as_the_crash(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend killed by SIGKILL makes the postmaster reinitialize without restarting (its
    start time stays) and crash recovery discards every usage counter: an index the
    application used before is not "unused" on counters only seconds old, though the server
    started longer ago than the age asked for. Before the crash the same index is graded
    on its real use (OK), and an index really never used is WARN."""
    server = make_pg()
    server.sql("CREATE TABLE visits (id int, page text)")
    server.sql("INSERT INTO visits SELECT g, 'p' || g FROM generate_series(1, 5000) g")
    server.sql("CREATE INDEX visits_id ON visits (id)")
    server.sql("CREATE INDEX visits_page ON visits (page)")
    server.sql("ANALYZE visits")
    server.sql("SET enable_seqscan = off; SELECT * FROM visits WHERE id = 42")
    server.wait_for(
        "SELECT idx_scan > 0 FROM pg_stat_user_indexes WHERE indexrelname = 'visits_id'"
    )
    aged = replace(LOW, unused_index_bytes=0, unused_index_age=3)
    server.wait_for("SELECT now() - pg_postmaster_start_time() > interval '3.2 s'")
    async with await _open(server, MONITOR, monkeypatch) as session:
        before = await _run(session, INDEXES, thresholds=aged)
    assert [f.target for f in before if f.status is Status.WARN] == ["public.visits_page"]

    started = server.sql("SELECT pg_postmaster_start_time()")[0][0]
    victim = server.session(name="victim")
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # the postmaster reinitializes: connections fail until recovery is done
        with contextlib.suppress(psycopg.OperationalError):
            if server.sql("SELECT stats_reset > %s FROM pg_stat_archiver", [started])[0][0]:
                break
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.1)
    assert server.sql("SELECT pg_postmaster_start_time()")[0][0] == started
    async with await _open(server, MONITOR, monkeypatch) as session:
        found = await _run(session, INDEXES, thresholds=aged)
    assert [(f.target, f.status) for f in found if f.status is not Status.OK] == []
    (after,) = found
    assert re.search(
        r"unused indexes not judged yet: 2 indexes never scanned in the \d+s since its "
        r"statistics were discarded \(crash recovery",
        after.summary,
    ), after.summary


async def test_sizes_fall_back_to_estimates_behind_an_exclusive_lock(
    pg: PgServer, monitor: PgSession, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} AS SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g")
    pg.sql(f"ANALYZE {table}")
    (found,) = await _run(monitor, SIZE)
    assert found.status is Status.OK
    assert found.summary.startswith("database fleetdeck is ")
    assert f"its largest table is public.{table} at " in found.summary
    assert "estimated" not in found.summary

    holder = pg.session(name="migration")
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    started = time.monotonic()
    (found,) = await _run(monitor, SIZE)
    assert time.monotonic() - started < 1.0  # gave up on the lock at once
    assert found.status is Status.OK
    assert (
        f"public.{table}" in found.summary and "estimated from pg_class.relpages" in found.summary
    )
    blocked = pg.sql("SELECT count(*) FROM pg_locks WHERE NOT granted")
    assert blocked == [(0,)]  # fleetdeck left no request queued behind the lock


# -- D4: slowest statements --------------------------------------------------------------------


async def test_slowest_statements_from_pg_stat_statements(pg: PgServer, monitor: PgSession) -> None:
    worker = pg.session(name="worker")
    worker.execute("SELECT pg_sleep(0.31)")
    worker.execute("SELECT pg_sleep(0.31)")
    await _run(monitor, *DB_CHECKS)  # fleetdeck's own statements, which must never be listed

    (found,) = await _run(monitor, SLOW_STATEMENTS)
    assert found.status is Status.WARN
    assert "take 100 ms or more on average" in found.summary
    by_mean = found.evidence[1].output
    assert re.search(
        r"2 calls +31\d\.\d ms mean  postgres@fleetdeck  SELECT pg_sleep\(\$1\)", by_mean
    )
    assert "fleetdeck:" not in _text([found])


async def test_pg_stat_statements_not_loaded_says_how_to_enable_it(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension the server does not have is no fault of the server: OK, with what to
    do; the faulty twin (a statement over the threshold) is WARN in the test above."""
    server = make_pg(settings={"shared_preload_libraries": ""})  # the extension is created
    for user in (MONITOR, LIMITED):  # only the first may read shared_preload_libraries
        async with await _open(server, user, monkeypatch) as session:
            (found,) = await _run(session, SLOW_STATEMENTS)
        assert found.status is Status.OK
        assert found.summary.startswith("not available: ")
        assert "add pg_stat_statements to shared_preload_libraries" in found.summary
        assert "CREATE EXTENSION" not in found.summary  # it is created already


async def test_a_fresh_server_without_pg_stat_statements_is_ok_saying_what_to_add(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = make_pg(pg_stat_statements=False)
    async with await _open(fresh, MONITOR, monkeypatch) as session:
        (found,) = await _run(session, SLOW_STATEMENTS)
    assert found.status is Status.OK
    assert found.summary.startswith(
        "not available: add pg_stat_statements to shared_preload_libraries in postgresql.conf "
        "and restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements in fleetdeck"
    )
    async with await _open(fresh, LIMITED, monkeypatch) as session:  # cannot read the setting
        (found,) = await _run(session, SLOW_STATEMENTS)
    assert found.status is Status.OK
    assert "not created in fleetdeck: run CREATE EXTENSION pg_stat_statements" in found.summary

    loaded = make_pg(
        pg_stat_statements=False, settings={"shared_preload_libraries": "pg_stat_statements"}
    )
    async with await _open(loaded, MONITOR, monkeypatch) as session:
        (found,) = await _run(session, SLOW_STATEMENTS)
    assert found.status is Status.OK
    assert found.summary == (
        "not available: pg_stat_statements is loaded but not created: run CREATE EXTENSION "
        "pg_stat_statements in fleetdeck; then the slowest statements are listed here"
    )
    async with await _open(loaded, MONITOR, monkeypatch) as session:  # every check: no UNKNOWN
        findings = await _run(session, *DB_CHECKS, thresholds=DbThresholds())
    assert {f.status for f in findings} == {Status.OK}, _text(findings)


# -- wraparound, replication -------------------------------------------------------------------


async def test_wraparound_age_per_database(pg: PgServer, monitor: PgSession) -> None:
    (calm,) = await _run(monitor, WRAPAROUND_CHECK, thresholds=DbThresholds())
    assert calm.status is Status.OK
    assert calm.summary.startswith("oldest unfrozen transaction ID: database ")
    assert "autovacuum freezes at 200,000,000" in calm.summary

    findings = await _run(
        monitor, WRAPAROUND_CHECK, thresholds=replace(LOW, wraparound=Limit(0, 1e12))
    )
    found = _on(findings, "fleetdeck")
    assert found.status is Status.WARN
    assert "database fleetdeck: its oldest unfrozen transaction ID is " in found.summary


async def test_inactive_replication_slot_holding_wal(pg: PgServer, monitor: PgSession) -> None:
    pg.sql("SELECT pg_create_physical_replication_slot('fd_test_slot', true)")
    try:
        pg.sql("CREATE TEMP TABLE wal AS SELECT g FROM generate_series(1, 1000) g")
        pg.sql("SELECT pg_switch_wal()")
        (calm,) = await _run(monitor, REPLICATION)
        assert calm.status is Status.OK
        assert calm.summary == "no standbys; 1 replication slot, 1 inactive"

        findings = await _run(
            monitor, REPLICATION, thresholds=replace(LOW, slot_wal=Limit(1, 1e15))
        )
        found = _on(findings, "slot fd_test_slot")
        assert found.status is Status.WARN
        assert re.search(r"slot fd_test_slot \(physical\) is inactive and holds \d", found.summary)
        assert "pg_drop_replication_slot('fd_test_slot')" in found.summary
    finally:
        pg.sql("SELECT pg_drop_replication_slot('fd_test_slot')")


# -- who may see what; fleetdeck's own sessions ----------------------------------------------


async def test_user_without_rights_sees_what_it_can_and_is_told_what_is_hidden(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = pg.open_sessions(3)
    others[0].execute("BEGIN")
    others[0].execute("SELECT 1")
    await asyncio.sleep(0.3)
    async with await _open(pg, LIMITED, monkeypatch) as session:
        findings = await _run(session, CONNECTIONS, IDLE_IN_TRANSACTION, LONG_QUERIES)
    connections = _on([f for f in findings if f.check == "db.connections"], "fleetdeck")
    assert connections.status is Status.OK
    assert re.match(r"3 of 97 connections in use \(3 %\): 3 hidden", connections.summary)
    note = "3 sessions of other users hide their state and query: grant pg_monitor to fd_limited"
    assert note in connections.summary
    idle = [f for f in findings if f.check == "db.idle_in_transaction"]
    assert [(f.status, f.target) for f in idle] == [(Status.UNKNOWN, "fleetdeck")]
    assert note in idle[0].summary  # it may be one of them: fleetdeck cannot say it is not
    assert f"pid {others[0].pid}" not in _text(findings)


async def test_fleetdeck_own_sessions_are_never_listed_or_counted(
    pg: PgServer, monitor: PgSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    pane = pg.session(name="fleetdeck")  # another fleetdeck session: the Host screen's pane
    pane.execute("BEGIN")
    pane.execute("SELECT 1")
    busy = pg.session(name="fleetdeck")
    busy.start("SELECT pg_sleep(30)")
    other = pg.session(name="app")
    other.execute("BEGIN")
    other.execute("SELECT 1")
    pg.wait_for("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", [busy.pid])
    await asyncio.sleep(0.3)

    findings = await _run(monitor, *DB_CHECKS)
    text = _text(findings)
    for pid in (pane.pid, busy.pid, monitor.backend_pid):
        assert not re.search(rf"\bpid {pid}\b", text)
    assert _on([f for f in findings if f.check == "db.idle_in_transaction"], f"pid {other.pid}")
    connections = _on([f for f in findings if f.check == "db.connections"], "fleetdeck")
    assert connections.summary.startswith("1 of 97 connections in use")
    assert "left out: 3 sessions of fleetdeck's own" in connections.evidence[0].output
    assert "/* fleetdeck" not in text


# -- D1: reachability; failures are findings ---------------------------------------------------


async def test_reachable_says_who_logged_in_and_how_long_it_took(
    pg: PgServer, monitor: PgSession
) -> None:
    (found,) = await _run(monitor, REACHABLE)
    assert found.status is Status.OK
    assert re.match(
        r"fd_monitor logged in to fleetdeck in \d+ ms: PostgreSQL 15\.\d+.*, a primary$",
        found.summary,
    )


async def test_wrong_password_is_reachable_crit_and_the_password_shows_nowhere(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    monkeypatch.setenv("FD_PG_WRONG", wrong)
    target = PgTarget(
        host=pg.host, port=pg.port, dbname=pg.dbname, user=MONITOR, password_env="FD_PG_WRONG"
    )
    findings = await check_database(target, HOST)
    assert [(f.check, f.status, f.target) for f in findings] == [
        ("db.reachable", Status.CRIT, "fleetdeck")
    ]
    summary = findings[0].summary
    assert summary.startswith("cannot connect: authentication failed: ")
    assert 'password authentication failed for user "fd_monitor"' in summary
    assert "(the password came from $FD_PG_WRONG)" in summary
    assert wrong not in _text(findings) and wrong not in repr(findings)
    assert pg.passwords[MONITOR] not in _text(findings)


async def test_a_lost_session_makes_the_remaining_checks_unknown_at_once(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await _open(pg, MONITOR, monkeypatch) as session:
        db = DbContext(session, HOST, LOW, label="fleetdeck")
        first = await run_on(db, [REACHABLE])
        assert first[0].status is Status.OK
        pg.sql("SELECT pg_terminate_backend(%s)", [session.backend_pid])
        started = time.monotonic()
        findings = await run_on(db, [VACUUM, SIZE, INDEXES])
    assert time.monotonic() - started < 2.0
    assert [f.status for f in findings] == [Status.UNKNOWN] * 3
    assert findings[0].summary.startswith("cannot read: connection lost")
    assert findings[1].summary.startswith("not checked: the session ended (connection lost")


async def test_every_check_on_the_test_server_is_cheap(pg: PgServer, monitor: PgSession) -> None:
    pg.open_sessions(20)
    db = DbContext(monitor, HOST, DbThresholds(), label="fleetdeck")
    findings = await run_on(db)
    assert {f.check for f in findings} == {c.id for c in DB_CHECKS}
    assert not [f for f in findings if f.status is Status.UNKNOWN], _text(findings)
    total = sum(t.seconds for t in db.timings)
    assert total < 1.0, db.timings
    assert len(db.timings) == 12  # server facts and activity are read once and shared


# -- pure parts --------------------------------------------------------------------------------


def _backend(pid: int, *blocked_by: int, waited: float = 1.0) -> Backend:
    return Backend(
        pid, None, "client backend", "app", "", None, "db", "active",
        "Lock" if blocked_by else None, "transactionid" if blocked_by else None,
        "UPDATE t", 1.0, waited, 1.0, tuple(blocked_by),
    )  # fmt: skip


def test_lock_chains_find_roots_through_waiters_and_leave_cycles_out() -> None:
    backends = [
        _backend(1),  # the root, running
        _backend(2, 1, waited=5),
        _backend(3, 2, waited=9),
        _backend(4, 2, 1, waited=2),  # waits on both: counted once
        _backend(5, 0),  # behind a prepared transaction
        _backend(6, 7), _backend(7, 6),  # a deadlock about to be broken: no root
    ]  # fmt: skip
    chains = lock_chains(backends)
    assert [(c.root_pid, len(c.direct), len(c.waiting)) for c in chains] == [(1, 2, 3), (0, 1, 1)]
    assert chains[0].longest_wait == 9
    assert chains[1].root is None


def test_passwords_in_query_text_are_blanked() -> None:
    assert redact("ALTER ROLE app PASSWORD 'it''s secret'") == "ALTER ROLE app PASSWORD '***'"
    assert redact("create user a with encrypted password 'x' valid until 'y'") == (
        "create user a with encrypted password '***' valid until 'y'"
    )
    assert redact("SELECT dblink_connect('host=a password=s3cret user=b')") == (
        "SELECT dblink_connect('host=a password=*** user=b')"
    )
    assert redact("SELECT 1 -- no secrets here") == "SELECT 1 -- no secrets here"


def test_thresholds_from_the_settings_table() -> None:
    parsed = parse_db_thresholds(
        {"connections": {"warn": 70}, "long_query": {"warn": 30, "crit": 120}, "top": 3}
    )
    assert parsed.connections == Limit(70, 90)
    assert parsed.long_query == Limit(30, 120)
    assert parsed.top == 3
    assert parsed.dead_rows == DbThresholds().dead_rows
    assert parse_db_thresholds({}) == DbThresholds()
    assert DbThresholds().unused_index_age == 7 * 86400
    assert parse_db_thresholds({"unused_index_age": 3600}).unused_index_age == 3600

    bad = {
        "conections": "unknown key (known: connect_seconds, connections,",
        "connections.crit": "a percentage cannot be over 100",
        "idle_in_transaction.warn": "warn (900) is above crit (600)",
        "dead_rows": "expected a whole number >= 0",
        "lock_wait.soon": "unknown key (known: warn, crit)",
        "top": "expected 1 to 100 rows",
    }
    tables: dict[str, dict[str, object]] = {
        "conections": {"conections": {"warn": 1}},
        "connections.crit": {"connections": {"crit": 120}},
        "idle_in_transaction.warn": {"idle_in_transaction": {"warn": 900}},
        "dead_rows": {"dead_rows": 1.5},
        "lock_wait.soon": {"lock_wait": {"soon": 1}},
        "top": {"top": 0},
    }
    for key, problem in bad.items():
        with pytest.raises(ValueError) as caught:
            parse_db_thresholds(tables[key])
        assert str(caught.value).startswith(f"thresholds.database.{key}: {problem}")
    with pytest.raises(ValueError, match="nan"):
        parse_db_thresholds({"slot_wal": {"warn": float("nan")}})
