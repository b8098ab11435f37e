"""The database wizard's fixes through the gate, against a real PostgreSQL from initdb.

Each test sets up the fault, runs the real wizard over a `DbLink`, picks the fix it offers,
and applies it through the one gate with an operator who says yes (and types the host name
for a destructive fix). The fault must be gone afterwards, the gate's verification (the
step re-run) must pass, and the audit log must hold the exact SQL and the pin. A pid reused
by another backend between the offer and the apply is refused by the pin, and the statement
itself acts on nothing even when the pin is bypassed.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import stat
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Thresholds
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.database.link import DbLink
from fleetdeck.checks.database.maintenance import VACUUM
from fleetdeck.checks.database.queries import Backend
from fleetdeck.checks.database.wizard import DATABASE_WIZARD, pick_target
from fleetdeck.checks.model import CheckContext, Finding, Fix, Status
from fleetdeck.checks.settings import Limit
from fleetdeck.checks.wizards import WizardRun
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.postgres.session import PgTarget
from fleetdeck.hosts.shell import LocalShell

from pgserver import MONITOR, SUPERUSER, PgServer, clear_libpq_env, password_target
from pgserver import pg as pg
from pgserver import pg_server as pg_server

HOST = "db-01"
LOW = DbThresholds(
    idle_in_transaction=Limit(0.2, 600),
    long_query=Limit(0.2, 600),
    lock_wait=Limit(0.0, 600),
    dead_rows=1000,
    unused_index_bytes=1 << 40,
)


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_libpq_env(tmp_path / "home", monkeypatch)


def _target(server: PgServer, user: str, monkeypatch: pytest.MonkeyPatch) -> PgTarget:
    return password_target(server, user, monkeypatch)


@pytest.fixture
async def link(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[DbLink]:
    """fleetdeck's link to the shared server as its administrator (fixes need the rights)."""
    target = _target(pg, SUPERUSER, monkeypatch)
    link = DbLink(target, HOST, thresholds=LOW, dump_dir=str(tmp_path / "dumps"))
    yield link
    await link.close()


class Operator:
    """Says yes, and types the host name when asked; keeps what it was shown."""

    def __init__(self) -> None:
        self.shown: list[list[str]] = []

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.shown.append(request.summary_lines())
        return Decision(True, HOST)


def _gate(tmp_path: Path, operator: Operator | None = None) -> ActionGate:
    return ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=operator or Operator())


async def _wizard(link: DbLink) -> WizardRun:
    ctx = CheckContext(HOST, SampleHistory(size=2), Thresholds(), None, None, {}, link)
    run = WizardRun(DATABASE_WIZARD, ctx)
    await run.run()
    return run


def _offer(run: WizardRun, check: str, target: str, fix_id: str) -> tuple[int, Finding, Fix]:
    index = run.index_of(check)
    for finding, fix in run.results[index].fixes:
        if finding.target == target and fix.id == fix_id:
            return index, finding, fix
    offered = [(f.target, x.id) for f, x in run.results[index].fixes]
    raise AssertionError(f"no {fix_id} on {target} in {check}; offered: {offered}")


async def _apply(
    gate: ActionGate, link: DbLink, run: WizardRun, check: str, target: str, fix_id: str
) -> ActionResult:
    index, finding, fix = _offer(run, check, target, fix_id)
    host = FixHost(HOST, LocalShell(HOST), None, link)
    return await gate.apply(host, finding, fix, run.verifier(index, finding))


def _records(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _table(pg: PgServer, request: pytest.FixtureRequest, quoted: bool = False) -> str:
    """A fresh table name, dropped after the test; `quoted`: one needing quotes (a space,
    capitals), so only psycopg.sql.Identifier gets it right."""
    base = re.sub(r"[^a-z0-9_]", "_", f"t_{request.node.name[5:22]}_{secrets.token_hex(3)}")
    name = f"Fix Me {base}" if quoted else base

    def drop() -> None:
        pg.close_sessions()
        pg.sql(
            psycopg.sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(name))
        )

    request.addfinalizer(drop)
    return name


# -- D3: backends -------------------------------------------------------------------------


async def test_terminating_the_root_blocker_ends_the_chain_and_is_verified(
    pg: PgServer, link: DbLink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    pg.sql(f"INSERT INTO {table} VALUES (1, 0)")
    a, b, c = (pg.session(name=f"chain-{n}") for n in "abc")
    a.execute("BEGIN")
    a.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
    waits_b = b.start(f"UPDATE {table} SET v = 2 WHERE id = 1")
    pg.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [a.pid, b.pid])
    waits_c = c.start(f"UPDATE {table} SET v = 3 WHERE id = 1")
    pg.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [b.pid, c.pid])

    ((xact_start,),) = pg.sql("SELECT xact_start FROM pg_stat_activity WHERE pid = %s", [a.pid])
    run = await _wizard(link)
    chain = run.results[run.index_of("db.lock_chain")]
    offered = [(f.target, x.id) for f, x in chain.fixes]
    # The root is idle in its transaction: nothing to cancel; terminate, alone or after a dump.
    assert offered == [(f"pid {a.pid}", "db.terminate"), (f"pid {a.pid}", "db.dump_terminate")]
    operator = Operator()
    result = await _apply(
        _gate(tmp_path, operator), link, run, "db.lock_chain", f"pid {a.pid}", "db.terminate"
    )

    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.after is not None and "no longer listed" in result.after.summary
    waits_b.result(timeout=10)  # the waiters went on
    waits_c.result(timeout=10)
    alive = pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [a.pid])
    assert alive == [(0,)]
    shown = "\n".join(operator.shown[0])
    assert f"pid {a.pid}" in shown and "2 session(s) wait on its locks" in shown
    assert "its transaction, open" in shown and "is rolled back" in shown
    assert f"runs on {pg.dbname} on {HOST}:" in shown
    statement = (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {a.pid} "
        f"AND backend_start = '"
    )
    assert f"=# {statement}" in shown
    started, finished = _records(tmp_path)
    assert started["event"] == "started" and finished["outcome"] == "verified"
    assert finished["commands"] == [
        f"{statement}{a.backend_start}'::timestamptz "
        f"AND xact_start IS NOT DISTINCT FROM '{xact_start}'::timestamptz"
    ]
    assert finished["pin"] == {  # the session, and the transaction that holds the lock
        "what": f"pid {a.pid}'s backend_start and xact_start",
        "value": f"{a.backend_start.isoformat()} {xact_start.isoformat()}",
    }
    assert pg.passwords[SUPERUSER] not in (tmp_path / "audit.jsonl").read_text()


async def test_idle_transaction_is_dumped_then_terminated(
    pg: PgServer, link: DbLink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    pg.sql(f"INSERT INTO {table} SELECT g, 'row ' || g FROM generate_series(1, 500) g")
    idle = pg.session(name="report-job")
    idle.execute("BEGIN")
    idle.execute(f"SELECT count(*) FROM {table}")
    pg.wait_for(
        "SELECT state = 'idle in transaction' AND now() - state_change > interval '0.3 s' "
        "FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )

    run = await _wizard(link)
    result = await _apply(
        _gate(tmp_path), link, run, "db.idle_in_transaction", f"pid {idle.pid}", "db.dump_terminate"
    )

    assert result.outcome is Outcome.VERIFIED, result.message
    dump_run, kill_run = result.runs
    assert dump_run.ok and kill_run.ok
    path = Path(dump_run.output.splitlines()[0].removeprefix("wrote "))
    assert path.parent == tmp_path / "dumps" and path.name.startswith(f"{pg.dbname}-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a dump holds the data
    listing = await asyncio.to_thread(
        subprocess.run, ["pg_restore", "--list", str(path)], capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    assert f"TABLE DATA public {table}" in listing.stdout
    assert pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [idle.pid]) == [(0,)]


async def test_a_failed_dump_terminates_nothing(pg: PgServer, link: DbLink, tmp_path: Path) -> None:
    idle = pg.session(name="batch")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pg.wait_for(
        "SELECT now() - state_change > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )
    (tmp_path / "dumps").write_text("a file where the directory should be")

    run = await _wizard(link)
    result = await _apply(
        _gate(tmp_path), link, run, "db.idle_in_transaction", f"pid {idle.pid}", "db.dump_terminate"
    )

    assert result.outcome is Outcome.FAILED
    assert len(result.runs) == 1 and "cannot make" in result.message
    assert idle.execute("SELECT 1") == [(1,)]  # still there, transaction and all


async def test_cancelling_a_long_query_keeps_the_session(
    pg: PgServer, link: DbLink, tmp_path: Path
) -> None:
    runaway = pg.session(name="runaway")
    running = runaway.start("SELECT pg_sleep(60)")
    pg.wait_for(
        "SELECT now() - query_start > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [runaway.pid],
    )

    run = await _wizard(link)
    result = await _apply(
        _gate(tmp_path), link, run, "db.long_queries", f"pid {runaway.pid}", "db.cancel"
    )

    assert result.outcome is Outcome.VERIFIED, result.message
    with pytest.raises(psycopg.errors.QueryCanceled):
        running.result(timeout=10)
    assert runaway.execute("SELECT 1") == [(1,)]  # the session stays


async def test_a_reused_pid_is_refused_by_the_pin_and_by_the_statement(
    pg: PgServer, link: DbLink, tmp_path: Path
) -> None:
    """The finding was about pid N started at T1; now pid N is another backend, started at
    T2. Forcing the kernel to hand out the same pid again is not something a test should do
    to a machine, so the finding's backend is built with the other session's pid and the
    first one's start: to the server it is exactly a reused pid."""
    first, other = pg.session(name="first"), pg.session(name="other-job")
    other.execute("BEGIN")
    other.execute("SELECT 1")
    assert first.backend_start != other.backend_start
    ((xact_start,),) = pg.sql("SELECT xact_start FROM pg_stat_activity WHERE pid = %s", [other.pid])
    offered = Backend(
        pid=other.pid,
        backend_start=first.backend_start,
        backend_type="client backend",
        user=SUPERUSER,
        application="first",
        client=None,
        database=pg.dbname,
        state="idle in transaction",
        wait_event_type="Client",
        wait_event="ClientRead",
        query="SELECT 1",
        xact_seconds=600.0,
        query_seconds=600.0,
        state_seconds=600.0,
        xact_start=xact_start,  # even the transaction matches: only the process differs
    )
    from fleetdeck.checks.database import fixes as db_fixes

    fix, _ = db_fixes.terminate(offered, "db.idle_in_transaction", 0, pg.dbname)
    finding = Finding("db.idle_in_transaction", Status.WARN, offered.target, "idle", (), (fix,))

    async def verify() -> Finding:
        raise AssertionError("an aborted fix is not verified")

    host = FixHost(HOST, LocalShell(HOST), None, link)
    result = await _gate(tmp_path).apply(host, finding, fix, verify)
    assert result.outcome is Outcome.ABORTED
    was = f"{first.backend_start.isoformat()} {xact_start.isoformat()}"
    assert f"it was {was!r}" in result.message
    assert f"it is now '{other.backend_start.isoformat()} " in result.message
    assert not result.runs

    # Even past the pin, the statement names pid and start together: it touches nothing.
    step = fix.statements[0]
    ran = await link.execute(step, 10)
    assert not ran.ok and "the target is gone or has moved on" in ran.output
    assert other.execute("SELECT 1") == [(1,)]
    (aborted,) = _records(tmp_path)
    assert aborted["outcome"] == "aborted"


async def test_without_the_right_to_signal_the_terminate_fails_and_says_why(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The monitoring user (pg_monitor, not pg_signal_backend) cannot end a superuser's
    session: the fix fails with the server's reason and the session lives on."""
    idle = pg.session(name="admin-shell")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pg.wait_for(
        "SELECT now() - state_change > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )
    link = DbLink(_target(pg, MONITOR, monkeypatch), HOST, thresholds=LOW)
    try:
        run = await _wizard(link)
        result = await _apply(
            _gate(tmp_path), link, run, "db.idle_in_transaction", f"pid {idle.pid}", "db.terminate"
        )
    finally:
        await link.close()
    assert result.outcome is Outcome.FAILED
    assert "permission denied" in result.message or "must be a" in result.message
    assert idle.execute("SELECT 1") == [(1,)]


# -- D5, D6: tables and indexes -----------------------------------------------------------


async def test_vacuum_analyze_clears_the_dead_rows_of_a_table_whose_name_needs_quotes(
    pg: PgServer, link: DbLink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request, quoted=True)
    ident = psycopg.sql.Identifier(table).as_string(None)
    pg.sql(f"CREATE TABLE {ident} (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)")
    pg.sql(f"INSERT INTO {ident} SELECT g, 'x' FROM generate_series(1, 20000) g")
    pg.sql(f"DELETE FROM {ident} WHERE id > 5000")
    pg.wait_for("SELECT n_dead_tup = 15000 FROM pg_stat_user_tables WHERE relname = %s", [table])

    run = await _wizard(link)
    operator = Operator()
    result = await _apply(
        _gate(tmp_path, operator), link, run, "db.vacuum", f"public.{ident}", "db.vacuum_analyze"
    )

    assert result.outcome is Outcome.VERIFIED, result.message
    assert f'=# VACUUM (ANALYZE) "public".{ident}' in "\n".join(operator.shown[0])
    (dead,) = pg.sql("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [table])
    assert dead == (0,)


async def test_reindex_concurrently_makes_an_invalid_index_valid(
    pg: PgServer, link: DbLink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    pg.sql(f"INSERT INTO {table} SELECT g, g FROM generate_series(1, 2000) g")
    pg.sql(f"INSERT INTO {table} VALUES (5000, 1)")  # a duplicate v
    with pytest.raises(psycopg.errors.UniqueViolation):  # leaves an invalid index behind
        pg.sql(f"CREATE UNIQUE INDEX CONCURRENTLY {table}_v ON {table} (v)")
    pg.sql(f"DELETE FROM {table} WHERE id = 5000")  # the data is right again

    run = await _wizard(link)
    result = await _apply(
        _gate(tmp_path), link, run, "db.indexes", f"public.{table}_v", "db.reindex"
    )

    assert result.outcome is Outcome.VERIFIED, result.message
    valid = pg.sql(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [f"{table}_v"]
    )
    assert valid == [(True,)]


async def test_a_failed_statement_is_failed_and_the_check_still_reports_it(
    pg: PgServer, link: DbLink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """REINDEX of an index whose data is still wrong fails with the server's reason; the
    finding stays, and the gate says failed, not verified."""
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    pg.sql(f"INSERT INTO {table} VALUES (1, 1), (2, 1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.sql(f"CREATE UNIQUE INDEX CONCURRENTLY {table}_v ON {table} (v)")

    run = await _wizard(link)
    result = await _apply(
        _gate(tmp_path), link, run, "db.indexes", f"public.{table}_v", "db.reindex"
    )

    assert result.outcome is Outcome.FAILED
    assert "could not create unique index" in result.message
    assert result.after is not None and result.after.status is Status.WARN
    pg.sql(f"DROP INDEX IF EXISTS {table}_v_ccnew")


async def test_read_only_refuses_a_database_fix_and_runs_no_sql(
    pg: PgServer, link: DbLink, tmp_path: Path
) -> None:
    idle = pg.session(name="war-room")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pg.wait_for(
        "SELECT now() - state_change > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )
    run = await _wizard(link)
    gate = _gate(tmp_path)
    gate.read_only = True
    result = await _apply(
        gate, link, run, "db.idle_in_transaction", f"pid {idle.pid}", "db.terminate"
    )
    assert result.outcome is Outcome.REFUSED and not result.runs
    assert idle.execute("SELECT 1") == [(1,)]


# -- what a fix must not do: act on what the operator was not shown -----------------------


async def test_a_cancel_is_refused_once_the_statement_shown_has_ended(
    pg: PgServer, link: DbLink, tmp_path: Path
) -> None:
    """The long statement ended and the client sent another: cancelling now would hit
    work nobody looked at, so the pin (query_start) refuses it."""
    runaway = pg.session(name="checkout")
    first = runaway.start("SELECT pg_sleep(60)")
    pg.wait_for(
        "SELECT now() - query_start > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [runaway.pid],
    )
    run = await _wizard(link)
    index, finding, fix = _offer(run, "db.long_queries", f"pid {runaway.pid}", "db.cancel")
    pg.sql("SELECT pg_cancel_backend(%s)", [runaway.pid])  # it ends by itself, say
    with pytest.raises(psycopg.errors.QueryCanceled):
        first.result(timeout=10)
    second = runaway.start("SELECT pg_sleep(60)")  # and the client goes on with other work
    pg.wait_for("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", [runaway.pid])

    host = FixHost(HOST, LocalShell(HOST), None, link)
    result = await _gate(tmp_path).apply(host, finding, fix, run.verifier(index, finding))
    assert result.outcome is Outcome.ABORTED, result.message
    assert "query_start changed since the fix was offered" in result.message
    assert not second.done()  # the new statement runs on
    pg.sql("SELECT pg_cancel_backend(%s)", [runaway.pid])
    runaway.settle()


async def test_a_terminate_is_refused_once_the_transaction_shown_has_committed(
    pg: PgServer, link: DbLink, tmp_path: Path
) -> None:
    idle = pg.session(name="batch")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pg.wait_for(
        "SELECT now() - state_change > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )
    run = await _wizard(link)
    index, finding, fix = _offer(run, "db.idle_in_transaction", f"pid {idle.pid}", "db.terminate")
    idle.execute("COMMIT")  # the owner came back and finished...
    idle.execute("BEGIN")  # ... and started new work
    idle.execute("SELECT 2")

    host = FixHost(HOST, LocalShell(HOST), None, link)
    result = await _gate(tmp_path).apply(host, finding, fix, run.verifier(index, finding))
    assert result.outcome is Outcome.ABORTED, result.message
    assert "xact_start changed since the fix was offered" in result.message
    assert idle.execute("SELECT 3") == [(3,)]


async def test_a_vacuum_is_verified_on_its_own_table_not_on_the_top_list(
    pg: PgServer, link: DbLink, request: pytest.FixtureRequest
) -> None:
    """The check lists the worst `top` tables; a verification asks about the table the fix
    was for (focus), so a table pushed out of the list by a worse one is not 'resolved'."""
    worse, mine = _table(pg, request), _table(pg, request)
    for name, dead in ((worse, 15000), (mine, 11000)):
        pg.sql(f"CREATE TABLE {name} (id int) WITH (autovacuum_enabled = off)")
        pg.sql(f"INSERT INTO {name} SELECT generate_series(1, {dead + 1000})")
        pg.sql(f"DELETE FROM {name} WHERE id > 1000")
        pg.wait_for(
            "SELECT n_dead_tup = %s FROM pg_stat_user_tables WHERE relname = %s", [dead, name]
        )
    top_one = DbLink(link.target, HOST, thresholds=replace(LOW, top=1))
    try:
        db = await top_one.context()
        listed = await VACUUM.check(db)
        assert [f.target for f in listed if f.target.startswith("public.t_")] == [f"public.{worse}"]
        db = await top_one.context()
        db.focus = f"public.{mine}"
        focused = await VACUUM.check(db)
    finally:
        await top_one.close()
    assert {f.target for f in focused} >= {f"public.{worse}", f"public.{mine}"}
    assert next(f for f in focused if f.target == f"public.{mine}").status is not Status.OK


async def test_a_vacuum_the_user_may_not_do_fails_with_the_servers_reason(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """VACUUM of another owner's table only warns and skips it: that is a failed fix."""
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int) WITH (autovacuum_enabled = off)")
    pg.sql(f"INSERT INTO {table} SELECT generate_series(1, 20000)")
    pg.sql(f"DELETE FROM {table} WHERE id > 1000")
    pg.wait_for("SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = %s", [table])
    monitor = DbLink(_target(pg, MONITOR, monkeypatch), HOST, thresholds=LOW)
    try:
        run = await _wizard(monitor)
        result = await _apply(
            _gate(tmp_path), monitor, run, "db.vacuum", f"public.{table}", "db.vacuum_analyze"
        )
    finally:
        await monitor.close()
    assert result.outcome is Outcome.FAILED, result.message
    assert "skipping" in result.message and "not done: WARNING" in result.message


async def test_an_index_left_by_an_interrupted_reindex_is_never_rebuilt(
    pg: PgServer, link: DbLink, request: pytest.FixtureRequest
) -> None:
    table = _table(pg, request)
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    pg.sql(f"INSERT INTO {table} VALUES (1, 1), (2, 1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.sql(f"CREATE UNIQUE INDEX CONCURRENTLY {table}_v_ccnew ON {table} (v)")
    run = await _wizard(link)
    step = run.results[run.index_of("db.indexes")]
    (leftover,) = [f for f in step.findings if f.target == f"public.{table}_v_ccnew"]
    assert "left by a REINDEX ... CONCURRENTLY that stopped midway" in leftover.summary
    assert f"DROP INDEX CONCURRENTLY public.{table}_v_ccnew" in leftover.summary
    assert not leftover.fixes


async def test_a_name_with_a_line_break_cannot_write_a_line_of_the_confirmation(
    pg: PgServer, link: DbLink, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    table = _table(pg, request, quoted=True) + "\nimpact:  none, read-only"
    request.addfinalizer(
        lambda: pg.sql(
            psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(psycopg.sql.Identifier(table))
        )
    )
    ident = psycopg.sql.Identifier(table).as_string(None)
    pg.sql(f"CREATE TABLE {ident} (id int) WITH (autovacuum_enabled = off)")
    pg.sql(f"INSERT INTO {ident} SELECT generate_series(1, 20000)")
    pg.sql(f"DELETE FROM {ident} WHERE id > 1000")
    pg.wait_for("SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = %s", [table])
    run = await _wizard(link)
    step = run.results[run.index_of("db.vacuum")]
    (finding, fix), *_ = [(f, x) for f, x in step.fixes if "impact" in f.target]
    assert "\n" not in finding.target and "\\nimpact:" in finding.target  # printable's escape
    lines = ConfirmRequest(FixHost(HOST, LocalShell(HOST), None, link), finding, fix)
    shown = lines.summary_lines()
    assert [line for line in shown if line.startswith("impact:")] == [
        next(line for line in shown if line.startswith("impact:  reads"))
    ]


def test_a_target_named_twice_must_be_named_apart() -> None:
    first = PgTarget(dbname="orders", port=5432)
    second = PgTarget(dbname="orders", port=5433)
    with pytest.raises(ValueError, match="several PostgreSQL targets; pick one"):
        pick_target((first, second), None, HOST)
    with pytest.raises(ValueError, match="2 PostgreSQL targets called 'orders': give each a name"):
        pick_target((first, second), "orders", HOST)
    named = replace(second, name="orders-replica")
    assert pick_target((first, named), "orders-replica", HOST) is named
    only = replace(first, name="orders")
    assert pick_target((only, named), "orders", HOST) is only  # a name wins over a dbname
