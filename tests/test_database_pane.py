"""The Host screen's database pane against real PostgreSQL servers started from initdb.

First what it reads (`checks.database.pane.read_pane`) while an operator's usual trouble is set
up: a lock chain, a long query, a session idle in a transaction, a burst of commits. Then
the bad input it must take calmly: a server that is down or stops under it, one that
accepts the connection and never answers (SIGSTOP), an SSL mismatch, a database that does
not exist, a user without statistics rights. Last, the pane on the local console, driven
by Pilot at 80x24 and larger, and kept responsive while its server is frozen.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.checks.database.link import DbLink
from fleetdeck.checks.database.pane import Counters, PaneSnapshot, rates, read_pane
from fleetdeck.hosts.postgres.session import PgTarget
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets import DatabasePane, ProcessTable

from conftest import require_binary
from pgserver import (
    LIMITED,
    MONITOR,
    PgFactory,
    PgServer,
    clear_libpq_env,
    free_port,
    password_target,
    point_libpq_at,
)
from pgserver import make_pg as make_pg
from pgserver import pg as pg
from pgserver import pg_server as pg_server

HOST = "db-01"
NO_STANDBYS = ("primary, no standbys streaming from it",)
HIDDEN = "3 sessions of other users hide their state and query: grant pg_monitor to fd_limited"


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_libpq_env(tmp_path / "home", monkeypatch)


def _link(
    server: PgServer, monkeypatch: pytest.MonkeyPatch, user: str = MONITOR, **extra: str
) -> DbLink:
    return DbLink(password_target(server, user, monkeypatch, **extra), HOST)


async def _read(link: DbLink, previous: PaneSnapshot | None = None) -> tuple[PaneSnapshot, float]:
    """A reading and how long it took; it must never hang."""
    started = time.monotonic()
    async with asyncio.timeout(15):
        snapshot = await read_pane(link, previous)
    return snapshot, time.monotonic() - started


def _lock_chain(server: PgServer, table: str) -> tuple[int, int, int]:
    """chain-a holds a row and sits idle in its transaction; chain-b waits on it, chain-c
    on chain-b. Their pids."""
    server.sql(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, v int)")
    server.sql(f"INSERT INTO {table} VALUES (1, 0) ON CONFLICT DO NOTHING")
    a, b, c = (server.session(name=f"chain-{n}") for n in "abc")
    a.execute("BEGIN")
    a.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
    b.start(f"UPDATE {table} SET v = 2 WHERE id = 1")
    server.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [a.pid, b.pid])
    c.start(f"UPDATE {table} SET v = 3 WHERE id = 1")
    server.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [b.pid, c.pid])
    return a.pid, b.pid, c.pid


def _running(server: PgServer, query: str, name: str = "report") -> int:
    runner = server.session(name=name)
    runner.start(query)
    server.wait_for("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", [runner.pid])
    return runner.pid


# -- what the pane reads ---------------------------------------------------------------------


async def test_connections_running_statements_and_the_lock_chain_leave_fleetdeck_out(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pg()
    report = _running(server, "SELECT pg_sleep(30)")
    a, b, c = _lock_chain(server, "orders")
    server.session(name="idle-app")
    server.session(name="fleetdeck").execute("SELECT 1")  # another fleetdeck console's session
    await asyncio.sleep(0.3)
    link = _link(server, monkeypatch)
    try:
        snapshot, _ = await _read(link)
        mine = (await link.session()).backend_pid
    finally:
        await link.close()

    assert snapshot.error is None, snapshot.error
    assert (snapshot.user, snapshot.database, snapshot.role) == (MONITOR, "fleetdeck", "primary")
    assert snapshot.states == (("active", 3), ("idle", 1), ("idle in transaction", 1))
    assert (snapshot.connections, snapshot.usable, snapshot.own) == (5, 97, 2)
    assert snapshot.active_total == 3
    assert [line.pid for line in snapshot.active] == [report, b, c]  # the longest running first
    sleeper = snapshot.active[0]
    assert (sleeper.wait, sleeper.query) == ("Timeout:PgSleep", "SELECT pg_sleep(30)")
    assert (sleeper.who, sleeper.application) == ("postgres@127.0.0.1", "report")
    assert snapshot.active[1].wait.startswith("Lock:")
    (chain,) = snapshot.chains
    assert chain.root is not None and chain.root_pid == a
    assert (chain.root.state, chain.root.application) == ("idle in transaction", "chain-a")
    assert chain.root.query == "UPDATE orders SET v = 1 WHERE id = 1"
    assert [(w.pid, w.blocked_by) for w in chain.waiting] == [(b, (a,)), (c, (b,))]
    assert (chain.total, chain.direct) == (2, 1)
    listed = {line.pid for line in snapshot.active} | {chain.root_pid}
    assert mine not in listed
    assert (snapshot.tps, snapshot.rate_note) == (None, "first reading")
    assert snapshot.cache_hit is not None and 0 <= snapshot.cache_hit <= 100
    assert snapshot.replication == NO_STANDBYS
    assert (snapshot.hidden, snapshot.notes) == ("", ())


async def test_transactions_per_second_from_the_second_reading(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = _link(pg, monkeypatch)
    try:
        first, _ = await _read(link)
        assert first.tps is None and first.rate_note == "first reading"
        app = pg.session(name="app")
        for _ in range(60):
            app.execute("SELECT 1")  # each its own committed transaction (autocommit)
        app.execute("SELECT pg_stat_force_next_flush()")
        await asyncio.sleep(0.3)
        second, _ = await _read(link, first)
    finally:
        await link.close()
    assert second.error is None and second.counters and first.counters
    took = second.counters.at - first.counters.at
    assert second.tps is not None and second.rate_note == ""
    assert 50 <= second.tps * took <= 120, (second.tps, took)
    assert second.cache_hit is not None and 0 <= second.cache_hit <= 100


def test_a_statistics_reset_makes_the_rate_unknown_for_one_reading() -> None:
    before = Counters(xacts=5_000, blks_hit=900, blks_read=100, sent=8, at=10.0)
    now = Counters(xacts=40, blks_hit=30, blks_read=10, sent=12, at=12.0)
    assert rates(now, before) == (None, 75.0, "statistics were reset")
    later = Counters(xacts=144, blks_hit=130, blks_read=10, sent=16, at=14.0)
    assert rates(later, now) == (50.0, 100.0, "")  # 104 transactions, 4 of them the pane's


async def test_a_primary_lists_the_standby_streaming_from_it(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """pg_receivewal streams WAL as a standby does, and shows in pg_stat_replication so."""
    receivewal = require_binary("pg_receivewal", "postgresql-client")
    server = make_pg()
    with (server.data / "pg_hba.conf").open("a") as hba:
        hba.write("local replication all trust\n")
    server.sql("SELECT pg_reload_conf()")
    (tmp_path / "wal").mkdir()
    argv = [receivewal, "-D", str(tmp_path / "wal"), "-h", str(server.socket_dir)]
    argv += ["-p", str(server.port), "-U", "postgres", "--no-loop"]
    receiver = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    link = _link(server, monkeypatch)
    try:
        server.wait_for("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        snapshot, _ = await _read(link)
    finally:
        await link.close()
        receiver.terminate()
        await asyncio.wait_for(receiver.wait(), 10)
    assert snapshot.replication[0] == "primary, 1 standby:"
    standby = r"standby pg_receivewal \(local\) streaming async: replay lag \S+, [\d.]+ \S+ behind"
    assert re.fullmatch(standby, snapshot.replication[1]), snapshot.replication


# -- bad input: a clear state, never a hang or a traceback ---------------------------------


async def test_a_catalog_lock_leaves_the_rest_of_the_pane_and_says_what_is_missing(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone holds pg_authid exclusively (a VACUUM FULL of it): pg_stat_activity cannot be
    read without queueing, so the pane says so and shows the rest, and never waits."""
    link = _link(pg, monkeypatch)
    holder = pg.session(name="maintenance")
    try:
        good, _ = await _read(link)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE")
        try:
            locked, took = await _read(link, good)
        finally:
            holder.execute("ROLLBACK")
        again, _ = await _read(link, locked)
    finally:
        await link.close()
    assert took < 2 and locked.error is None and not locked.seen
    assert locked.tps is not None and locked.cache_hit is not None and locked.user == MONITOR
    gave_up = "cannot read: lock wait given up: gave up after 50 ms waiting for a lock"
    assert locked.notes[0].startswith(f"sessions: {gave_up}")
    assert again.seen and again.notes == () and again.error is None


async def test_a_server_that_is_down_or_stops_under_the_pane(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    nobody = DbLink(PgTarget(host="127.0.0.1", port=port, dbname="fleetdeck", user=MONITOR), HOST)
    down, _ = await _read(nobody)
    assert down.error == (
        f"cannot connect to db-01: PostgreSQL fleetdeck (fd_monitor@127.0.0.1:{port}): "
        f"server down: nothing listens at 127.0.0.1 port {port} (connection refused)"
    )

    server = make_pg()
    link = _link(server, monkeypatch)
    try:
        good, _ = await _read(link)
        assert good.error is None
        server.stop()
        lost, _ = await _read(link, good)
        assert lost.error is not None and "connection lost" in lost.error
        assert "the pane reconnects at its next reading" in lost.error
        gone, _ = await _read(link, lost)
    finally:
        await link.close()
    assert gone.error is not None and "server down: nothing listens at" in gone.error
    assert gone.counters == good.counters  # the rate resumes from the last figures
    assert server.passwords[MONITOR] not in repr([lost, gone])


async def test_a_frozen_server_gives_an_error_in_seconds_and_the_pane_recovers(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pg()
    link = _link(server, monkeypatch)
    try:
        good, _ = await _read(link)
        assert good.error is None
        with server.frozen_server(everything=True):
            silent, took = await _read(link, good)
            assert took < 10, took
            assert silent.error is not None and "no answer within 7 s" in silent.error
            fresh, took = await _read(_link(server, monkeypatch))
            assert took < 10, took
            assert fresh.error is not None and fresh.error.startswith("cannot connect to db-01")
            assert "accepts the connection but does not reply" in fresh.error
        back, _ = await _read(link, silent)
    finally:
        await link.close()
    assert back.error is None and back.tps is not None


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"dbname": "ordrs"}, 'database does not exist: database "ordrs" does not exist'),
        ({"sslmode": "require"}, "SSL mismatch: the server has SSL off, but sslmode requires"),
    ],
)
async def test_a_missing_database_or_an_ssl_mismatch_is_said_plainly(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], said: str
) -> None:
    link = _link(pg, monkeypatch, **extra)
    snapshot, took = await _read(link)
    assert took < 6
    assert snapshot.error is not None and snapshot.error.startswith("cannot connect to db-01:")
    assert said in snapshot.error
    assert pg.passwords[MONITOR] not in repr(snapshot)


async def test_a_user_without_rights_sees_counts_and_is_told_what_is_hidden(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pg()
    server.sql("REVOKE SELECT ON pg_catalog.pg_stat_replication FROM PUBLIC")
    others = server.open_sessions(2)
    others[0].execute("BEGIN")
    others[0].execute("SELECT 1")
    _running(server, "SELECT pg_sleep(30)")
    link = _link(server, monkeypatch, LIMITED)
    try:
        snapshot, _ = await _read(link)
    finally:
        await link.close()
    assert snapshot.error is None
    assert snapshot.states == (("hidden", 3),) and snapshot.active_total == 0
    assert snapshot.hidden == f"{HIDDEN} to see them"
    assert snapshot.replication == ()  # the part it may not read, said in a note
    (note,) = snapshot.notes
    assert note.startswith("replication: cannot read: permission denied: ")
    assert note.endswith("(grant pg_monitor to fd_limited)")
    assert snapshot.cache_hit is not None  # the rest is still read


# -- the pane on the Host screen --------------------------------------------------------------


async def _until(pilot: Pilot[None], condition: Callable[[], object], timeout: float) -> None:
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


def _text(pane: DatabasePane, width: int | None = None) -> str:
    return "\n".join(line.plain for line in pane.lines(width))


async def test_the_local_console_shows_the_chain_and_the_long_query_at_80x24_and_wide(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    point_libpq_at(pg, monkeypatch, tmp_path, MONITOR)
    table = f"pane_{secrets.token_hex(3)}"
    secret = f"s3cret-{secrets.token_hex(4)}"
    hostile = f"SELECT pg_sleep(30) /* [red]x\x1b[2J ALTER ROLE r PASSWORD '{secret}' */"
    report = _running(pg, hostile)
    a, b, c = _lock_chain(pg, table)
    app = make_app(Settings(interval=0.5, postgres=True, storage_every=0), Config())
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, HostScreen)
            pane = screen.query_one(DatabasePane)
            assert pane.border_title == "6 Database"
            await _until(pilot, lambda: pane.good is not None and pane.good.chains, 15)
            text = _text(pane)
            assert text.startswith("fd_monitor@fleetdeck · primary · tps unknown (first reading)")
            assert re.search(r"\n4 of 97 connections: 3 active, 1 idle in transaction\b", text)
            assert "Running statements: 3\n" in text
            sleeping = rf"\n +{report} +\S+ +Timeout:PgSleep +127\.0\.0\.1 +SELECT pg_sleep\(30\)"
            assert re.search(sleeping, text)
            assert re.search(rf"\n +{b} +\S+ +Lock:transacti… +127\.0\.0\.1 +UPDATE {table}", text)
            assert "[red]x\\x1b[2J" in text and "PASSWORD '***'" in text
            assert secret not in text and pg.passwords[MONITOR] not in text
            assert (
                f"\npid {a} postgres@127.0.0.1 (chain-a) idle in transaction, transaction open "
            ) in text
            assert "blocks 2 (1 directly), longest wait" in text
            assert f"\n  └ pid {b} postgres@127.0.0.1 (chain-b) waits " in text
            assert f"\n    └ pid {c} postgres@127.0.0.1 (chain-c) waits " in text
            assert f" on {b}: UPDATE {table} SET v = 3 WHERE id = 1" in text
            assert text.endswith("Replication: " + NO_STANDBYS[0])
            await pilot.press("6")
            await pilot.pause(0.2)
            assert screen.focused is pane and pane.region.height > 4
            await _until(pilot, lambda: pane.good is not None and pane.good.tps is not None, 10)
            rate = r"fd_monitor@fleetdeck · primary · [\d,.]+ tps · cache hit [\d.]+ %"
            assert re.match(rate, _text(pane))

            await pilot.resize_terminal(160, 50)
            await pilot.pause(0.3)
            assert screen.has_class("-wide") and pane.size.width > 80
            wide = _text(pane)
            assert re.search(r"\n +pid +time +wait event +client +query\n", wide)
            waiting = rf"\n +{b} +\S+ +Lock:transactionid +postgres@127\.0\.0\.1 +UPDATE {table}"
            assert re.search(waiting, wide)
    finally:
        pg.close_sessions()
        pg.sql(f"DROP TABLE IF EXISTS {table}")


async def test_a_frozen_server_never_freezes_the_screen(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = make_pg()
    point_libpq_at(server, monkeypatch, tmp_path, MONITOR)
    app = make_app(Settings(interval=0.5, postgres=True, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        pane = screen.query_one(DatabasePane)
        processes = screen.query_one(ProcessTable)
        await _until(pilot, lambda: pane.good is not None, 15)
        server.freeze(everything=True)
        try:
            await pilot.press("r")  # a reading at once, which will hang on the server
            for key, column in (("m", "mem"), ("p", "pid"), ("c", "cpu")):
                started = time.monotonic()
                await pilot.press(key)
                assert processes.sort_by == column and time.monotonic() - started < 1
            await _until(pilot, lambda: pane.latest is not None and pane.latest.error, 15)
            assert pane.has_class("-error")
            error = pane.latest.error if pane.latest else ""
            assert error is not None and "no answer" in error
            text = _text(pane)
            assert text.startswith(error)
            assert "\nSTALE " in text and ": the last good reading, of " in text
            assert "fd_monitor@fleetdeck · primary" in text  # the last figures, marked stale
        finally:
            server.thaw()
        await _until(pilot, lambda: pane.latest is not None and pane.latest.error is None, 20)
        assert not pane.has_class("-error") and not pane.stale
        assert [w.is_running for w in app.workers if w.group == "database"] == [True]
