"""`db.clients` (R09, the security review's database part) against real PostgreSQL servers:
connections over TCP from 127.0.0.1 and ::1, over the unix socket, and from a network
namespace's address, grouped by the address they come from.

A server with a few connections is OK and says who connects from where; a crowd from one
address is WARN naming it and its count; an address outside `expected_clients` is WARN; a
role that may not see other users' sessions is told what it cannot see; a role named with
terminal escapes is shown as text.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from test_database_cli import _check, _config, _findings, _local

from fleetdeck.checks.database.checks import CLIENTS, DB_CHECKS, run_db_checks
from fleetdeck.checks.database.clients import group_clients, kind_of
from fleetdeck.checks.database.config import DbThresholds, parse_db_thresholds
from fleetdeck.checks.database.queries import Backend
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.postgres.session import PgSession, open_session

from pgserver import (
    LIMITED,
    MONITOR,
    SUPERUSER,
    PgFactory,
    PgServer,
    Session,
    bindir,
    clear_libpq_env,
    password_target,
)
from pgserver import make_pg as make_pg
from pgserver import pg as pg
from pgserver import pg_server as pg_server
from sshd import NetnsHost, NetnsLab

HOST = "db-01"
EVIL = "evil\x1b]0;PWNED\x07\x1b[2J"
RAW = ("\x1b", "\x07")


@pytest.fixture(autouse=True)
def no_libpq_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_libpq_env(tmp_path / "home", monkeypatch)


def _connect(server: PgServer, user: str = SUPERUSER, **where: Any) -> Session:
    """A client session of the test, from where `where` says (host ::1, the socket ...),
    closed with the server's other sessions."""
    tcp = where.pop("tcp", True)
    info = server.conninfo(user, tcp=tcp, **where)
    session = Session(psycopg.connect(**info, autocommit=True, application_name="fd-test"))
    server.sessions.append(session)
    return session


async def _clients(
    server: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    thresholds: DbThresholds | None = None,
    user: str = MONITOR,
) -> Finding:
    target = password_target(server, user, monkeypatch)
    session: PgSession
    async with await open_session(target, host=HOST) as session:
        (found,) = await run_db_checks(session, HOST, thresholds, label="orders", checks=[CLIENTS])
    return found


def _text(found: Finding) -> str:
    return "\n".join([found.summary, *(e.output for e in found.evidence)])


def _row(found: Finding, address: str) -> list[str]:
    """The evidence's table row of one address, split on its column gaps."""
    for line in found.evidence[0].output.splitlines():
        if line.startswith(f"{address} "):
            return [cell.strip() for cell in line.split("  ") if cell.strip()]
    raise AssertionError(f"no row for {address} in {found.evidence[0].output}")


async def test_few_local_connections_are_ok_and_a_crowd_from_one_address_is_warn(
    make_pg: PgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the socket, 127.0.0.1 and ::1: each told apart, OK; then nine more from
    127.0.0.1 hold over half of the 17 slots, and the finding names the address."""
    server = make_pg(max_connections=20, settings={"listen_addresses": "127.0.0.1,::1"})
    _connect(server, tcp=False)
    _connect(server, MONITOR)
    _connect(server, LIMITED)
    _connect(server, MONITOR, host="::1")

    found = await _clients(server, monkeypatch)
    assert found.status is Status.OK, _text(found)
    assert found.target == "orders"
    assert found.summary == (
        "4 client connections from 3 addresses: 127.0.0.1 2, ::1 1, local socket 1"
    )
    assert _row(found, "127.0.0.1") == [
        "127.0.0.1", "local", "2", "12 %", "fd_limited 1, fd_monitor 1", "fleetdeck 2"
    ]  # fmt: skip
    assert _row(found, "local socket") == [
        "local socket", "local", "1", "6 %", "postgres 1", "fleetdeck 1"
    ]  # fmt: skip
    assert _row(found, "::1")[:3] == ["::1", "local", "1"]
    evidence = found.evidence[0].output
    assert "slots for ordinary users: 17 (max_connections 20 less 3 reserved)" in evidence
    assert "expected_clients not set: remote addresses are listed, not judged" in evidence
    assert "left out: 1 session of fleetdeck's own" in evidence

    for _ in range(7):
        _connect(server)
    found = await _clients(server, monkeypatch)
    assert found.status is Status.WARN, _text(found)
    assert found.summary.startswith(
        "127.0.0.1 holds 9 of 17 slots (53 %, as postgres 7, fd_limited 1, fd_monitor 1); "
        "11 client connections from 3 addresses: 127.0.0.1 9, ::1 1, local socket 1"
    )

    crit = DbThresholds(client_share=Limit(20, 50))
    found = await _clients(server, monkeypatch, crit)
    assert found.status is Status.CRIT


async def test_a_namespace_address_is_remote_then_unexpected_then_expected(
    netns_lab: NetnsLab,
    netns_hosts: Any,
    make_pg: PgFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client in a network namespace connects over the lab's bridge to the server's
    address there: listed as remote with no expected_clients, WARN when the list leaves it
    out, OK when its network is in it."""
    (host,) = netns_hosts(1)
    gateway = str(netns_lab.gateway)
    server = make_pg(settings={"listen_addresses": f"127.0.0.1,{gateway}"})
    with (server.data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {netns_lab.subnet} scram-sha-256\n")
    server.sql("SELECT pg_reload_conf()")
    client = _psql_in(host, server, gateway)
    try:
        server.wait_for(
            "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = %s", [host.address]
        )
        found = await _clients(server, monkeypatch)
        assert found.status is Status.OK, _text(found)
        assert f"{host.address} 1" in found.summary
        assert _row(found, host.address)[:3] == [host.address, "remote", "1"]

        elsewhere = parse_db_thresholds({"expected_clients": ["192.0.2.0/24", "2001:db8::/32"]})
        found = await _clients(server, monkeypatch, elsewhere)
        assert found.status is Status.WARN, _text(found)
        assert found.summary.startswith(
            f"1 connection from addresses not in expected_clients: {host.address} 1; "
        )
        assert _row(found, host.address)[:3] == [host.address, "unexpected", "1"]
        assert "expected_clients: 192.0.2.0/24, 2001:db8::/32" in found.evidence[0].output

        ours = parse_db_thresholds({"expected_clients": [str(netns_lab.subnet)]})
        found = await _clients(server, monkeypatch, ours)
        assert found.status is Status.OK, _text(found)
        assert _row(found, host.address)[:3] == [host.address, "expected", "1"]
    finally:
        assert client.stdin is not None
        client.stdin.close()
        client.wait(timeout=10)


def _psql_in(host: NetnsHost, server: PgServer, address: str) -> subprocess.Popen[str]:
    """psql inside the host's namespace, connected to `address` and waiting on its stdin
    (the session lasts until stdin is closed)."""
    assert host.netns is not None
    conninfo = (
        f"host={address} port={server.port} user={MONITOR} dbname={server.dbname} "
        f"password={server.passwords[MONITOR]} application_name=app-in-netns"
    )
    psql = str(bindir() / "psql")
    argv = ["ip", "netns", "exec", host.netns, psql, "-X", "-q", conninfo]
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


async def test_a_role_that_cannot_see_other_sessions_is_unknown_saying_why(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pg_read_all_stats another user's client address is NULL, as the socket's is:
    such sessions are `hidden`, never called local, and the finding says how to see them."""
    pg.open_sessions(2)
    found = await _clients(pg, monkeypatch, user=LIMITED)
    assert found.status is Status.UNKNOWN, _text(found)
    assert found.summary.startswith("2 client connections from 1 address: hidden 2; ")
    assert "grant pg_monitor to fd_limited" in found.summary
    assert "local socket" not in found.summary


@pytest.fixture
def evil_role(pg: PgServer) -> Any:
    role = sql.Identifier(EVIL)
    pg.sql(sql.SQL("CREATE ROLE {} LOGIN").format(role))
    try:
        yield EVIL
    finally:
        pg.close_sessions()
        pg.sql(sql.SQL("DROP ROLE {}").format(role))


async def test_a_role_named_with_escapes_is_shown_as_text(
    pg: PgServer, evil_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(pg, evil_role, tcp=False)
    found = await _clients(pg, monkeypatch)
    text = _text(found)
    assert not any(c in text for c in RAW), text
    escaped = evil_role.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert f"{escaped} 1" in _row(found, "local socket")[4]


async def test_db_clients_runs_with_every_database_check(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is one of the checks `fleetdeck check` runs, reading the shared activity snapshot."""
    assert CLIENTS in DB_CHECKS
    target = password_target(pg, MONITOR, monkeypatch)
    async with await open_session(target, host=HOST) as session:
        findings = await run_db_checks(session, HOST, label="orders")
    (found,) = [f for f in findings if f.check == "db.clients"]
    assert found.status is Status.OK, _text(found)


def test_fleetdeck_check_postgres_grades_by_the_settings_file(pg: PgServer, tmp_path: Path) -> None:
    """`fleetdeck check --postgres` runs db.clients with `[thresholds.database]`'s keys; a
    network written with host bits is refused naming the key."""
    pg.open_sessions(5)
    env = _local(pg, tmp_path, pg.passwords[MONITOR])
    config = _config(
        tmp_path,
        '[thresholds.database]\nclient_share = { warn = 5 }\nexpected_clients = ["192.0.2.0/24"]\n',
    )
    result = _check(env, "--postgres", "--no-storage", "--json", "--config", config)
    assert result.returncode in (0, 1, 2, 3), result.stderr
    (found,) = [f for f in _findings(result) if f["check"] == "db.clients"]
    assert found["status"] == "WARN", found
    assert found["summary"].startswith("127.0.0.1 holds 5 of 97 slots (5 %, as postgres 5); ")

    config = _config(tmp_path, '[thresholds.database]\nexpected_clients = ["10.0.1.5/24"]\n')
    result = _check(env, "--postgres", "--no-storage", "--json", "--config", config)
    assert result.returncode != 0
    assert "thresholds.database.expected_clients[0]: 10.0.1.5/24 has host bits set" in (
        result.stderr
    ), result.stderr


# -- pure parts ---------------------------------------------------------------------------------


def _backend(client: str | None, user: str = "app", *, hidden: bool = False) -> Backend:
    return Backend(
        1, None, None if hidden else "client backend", user, "", client, "db", "idle", None,
        None, "", None, None, None, hidden=hidden,
    )  # fmt: skip


def test_where_an_address_stands() -> None:
    nets: Sequence[Any] = tuple(ipaddress.ip_network(n) for n in ("10.0.1.0/24", "fd00::/64"))
    expected = tuple(nets)
    assert kind_of("local socket", expected) == "local"
    assert kind_of("127.0.0.5", expected) == "local"
    assert kind_of("::1", ()) == "local"
    assert kind_of(None, expected) == "hidden"
    assert kind_of("10.0.1.7", expected) == "expected"
    assert kind_of("::ffff:10.0.1.7", expected) == "expected"  # a v4 client on a v6 socket
    assert kind_of("fd00::5", expected) == "expected"
    assert kind_of("10.0.2.7", expected) == "unexpected"
    assert kind_of("10.0.2.7", ()) == "remote"


ADDRESSES = st.one_of(
    st.none(),
    st.just("local socket"),
    st.ip_addresses().map(str),
    st.text(max_size=40),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(ADDRESSES, st.text(max_size=20), st.booleans()), max_size=30))
def test_any_activity_groups_into_counts_that_add_up_with_names_made_printable(
    rows: list[tuple[str | None, str, bool]],
) -> None:
    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    clients = tuple(_backend(a, u, hidden=h) for a, u, h in rows)
    sources = group_clients(clients, nets)
    assert sum(s.count for s in sources) == len(rows)
    assert [s.count for s in sources] == sorted((s.count for s in sources), reverse=True)
    kinds = {"local", "expected", "unexpected", "hidden"}
    assert {s.kind for s in sources} <= kinds
    for source in sources:
        assert not any(c in name for name in (source.address, *source.users) for c in RAW)


def test_clients_are_grouped_most_first_and_hidden_ones_apart() -> None:
    clients = (
        _backend("10.0.0.9", "b"),
        _backend("10.0.0.5"),
        _backend("10.0.0.5", "report"),
        _backend(None, "other", hidden=True),
    )
    sources = group_clients(clients, ())
    assert [(s.address, s.kind, s.count) for s in sources] == [
        ("10.0.0.5", "remote", 2),
        ("10.0.0.9", "remote", 1),
        ("hidden", "hidden", 1),
    ]
    assert dict(sources[0].users) == {"app": 1, "report": 1}


def test_client_settings_from_the_settings_table() -> None:
    parsed = parse_db_thresholds(
        {
            "client_share": {"warn": 30},
            "unexpected_clients": {"warn": 5, "crit": 10},
            "expected_clients": ["10.0.1.0/24", "10.0.2.5", "fd00::/64"],
        }
    )
    assert parsed.client_share == Limit(30, 80)
    assert parsed.unexpected_clients == Limit(5, 10)
    assert [str(n) for n in parsed.expected_clients] == ["10.0.1.0/24", "10.0.2.5/32", "fd00::/64"]
    assert DbThresholds().expected_clients == ()

    bad = {
        "expected_clients[1]": ({"expected_clients": ["10.0.1.0/24", "10.0.1.5/24"]}, "host bits"),
        "expected_clients[0]": ({"expected_clients": ["db.example"]}, "does not appear to be"),
        "expected_clients": ({"expected_clients": "10.0.1.0/24"}, "expected a list"),
        "client_share.crit": ({"client_share": {"crit": 150}}, "cannot be over 100"),
    }
    for key, (table, problem) in bad.items():
        with pytest.raises(ValueError) as caught:
            parse_db_thresholds(table)
        said = str(caught.value)
        assert said.startswith(f"thresholds.database.{key}: ") and problem in said, said
