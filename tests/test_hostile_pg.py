"""What a database user can put in front of the operator, on a real PostgreSQL: a table named
with terminal escape sequences, and passwords in every literal form PostgreSQL accepts held
in pg_stat_activity. The database wizard (in read-only mode) and `fleetdeck audit` show the
name escaped and the passwords masked; `--json` keeps the name exact."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from test_database_cli import _config, _local, _wizard

from fleetdeck.checks.database.link import DbLink
from fleetdeck.checks.database.pane import PaneSnapshot, read_pane
from fleetdeck.checks.database.queries import qualify

from conftest import fleetdeck_bin
from pgserver import MONITOR, PgServer, clear_libpq_env, password_target
from pgserver import pg as pg
from pgserver import pg_server as pg_server

EVIL = "evil\x1b]0;PWNED\x07\x1b[2J"
RAW = ("\x1b", "\x07")
"""Bytes that must never reach the operator's terminal as they are."""


@pytest.fixture
def evil_table(pg: PgServer) -> Iterator[str]:
    """A table named with an OSC title and a clear-screen, 15,000 dead rows in it."""
    name = f"{EVIL}-{secrets.token_hex(3)}"
    table = sql.Identifier(name)
    pg.sql(sql.SQL("CREATE TABLE {} (id int) WITH (autovacuum_enabled = off)").format(table))
    try:
        pg.sql(sql.SQL("INSERT INTO {} SELECT generate_series(1, 20000)").format(table))
        pg.sql(sql.SQL("DELETE FROM {} WHERE id > 5000").format(table))
        pg.wait_for("SELECT n_dead_tup = 15000 FROM pg_stat_user_tables WHERE relname = %s", [name])
        yield name
    finally:
        pg.sql(sql.SQL("DROP TABLE {}").format(table))


def _audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetdeck_bin(), "audit", *args], capture_output=True, text=True, timeout=60
    )


def test_a_table_named_with_escapes_is_offered_a_vacuum_refused_and_audited_escaped(
    pg: PgServer, evil_table: str, tmp_path: Path
) -> None:
    env = _local(pg, tmp_path, pg.passwords[MONITOR])
    audit = tmp_path / "audit.jsonl"
    result = _wizard(env, "--read-only", "--audit-log", str(audit), answers="y\n" * 20)
    shown = result.stdout + result.stderr
    assert not any(c in shown for c in RAW), shown
    escaped = evil_table.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert escaped in shown, shown

    listed = _audit("--audit-log", str(audit))
    assert listed.returncode == 0, listed.stderr
    assert not any(c in listed.stdout + listed.stderr for c in RAW), listed.stdout
    mine = [line for line in listed.stdout.splitlines() if escaped in line]
    assert mine and any("refused" in line for line in mine), listed.stdout

    as_json = _audit("--json", "--audit-log", str(audit))
    assert not any(c in as_json.stdout for c in RAW)  # JSON escapes them itself
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    vacuum = [
        r for r in records if r["fix"] == "db.vacuum_analyze" and evil_table in r["commands"][0]
    ]
    assert vacuum and vacuum[0]["outcome"] == "refused", records


PASSWORDS = {
    "E": "ALTER ROLE {role} PASSWORD E'pw-e-{token}\\'x'",
    "dollar": "ALTER ROLE {role} PASSWORD $$pw-dollar-{token}$$",
    "tag": "ALTER ROLE {role} PASSWORD $pw$pw-tag-{token}$$x$pw$",
    "unicode": "ALTER ROLE {role} PASSWORD U&'pw-unicode-{token}\\0041'",
    "comment": "ALTER ROLE {role} PASSWORD /* why */ -- note\n 'pw-comment-{token}'",
    "encrypted": "ALTER ROLE {role} ENCRYPTED PASSWORD 'pw-encrypted-{token}'",
    "nested": "ALTER ROLE {role} PASSWORD /* a /* nested */ comment */ 'pw-nested-{token}'",
    "continued": "ALTER ROLE {role} PASSWORD 'pw-a-{token}' -- one constant in two\n'b-{token}'",
    "backslash": "ALTER ROLE {role} PASSWORD 'pw\\'-backslash-{token}'",
}
"""Statements that wait on the holder's lock on the role, each password in another form."""
SETTINGS = {"backslash": "SET standard_conforming_strings = off"}
"""What a session sets first for its form: with this off, \\' inside '..' is a quote."""


@pytest.fixture
def password_sessions(pg: PgServer) -> Iterator[str]:
    """Sessions whose query text holds a password: one idle in a transaction that changed a
    role's password, one waiting to change it again in each form of PASSWORDS, one sleeping
    with a URL in its text."""
    token = secrets.token_hex(4)
    role = f"fd_app_{secrets.token_hex(4)}"  # not the token: a role name is no secret
    pg.sql(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        holder = pg.session(name="rotate")
        holder.execute("BEGIN")
        holder.execute(f"ALTER ROLE {role} PASSWORD 'pw-plain-{token}'")
        for key, form in PASSWORDS.items():
            session = pg.session(name="rotate")
            if key in SETTINGS:
                session.execute(SETTINGS[key])
            session.start(form.format(role=role, token=token))
        url = f"postgres://app:pw-url-{token}@db.example/app"
        pg.session(name="report").start(f"SELECT pg_sleep(60) /* {url} */")
        pg.wait_for(
            "SELECT count(*) = %s FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'ALTER ROLE%%'",
            [len(PASSWORDS)],
        )
        yield token
    finally:
        pg.close_sessions()
        pg.sql(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


LOW = (
    "[thresholds.database]\n"
    "idle_in_transaction = { warn = 0.2, crit = 600 }\n"
    "long_query = { warn = 0.2, crit = 600 }\n"
)


def test_a_qualified_name_escapes_what_printable_escapes() -> None:
    """A table's name in a confirmation reads as every other host text does: a bidi override,
    a byte that was not UTF-8 and a line break all show as escapes, on one line."""
    assert qualify("public", "orders\u202e\udcff\nx") == 'public."orders\\u202e\\xff\\nx"'
    assert qualify("public", "orders") == "public.orders"


def test_passwords_in_every_literal_form_are_masked_in_the_wizard_and_the_audit_log(
    pg: PgServer, password_sessions: str, tmp_path: Path
) -> None:
    token = password_sessions
    env = _local(pg, tmp_path, pg.passwords[MONITOR])
    audit = tmp_path / "audit.jsonl"
    result = _wizard(
        env, "--read-only", "--audit-log", str(audit), answers="y\n" * 20,
        config=_config(tmp_path, LOW),
    )  # fmt: skip
    shown = result.stdout + result.stderr
    assert token not in shown, [line for line in shown.splitlines() if token in line]
    assert "PASSWORD '***'" in shown and "postgres://app:***@db.example/app" in shown, shown
    assert "ENCRYPTED PASSWORD '***'" in shown and "PASSWORD /* why */ -- note" in shown
    assert token not in audit.read_text()


async def _pane(pg: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PaneSnapshot:
    """One reading of the database pane, as the monitoring user, with no libpq defaults."""
    clear_libpq_env(tmp_path / "home", monkeypatch)
    link = DbLink(password_target(pg, MONITOR, monkeypatch), "db-01")
    try:
        return await read_pane(link)
    finally:
        await link.close()


async def test_the_database_pane_masks_the_passwords_too(
    pg: PgServer, password_sessions: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = password_sessions
    snapshot = await _pane(pg, monkeypatch, tmp_path)
    lines = [*snapshot.active, *(w for c in snapshot.chains for w in c.waiting)]
    lines += [c.root for c in snapshot.chains if c.root is not None]
    queries = [line.query for line in lines]
    assert sum("PASSWORD" in q for q in queries) >= len(PASSWORDS), queries
    assert not any(token in q for q in queries), queries
    assert any("postgres://app:***@db.example/app" in q for q in queries), queries


@pytest.fixture
def ascii_database(pg: PgServer) -> Iterator[str]:
    """A SQL_ASCII database: the server stores and reports its text unchecked."""
    name = f"fd_ascii_{secrets.token_hex(3)}"
    pg.sql(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' "
           "LC_CTYPE 'C'")  # fmt: skip
    try:
        yield name
    finally:
        pg.close_sessions()
        pg.sql(f"DROP DATABASE {name} WITH (FORCE)")


async def test_query_text_that_is_not_utf8_is_read_with_replacement(
    pg: PgServer, ascii_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A session in a SQL_ASCII database runs a statement holding bytes that are not UTF-8:
    pg_stat_activity hands them over as they are, and the pane still reads every session."""
    odd = pg.session(dbname=ascii_database, name="odd-bytes")
    odd.start(b"SELECT pg_sleep(30) /* bad-\xff\xfe-utf8 */")  # type: ignore[arg-type]
    pg.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
        [ascii_database],
    )
    snapshot = await _pane(pg, monkeypatch, tmp_path)
    assert snapshot.error is None, snapshot.error
    queries = [line.query for line in snapshot.active]
    assert any("bad-\ufffd\ufffd-utf8" in q for q in queries), queries
