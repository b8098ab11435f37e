"""Opening PostgreSQL sessions the libpq way, against real servers started from initdb.

Each test is an operator's story: the session says who it is and carries its timeouts; the
password comes from a pgpass file or the variable the inventory names, and never shows up in
a message; a server that is down, frozen, SSL-only, full, or missing the database gives one
clear sentence in bounded time; a remote host's database is reached through that host's SSH
connection, with no database port opened to the network.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
import traceback
from pathlib import Path

import pytest

from fleetdeck.hosts.inventory.records import HostSpec
from fleetdeck.hosts.postgres.session import (
    PgConnectError,
    PgFailure,
    PgQueryError,
    SessionSettings,
    classify,
    open_session,
)
from fleetdeck.hosts.postgres.targets import (
    PgTarget,
    parse_pgpass,
    parse_service_file,
    pgpass_password,
)
from fleetdeck.hosts.ssh import SSHOptions, connect_host

from pgserver import LIMITED, MONITOR, SUPERUSER, PgFactory, PgServer
from pgserver import make_pg as make_pg
from pgserver import pg as pg
from pgserver import pg_server as pg_server
from sshd import NetnsLab, SshKeys, write_known_hosts


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No PG* variables and an empty home, so a developer's ~/.pgpass never helps a test."""
    for name in [n for n in os.environ if n.startswith("PG")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _target(server: PgServer, user: str = MONITOR, **fields: object) -> PgTarget:
    return PgTarget(host=server.host, port=server.port, dbname=server.dbname, user=user, **fields)


def _pgpass(path: Path, *lines: str, mode: int = 0o600) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    path.chmod(mode)
    return path


def _never_shown(secret: str, error: BaseException, *texts: str) -> None:
    shown = [str(error), repr(error), *map(str, error.args), *traceback.format_exception(error)]
    for text in [*shown, *texts]:
        assert secret not in text


async def test_session_names_itself_and_carries_its_timeouts(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_PG_MONITOR", pg.passwords[MONITOR])
    target = _target(pg, password_env="FD_PG_MONITOR")
    async with await open_session(target, host="db-01") as session:
        (row,) = await session.fetch(
            "SELECT version() AS version, current_setting('statement_timeout') AS statement,"
            " current_setting('lock_timeout') AS lock,"
            " current_setting('idle_in_transaction_session_timeout') AS idle"
        )
        assert row["version"].startswith("PostgreSQL 15")
        assert (row["statement"], row["lock"], row["idle"]) == ("5s", "50ms", "10s")
        assert session.connection.autocommit
        assert session.password_from == "$FD_PG_MONITOR"
        assert 0 < session.connect_seconds < 2
        seen = pg.sql(
            "SELECT application_name, usename, state FROM pg_stat_activity WHERE pid = %s",
            [session.backend_pid],
        )
        assert seen == [("fleetdeck", MONITOR, "idle")]  # autocommit: never idle in transaction
        assert "db-01: PostgreSQL fleetdeck" in repr(session)


async def test_password_from_home_pgpass_and_from_the_file_pgpassfile_names(
    pg: PgServer, tmp_path: Path, no_libpq_defaults: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = pg.passwords[MONITOR]
    line = f"{pg.host}:{pg.port}:*:{MONITOR}:{secret}"
    _pgpass(no_libpq_defaults / ".pgpass", line)
    async with await open_session(_target(pg), host="db-01") as session:
        assert (await session.fetch("SELECT current_user AS who")) == [{"who": MONITOR}]
        assert session.password_from is None  # libpq found it itself

    path = _pgpass(tmp_path / "pgpass", "# monitoring", f"{pg.host}:{pg.port}:other:{MONITOR}:x")
    monkeypatch.setenv("PGPASSFILE", str(path))  # it replaces ~/.pgpass, as in libpq
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg), host="db-01")
    assert caught.value.failure is PgFailure.NO_PASSWORD
    wanted = f"{pg.host}:{pg.port}:{pg.dbname}:{MONITOR}"
    assert f"PGPASSFILE {path} has no line for {wanted}" in str(caught.value)

    _pgpass(path, "# monitoring", line)
    async with await open_session(_target(pg), host="db-01") as session:
        assert (await session.fetch("SELECT current_user AS who")) == [{"who": MONITOR}]

    path.chmod(0o644)  # libpq ignores a pgpass file others can read; so must we, and say so
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg), host="db-01")
    assert caught.value.failure is PgFailure.NO_PASSWORD
    assert f"PGPASSFILE {path} ignored: group or others can read it" in str(caught.value)
    _never_shown(secret, caught.value)


async def test_no_password_anywhere_says_where_fleetdeck_looked(
    pg: PgServer, no_libpq_defaults: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg), host="db-01")
    assert caught.value.failure is PgFailure.NO_PASSWORD
    assert f"{no_libpq_defaults / '.pgpass'} does not exist" in str(caught.value)

    started = time.monotonic()
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg, password_env="FD_PG_UNSET"), host="db-01")
    assert caught.value.failure is PgFailure.NO_PASSWORD
    assert "names $FD_PG_UNSET for the password, and it is not set" in str(caught.value)
    assert time.monotonic() - started < 0.5  # said at once, without trying the server


async def test_wrong_password_is_an_auth_error_that_never_shows_the_password(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    monkeypatch.setenv("FD_PG_MONITOR", wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg, password_env="FD_PG_MONITOR"), host="db-01")
    error = caught.value
    assert error.failure is PgFailure.AUTH_FAILED
    assert str(error).startswith("db-01: PostgreSQL fleetdeck (fd_monitor@127.0.0.1:")
    assert f'password authentication failed for user "{MONITOR}"' in str(error)
    assert "(the password came from $FD_PG_MONITOR)" in str(error)
    _never_shown(wrong, error, caplog.text, pg.log())


async def test_a_server_that_is_down_is_said_to_be_down(make_pg: PgFactory) -> None:
    server = make_pg()
    server.stop()
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(server), host="db-01")
    assert caught.value.failure is PgFailure.DOWN
    assert str(caught.value).endswith(
        f"server down: nothing listens at 127.0.0.1 port {server.port} (connection refused)"
    )


async def test_a_frozen_server_fails_in_bounded_time(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP: the kernel accepts the connection, nobody ever answers."""
    server = make_pg()
    monkeypatch.setenv("FD_PG", server.passwords[SUPERUSER])
    target = _target(server, SUPERUSER, password_env="FD_PG")
    settings = SessionSettings(connect_timeout=2.0, statement_timeout=1.0)
    session = await open_session(target, host="db-01", settings=settings)
    try:
        with server.frozen_server(everything=True):
            started = time.monotonic()
            with pytest.raises(PgConnectError) as caught:
                await open_session(target, host="db-01", settings=settings)
            assert caught.value.failure is PgFailure.TIMEOUT
            assert "does not reply" in str(caught.value) or "connect_timeout" in str(caught.value)
            assert time.monotonic() - started < settings.connect_timeout + 1.5

            started = time.monotonic()
            with pytest.raises(PgQueryError) as query:
                await session.fetch("SELECT 1")
            assert query.value.failure is PgFailure.TIMEOUT
            assert time.monotonic() - started < settings.statement_timeout + 3.0
        with pytest.raises(PgQueryError) as query:  # that session was closed, not left hanging
            await session.fetch("SELECT 1")
        assert query.value.failure is PgFailure.LOST
    finally:
        await session.close()


async def test_a_database_that_does_not_exist_is_named(pg: PgServer) -> None:
    target = PgTarget(host=pg.socket_dir.as_posix(), port=pg.port, dbname="ordrs", user=SUPERUSER)
    with pytest.raises(PgConnectError) as caught:
        await open_session(target, host="db-01")
    assert caught.value.failure is PgFailure.NO_DATABASE
    assert 'database "ordrs" does not exist: check dbname' in str(caught.value)


async def test_ssl_mismatch_either_way_is_said_plainly(
    pg: PgServer, make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    secure = make_pg(ssl=True)
    monkeypatch.setenv("FD_PG", secure.passwords[MONITOR])
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(secure, password_env="FD_PG", sslmode="disable"), host="db-01")
    assert caught.value.failure is PgFailure.SSL_MISMATCH
    assert "accepts only SSL connections from here" in str(caught.value)
    assert "sslmode is disable" in str(caught.value)
    async with await open_session(
        _target(secure, password_env="FD_PG", sslmode="require"), host="db-01"
    ) as session:
        (row,) = await session.fetch("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row["ssl"] is True

    monkeypatch.setenv("FD_PG", pg.passwords[MONITOR])
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(pg, password_env="FD_PG", sslmode="require"), host="db-01")
    assert caught.value.failure is PgFailure.SSL_MISMATCH
    assert "the server has SSL off, but sslmode requires it" in str(caught.value)


async def test_a_user_without_connect_privilege_is_denied(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"closed_{secrets.token_hex(4)}"
    pg.sql(f"CREATE DATABASE {name}")
    pg.sql(f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC")
    try:
        monkeypatch.setenv("FD_PG", pg.passwords[LIMITED])
        target = PgTarget(
            host=pg.host, port=pg.port, dbname=name, user=LIMITED, password_env="FD_PG"
        )
        with pytest.raises(PgConnectError) as caught:
            await open_session(target, host="db-01")
        assert caught.value.failure is PgFailure.PERMISSION_DENIED
        assert f'permission denied for database "{name}"' in str(caught.value)
        assert "User does not have CONNECT privilege" in str(caught.value)
    finally:
        pg.sql(f"DROP DATABASE {name}")


async def test_a_full_server_says_no_slot_is_free(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_pg(max_connections=6)  # 3 reserved for superusers, 3 for everyone else
    server.open_sessions(3, LIMITED)
    monkeypatch.setenv("FD_PG", server.passwords[MONITOR])
    with pytest.raises(PgConnectError) as caught:
        await open_session(_target(server, password_env="FD_PG"), host="db-01")
    assert caught.value.failure is PgFailure.FULL
    assert "remaining connection slots are reserved" in str(caught.value)


async def test_fleetdecks_queries_give_up_on_a_lock_instead_of_queueing(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"orders_{secrets.token_hex(4)}"
    pg.sql(f"CREATE TABLE {table} (id int)")
    pg.sql(f"GRANT SELECT ON {table} TO {MONITOR}")
    holder, waiter = pg.open_sessions(2)
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    waiting = waiter.start(f"SELECT count(*) FROM {table}")  # an application query, queued
    pg.wait_for("SELECT pg_blocking_pids(%s) = ARRAY[%s]::int[]", [waiter.pid, holder.pid])
    monkeypatch.setenv("FD_PG", pg.passwords[MONITOR])
    async with await open_session(_target(pg, password_env="FD_PG"), host="db-01") as session:
        started = time.monotonic()
        with pytest.raises(PgQueryError) as caught:
            await session.fetch(f"SELECT count(*) FROM {table}")
        assert time.monotonic() - started < 1.0
        assert caught.value.failure is PgFailure.LOCK_TIMEOUT
        assert "gave up after 50 ms waiting for a lock" in str(caught.value)
        assert (await session.fetch("SELECT 1 AS ok")) == [{"ok": 1}]  # the session lives on
        blocked = pg.sql(
            "SELECT pid FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        )
        assert blocked == [(waiter.pid,)]  # fleetdeck is not in the queue
    holder.execute("ROLLBACK")
    assert waiting.result(timeout=5) == [(0,)]
    pg.sql(f"DROP TABLE {table}")


async def test_a_session_that_only_looks_cannot_change_anything(pg: PgServer) -> None:
    settings = SessionSettings(read_only=True)
    target = PgTarget(host=str(pg.socket_dir), port=pg.port, dbname=pg.dbname, user=SUPERUSER)
    async with await open_session(target, host="db-01", settings=settings) as session:
        with pytest.raises(PgQueryError) as caught:
            await session.fetch("CREATE TABLE should_not_exist (id int)")
        assert "read-only transaction" in str(caught.value)


async def test_statement_timeout_stops_a_runaway_query(pg: PgServer) -> None:
    settings = SessionSettings(statement_timeout=0.3)
    target = PgTarget(host=str(pg.socket_dir), port=pg.port, dbname=pg.dbname, user=SUPERUSER)
    async with await open_session(target, host="db-01", settings=settings) as session:
        started = time.monotonic()
        with pytest.raises(PgQueryError) as caught:
            await session.fetch("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 1.5
        assert caught.value.failure is PgFailure.STATEMENT_TIMEOUT


async def test_the_local_host_without_configuration_uses_libpq_defaults(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "PGHOST": str(pg.socket_dir), "PGPORT": str(pg.port),
        "PGUSER": SUPERUSER, "PGDATABASE": pg.dbname,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    async with await open_session(host="localhost") as session:
        (row,) = await session.fetch(
            "SELECT current_database() AS db, inet_client_addr() AS client,"
            " current_setting('application_name') AS app"
        )
        assert row == {"db": pg.dbname, "client": None, "app": "fleetdeck"}  # the socket
        assert "libpq defaults" in session.where


async def test_a_service_file_target_and_an_undefined_service(
    pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text(
        f"[orders]\nhost={pg.host}\nport={pg.port}\ndbname={pg.dbname}\nuser={MONITOR}\n"
        f"password={pg.passwords[MONITOR]}\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    async with await open_session(PgTarget(service="orders"), host="db-01") as session:
        assert (await session.fetch("SELECT current_user AS who")) == [{"who": MONITOR}]
    with pytest.raises(PgConnectError) as caught:
        await open_session(PgTarget(service="billing"), host="db-01")
    assert caught.value.failure is PgFailure.CONFIG
    assert 'definition of service "billing" not found' in str(caught.value)
    assert f"service 'billing' is in none of {services}" in str(caught.value)
    _never_shown(pg.passwords[MONITOR], caught.value)


async def test_a_remote_database_is_reached_through_the_hosts_ssh_connection(
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    make_pg: PgFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL listens on 127.0.0.1 inside the host's namespace only: the runner cannot
    reach it, and fleetdeck does through the one SSH connection it already has."""
    host = netns_lab.add_host("pgdb")
    server = make_pg(netns=host.netns, port=5432)
    connection = None
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host.address, 5432), timeout=2).close()
        spec = HostSpec("pgdb", host.address, user="root",
                        identity_files=(str(ssh_keys.client_key),))  # fmt: skip
        known = write_known_hosts(tmp_path / "known_hosts", host)
        connection = await connect_host(spec, SSHOptions(known_hosts=known, agent=False))
        secret = server.passwords[MONITOR]
        # The pgpass line names the database as the host sees it, not the forwarded port.
        passfile = _pgpass(
            tmp_path / "pgpass", f"localhost:5432:{server.dbname}:{MONITOR}:{secret}"
        )
        monkeypatch.setenv("PGPASSFILE", str(passfile))
        target = PgTarget(dbname=server.dbname, user=MONITOR)
        async with await open_session(target, host="pgdb", ssh=connection) as session:
            (row,) = await session.fetch(
                "SELECT current_setting('port') AS port, inet_client_addr()::text AS client,"
                " current_setting('application_name') AS app"
            )
            assert row == {"port": "5432", "client": "127.0.0.1/32", "app": "fleetdeck"}
            assert session.password_from == str(passfile)
            forwarded = session.connection.info.port
            with pytest.raises(ConnectionRefusedError):  # the forward took just this session
                socket.create_connection(("127.0.0.1", forwarded), timeout=2).close()

        socket_target = PgTarget(host=str(server.socket_dir), port=5432, dbname=server.dbname,
                                 user=SUPERUSER)  # fmt: skip
        async with await open_session(socket_target, host="pgdb", ssh=connection) as session:
            assert (await session.fetch("SELECT inet_client_addr() AS a")) == [{"a": None}]

        with pytest.raises(PgConnectError) as caught:
            await open_session(
                PgTarget(dbname="x", user="y", port=5499), host="pgdb", ssh=connection
            )
        assert caught.value.failure is PgFailure.DOWN
        assert "nothing listens on localhost port 5499 there" in str(caught.value)
        assert host.log().count("Accepted publickey") == 1  # one SSH login for all of it
    finally:
        if connection is not None:
            connection.close()
        server.stop()
        netns_lab.remove_host(host)


# --------------------------------------------------------------------------- pure parts


def test_pgpass_lines_are_read_as_libpq_reads_them() -> None:
    entries = parse_pgpass(
        "# comment\n"
        "db\\:1:5432:orders:mon:p\\:a\\\\ss:ignored\n"
        "*:*:*:backup:bk\n"
        "short:line\n"
        "localhost:5432:*:mon:local\n"
    )
    assert [(e.host, e.password) for e in entries] == [
        ("db:1", "p:a\\ss"), ("*", "bk"), ("localhost", "local")
    ]  # fmt: skip
    assert "p:a" not in repr(entries)
    assert pgpass_password(entries, "db:1", 5432, "orders", "mon") == "p:a\\ss"
    assert pgpass_password(entries, "/var/run/postgresql", 5432, "x", "mon") == "local"
    assert pgpass_password(entries, "elsewhere", 1, "x", "backup") == "bk"
    assert pgpass_password(entries, "elsewhere", 1, "x", "mon") is None


def test_service_files_are_read_as_sections_of_settings() -> None:
    text = "# services\n[orders]\nhost = db-01\nport=5433\n\n[billing]\ndbname=billing\n"
    assert parse_service_file(text) == {
        "orders": {"host": "db-01", "port": "5433"},
        "billing": {"dbname": "billing"},
    }


@pytest.mark.parametrize(
    ("message", "failure"),
    [
        # PostgreSQL 16+ words for the reserved slots
        ("connection failed: connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  "
         "remaining connection slots are reserved for roles with the SUPERUSER attribute",
         PgFailure.FULL),
        ("connection failed: could not translate host name \"db.invalid\" to address",
         PgFailure.NAME_NOT_RESOLVED),
        ("connection failed: connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  "
         "the database system is starting up", PgFailure.STARTING),
        ("connection failed: connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  "
         "pg_hba.conf rejects connection for host \"10.0.0.9\", user \"x\", database \"y\", "
         "no encryption", PgFailure.SSL_MISMATCH),
        ("connection failed: connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  "
         "no pg_hba.conf entry for host \"10.0.0.9\", user \"x\", database \"y\", SSL encryption",
         PgFailure.REJECTED),
        ("something new", PgFailure.ERROR),
    ],
)  # fmt: skip
def test_libpq_messages_of_other_versions_are_classified(message: str, failure: PgFailure) -> None:
    found, detail = classify(Exception(message), SessionSettings())
    assert found is failure
    assert "connection failed" not in detail and "FATAL" not in detail
