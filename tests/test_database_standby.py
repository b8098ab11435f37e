"""PostgreSQL checks that depend on the server's role, on a real primary and a real streaming
standby (pg_basebackup through a replication slot, on loopback ports of their own): a
standby's lag is the WAL it received and has not replayed and how long that waited, never
the age of the last replayed commit; a standby whose replay is really held back is graded by
that wait."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.database.checks import INDEXES, REPLICATION, DbCheck, run_db_checks
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.postgres.session import open_session

from pgserver import LIMITED, MONITOR, PgFactory, PgServer, clear_libpq_env, password_target
from pgserver import make_pg as make_pg

HOST = "db-02"


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_libpq_env(tmp_path / "home", monkeypatch)


@pytest.fixture
def pair(make_pg: PgFactory) -> Iterator[tuple[PgServer, PgServer]]:
    primary = make_pg()
    standby = make_pg.standby(primary)
    standby.wait_caught_up()
    yield primary, standby


async def _replication(
    server: PgServer, monkeypatch: pytest.MonkeyPatch, thresholds: DbThresholds
) -> Finding:
    return await _one(server, monkeypatch, thresholds, REPLICATION)


async def _one(
    server: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    thresholds: DbThresholds,
    check: DbCheck,
    user: str = MONITOR,
) -> Finding:
    target = password_target(server, user, monkeypatch)
    async with await open_session(target, host=HOST) as session:
        (found,) = await run_db_checks(session, HOST, thresholds, checks=(check,))
    return found


async def test_a_standby_under_a_bulk_insert_is_graded_by_its_replay_backlog_not_commit_age(
    pair: tuple[PgServer, PgServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The primary runs one long INSERT (no commit for seconds): the age of the standby's
    last replayed commit grows past the 2 s threshold, while replay keeps up. Each reading
    is OK, or graded by a real backlog that replay did not clear within the probe."""
    primary, standby = pair
    low = DbThresholds(replication_lag=Limit(2, 600))
    primary.sql("CREATE TABLE bulk (id int, pad text)")
    standby.wait_caught_up()
    await asyncio.sleep(2.5)  # the last replayed commit is now older than the threshold

    caught_up = await _replication(standby, monkeypatch, low)
    assert caught_up.status is Status.OK, caught_up.summary
    assert caught_up.summary.endswith("caught up: everything received is replayed")
    commit = re.search(r"last replayed commit ([\d.]+) s ago", caught_up.evidence[0].output)
    assert commit and float(commit[1]) >= 2.5, caught_up.evidence  # ... and it is old
    limited = await _one(standby, monkeypatch, low, REPLICATION, user=LIMITED)
    assert limited.status is Status.OK, limited.summary  # its receiver is hidden, not missing
    assert "(receiver hidden: grant pg_monitor to see it): caught up" in limited.summary

    insert = "INSERT INTO bulk SELECT g, repeat('x', 200) FROM generate_series(1, 1500000) g"
    loader = threading.Thread(target=primary.sql, args=(insert,))
    loader.start()
    readings = []
    try:
        while loader.is_alive() or not readings:
            readings.append(await _replication(standby, monkeypatch, low))
    finally:
        loader.join()
    behind = [f for f in readings if "received and not yet replayed" in f.summary]
    assert behind, [f.summary for f in readings]  # the insert was seen in flight
    for found in readings:
        said = found.summary
        assert found.status is Status.OK or "replay runs at" in said, said
    standby.wait_caught_up()
    after = await _replication(standby, monkeypatch, low)
    assert after.status is Status.OK and "caught up" in after.summary


async def test_a_standby_whose_replay_is_paused_is_graded_by_how_long_its_backlog_waited(
    pair: tuple[PgServer, PgServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, standby = pair
    primary.sql("CREATE TABLE orders (id int)")
    standby.wait_caught_up()
    standby.sql("SELECT pg_wal_replay_pause()")
    primary.sql("INSERT INTO orders SELECT generate_series(1, 20000)")
    standby.wait_for(
        "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn",
        [primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0]],
    )
    await asyncio.sleep(3.2)

    found = await _replication(standby, monkeypatch, DbThresholds(replication_lag=Limit(1, 3)))
    assert found.status is Status.CRIT, found.summary
    assert "received and not yet replayed; replay has not moved in 1." in found.summary
    assert "replay is paused: SELECT pg_wal_replay_resume() resumes it" in found.summary
    wait = found.summary.split("waiting up to ")[1].split(" ")[0]
    assert wait.endswith("s") and int(wait[:-1]) >= 3, found.summary

    calm = await _replication(standby, monkeypatch, DbThresholds())  # 30 s: the wait is under
    assert calm.status is Status.WARN and "replay is paused" in calm.summary  # paused: WARN
    standby.sql("SELECT pg_wal_replay_resume()")
    standby.wait_caught_up()
    resumed = await _replication(standby, monkeypatch, DbThresholds(replication_lag=Limit(1, 3)))
    assert resumed.status is Status.OK and "caught up" in resumed.summary


async def test_a_stuck_replay_with_no_commit_replayed_yet_is_not_taken_for_a_short_wait(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh standby has replayed no commit (no timestamp bounds the wait) when a query on
    it holds back the primary's ACCESS EXCLUSIVE lock on the table it reads
    (max_standby_streaming_delay -1): replay stands still, which is a WARN saying how long
    is not known, not an OK "waiting" of the 1 s probe. The query ended, replay catches up
    and it is OK."""
    primary = make_pg()
    primary.sql("CREATE TABLE ledger (id int)")
    standby = make_pg.standby(primary, settings={"max_standby_streaming_delay": -1})
    standby.wait_caught_up()
    assert standby.sql("SELECT pg_last_xact_replay_timestamp()") == [(None,)]
    reader = standby.session(name="report")
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT count(*) FROM ledger")
    primary.sql("ALTER TABLE ledger ADD COLUMN note text")  # takes ACCESS EXCLUSIVE
    standby.wait_for(
        "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn",
        [primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0]],
    )

    stuck = await _replication(standby, monkeypatch, DbThresholds())
    assert stuck.status is Status.WARN, stuck.summary
    assert "replay has not moved in 1." in stuck.summary
    assert "waiting for how long is not known" in stuck.summary
    assert "replay is stuck, for how long is not known" in stuck.summary

    reader.execute("ROLLBACK")
    standby.wait_caught_up()
    caught_up = await _replication(standby, monkeypatch, DbThresholds())
    assert caught_up.status is Status.OK and "caught up" in caught_up.summary


async def test_index_usage_is_judged_on_the_primary_only(
    pair: tuple[PgServer, PgServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The primary's queries use an index the standby never scans: usage counters are per
    server, so the standby does not call it unused; the primary, where it is really unused
    for longer than the age asked for, does."""
    primary, standby = pair
    primary.sql("CREATE TABLE visits (id int, page text)")
    primary.sql("INSERT INTO visits SELECT g, 'p' || g FROM generate_series(1, 5000) g")
    primary.sql("CREATE INDEX visits_page ON visits (page)")
    primary.sql("CREATE INDEX visits_id ON visits (id)")
    primary.sql("ANALYZE visits")
    primary.sql("SELECT * FROM visits WHERE id = 42")  # the primary uses visits_id
    standby.wait_caught_up()
    await asyncio.sleep(1.1)
    aged = DbThresholds(unused_index_bytes=0, unused_index_age=1)

    on_standby = await _one(standby, monkeypatch, aged, INDEXES)
    assert on_standby.status is Status.OK
    assert on_standby.summary == (
        "no invalid index; unused indexes are judged on the primary: usage statistics are per "
        "server, and this standby counts only the queries run on it"
    )
    on_primary = await _one(primary, monkeypatch, aged, INDEXES)
    assert on_primary.status is Status.WARN and on_primary.target == "public.visits_page"
