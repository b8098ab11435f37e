"""`fleetdeck check` with PostgreSQL, as an operator runs it: the real command against real
servers from initdb. Locally `--postgres` uses libpq's defaults (PG* variables, PGPASSFILE);
an inventory host's `[[host.postgres]]` targets are reached through its SSH connection. A
database that is down or refuses the password is that target's db.reachable CRIT, with the
password in no output, and the thresholds come from `[thresholds.database]`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from conftest import fleetdeck_bin
from pgserver import MONITOR, PgFactory, PgServer, Session, free_port
from pgserver import make_pg as make_pg
from pgserver import pg as pg
from pgserver import pg_server as pg_server
from sshd import NetnsLab, SshKeys, write_known_hosts

LOW_IDLE = "[thresholds.database]\nidle_in_transaction = { warn = 0.2, crit = 600 }\n"


def _env(tmp_path: Path, **pg_vars: str) -> dict[str, str]:
    """This environment without any PG* variable or the developer's home, plus `pg_vars`."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**clean, "HOME": str(home), "TERM": "dumb", **pg_vars}


def _pgpass(tmp_path: Path, line: str) -> str:
    path = tmp_path / "pgpass"
    path.write_text(line + "\n")
    path.chmod(0o600)
    return str(path)


def _local(server: PgServer, tmp_path: Path, password: str) -> dict[str, str]:
    """PG* variables for the monitoring user over TCP, its password in a PGPASSFILE."""
    passfile = _pgpass(
        tmp_path, f"{server.host}:{server.port}:{server.dbname}:{MONITOR}:{password}"
    )
    return _env(
        tmp_path,
        PGHOST=server.host,
        PGPORT=str(server.port),
        PGUSER=MONITOR,
        PGDATABASE=server.dbname,
        PGPASSFILE=passfile,
    )


def _config(tmp_path: Path, text: str = LOW_IDLE) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetdeck_bin(), "check", "--interval", "0.2", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    (host,) = json.loads(result.stdout)["hosts"]
    found: list[dict[str, Any]] = host["findings"]
    return found


def test_local_check_finds_the_idle_transaction_past_the_configured_threshold(
    pg: PgServer, tmp_path: Path
) -> None:
    idle = pg.session(name="billing")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    time.sleep(0.5)
    env = _local(pg, tmp_path, pg.passwords[MONITOR])
    config = _config(tmp_path)

    result = _check(env, "--postgres", "--no-storage", "--json", "--config", config)
    assert result.returncode in (0, 1, 2, 3), result.stderr
    findings = _findings(result)
    mine = [f for f in findings if f["check"] == "db.idle_in_transaction"]
    assert [(f["status"], f["target"]) for f in mine] == [("WARN", f"pid {idle.pid}")]
    assert "billing" in mine[0]["summary"]
    reached = next(f for f in findings if f["check"] == "db.reachable")
    assert reached["status"] == "OK" and f"{MONITOR} logged in to {pg.dbname}" in reached["summary"]
    assert {"db.connections", "db.lock_chain", "db.size"} <= {f["check"] for f in findings}
    assert "cpu.usage" in {f["check"] for f in findings}  # the host's report, joined
    assert not any(f["check"].startswith("storage.") for f in findings)  # --no-storage

    # The default threshold (60 s) does not flag it; and without --postgres, no database.
    calm = _findings(_check(env, "--postgres", "--no-storage", "--json", "--config", "/dev/null"))
    assert [f["status"] for f in calm if f["check"] == "db.idle_in_transaction"] == ["OK"]
    plain = _findings(_check(env, "--no-storage", "--json", "--config", config))
    assert not any(f["check"].startswith("db.") for f in plain)


def test_a_database_that_is_down_is_reachable_crit_and_exit_2(tmp_path: Path) -> None:
    env = _env(tmp_path, PGHOST="127.0.0.1", PGPORT=str(free_port()), PGUSER=MONITOR)
    started = time.monotonic()
    result = _check(env, "--postgres", "--no-storage", "--json", "--config", _config(tmp_path))
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    db = [f for f in _findings(result) if f["check"].startswith("db.")]
    assert [(f["check"], f["status"], f["target"]) for f in db] == [
        ("db.reachable", "CRIT", "postgres")
    ]
    assert "server down" in db[0]["summary"]

    table = _check(env, "--postgres", "--no-storage", "--config", _config(tmp_path))
    assert table.returncode == 2
    (line,) = [row for row in table.stdout.splitlines() if "db.reachable" in row]
    assert line.split()[1:4] == ["CRIT", "db.reachable", "postgres"]


def test_a_wrong_password_is_crit_and_never_printed(pg: PgServer, tmp_path: Path) -> None:
    wrong = "pw-wrong-" + os.urandom(6).hex()
    env = _local(pg, tmp_path, wrong)
    config = _config(tmp_path)
    for extra in (("--json",), ()):
        result = _check(env, "--postgres", "--no-storage", "--config", config, *extra)
        assert result.returncode == 2, result.stderr
        assert "authentication failed" in result.stdout
        for secret in (wrong, pg.passwords[MONITOR]):
            assert secret not in result.stdout and secret not in result.stderr
    findings = _findings(_check(env, "--postgres", "--no-storage", "--json", "--config", config))
    assert [f["status"] for f in findings if f["check"] == "db.reachable"] == ["CRIT"]
    assert not [f for f in findings if f["check"].startswith("db.") and f["status"] == "OK"]


def test_inventory_targets_are_checked_through_the_hosts_ssh_connection(
    netns_lab: NetnsLab, ssh_keys: SshKeys, make_pg: PgFactory, tmp_path: Path
) -> None:
    """PostgreSQL listens on the host's own loopback only; `check -i` reaches it through the
    SSH connection it samples with, and a second target with nothing listening is CRIT."""
    host = netns_lab.add_host("pgcli")
    server = make_pg(netns=host.netns, port=5432)
    try:
        # The test reaches the server by its socket (the namespace shares this filesystem).
        own = psycopg.connect(
            **server.conninfo(tcp=False), autocommit=True, application_name="report-job"
        )
        idle = Session(own)
        server.sessions.append(idle)
        idle.execute("BEGIN")
        idle.execute("SELECT 1")
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(
            f'[[host]]\nname = "{host.name}"\naddress = "{host.address}"\nport = {host.port}\n'
            f'user = "root"\nidentity_file = "{ssh_keys.client_key}"\n\n'
            f'[[host.postgres]]\nname = "orders"\ndbname = "{server.dbname}"\n'
            f'user = "{MONITOR}"\n\n'
            f'[[host.postgres]]\nname = "gone"\ndbname = "x"\nuser = "{MONITOR}"\nport = 5499\n'
        )
        known = write_known_hosts(tmp_path / "known_hosts", host)
        secret = server.passwords[MONITOR]
        env = _env(
            tmp_path,
            PGPASSFILE=_pgpass(tmp_path, f"localhost:5432:{server.dbname}:{MONITOR}:{secret}"),
        )
        time.sleep(0.3)
        args = ("-i", str(inventory), "--known-hosts", str(known), "--no-storage", "--json")
        result = _check(env, *args, "--config", _config(tmp_path))
        assert result.returncode == 2, result.stderr
        (entry,) = json.loads(result.stdout)["hosts"]
        assert entry["reachable"] is True
        by = {(f["check"], f["target"]): f for f in entry["findings"]}
        assert by["db.reachable", "orders"]["status"] == "OK"
        assert by["db.idle_in_transaction", f"pid {idle.pid}"]["status"] == "WARN"
        gone = by["db.reachable", "gone"]
        assert (
            gone["status"] == "CRIT"
            and "nothing listens on localhost port 5499" in (gone["summary"])
        )
        assert not any(f["target"] == "gone" for f in entry["findings"] if f is not gone)
        assert secret not in result.stdout + result.stderr

        listed = subprocess.run(
            [fleetdeck_bin(), "hosts", "-i", str(inventory), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        (spec,) = json.loads(listed.stdout)
        assert [(t["label"], t["dbname"], t["port"]) for t in spec["postgres"]] == [
            ("orders", server.dbname, None),
            ("gone", "x", 5499),
        ]
        assert secret not in listed.stdout
        table = subprocess.run(
            [fleetdeck_bin(), "hosts", "-i", str(inventory)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        header, row = table.stdout.splitlines()
        assert "POSTGRES" in header.split() and "orders,gone" in row.split()
    finally:
        server.stop()
        netns_lab.remove_host(host)


def _wizard(
    env: dict[str, str], *args: str, answers: str = "", config: str | None = None
) -> subprocess.CompletedProcess[str]:
    settings = ["--config", config] if config else []
    return subprocess.run(
        [fleetdeck_bin(), *settings, "wizard", "database", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        input=answers,
    )


def test_database_wizard_with_a_wrong_password_stops_at_its_first_step(
    pg: PgServer, tmp_path: Path
) -> None:
    env = _local(pg, tmp_path, "not-the-password")
    result = _wizard(env, "--audit-log", str(tmp_path / "audit.jsonl"))
    assert result.returncode == 2, result.stderr
    assert "password authentication failed" in result.stdout
    assert "skipped: Reachable and logged in: cannot connect" in result.stdout
    assert pg.passwords[MONITOR] not in result.stdout + result.stderr


def test_database_wizard_over_ssh_terminates_an_idle_transaction_once_confirmed(
    netns_lab: NetnsLab, ssh_keys: SshKeys, make_pg: PgFactory, tmp_path: Path
) -> None:
    """The database listens on the namespace host's loopback only; the wizard reaches it
    through the host's SSH connection and offers the terminate, alone and after a pg_dump.
    The operator declines the first and takes the second, typing the host name: the dump is
    written here through the same forward, then the session ends, and that is verified; the
    audit log keeps the SQL."""
    host = netns_lab.add_host("pgwiz")
    server = make_pg(netns=host.netns, port=5432)
    try:
        own = psycopg.connect(
            **server.conninfo(tcp=False), autocommit=True, application_name="nightly-report"
        )
        idle = Session(own)
        server.sessions.append(idle)
        idle.execute("BEGIN")
        idle.execute("SELECT 1")
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(
            f'[[host]]\nname = "{host.name}"\naddress = "{host.address}"\nport = {host.port}\n'
            f'user = "root"\nidentity_file = "{ssh_keys.client_key}"\n\n'
            f'[[host.postgres]]\nname = "orders"\ndbname = "{server.dbname}"\nuser = "postgres"\n'
        )
        known = write_known_hosts(tmp_path / "known_hosts", host)
        secret = server.passwords["postgres"]
        env = _env(
            tmp_path,
            PGPASSFILE=_pgpass(tmp_path, f"localhost:5432:{server.dbname}:postgres:{secret}"),
        )
        time.sleep(0.3)
        audit = tmp_path / "audit.jsonl"
        result = _wizard(
            env,
            *("-i", str(inventory), "--host", host.name, "--known-hosts", str(known)),
            "--audit-log",
            str(audit),
            "--dump-dir",
            str(tmp_path / "dumps"),
            answers=f"n\ny\n{host.name}\n",
            config=_config(tmp_path),
        )
        err = result.stderr
        assert f"declined: Terminate pid {idle.pid} on {host.name}" in err, err + result.stdout
        assert f"verified: Dump {server.dbname} to {tmp_path}/dumps/" in err, err
        assert f"then terminate pid {idle.pid} on {host.name}" in err
        (dump,) = (tmp_path / "dumps").iterdir()
        listing = subprocess.run(
            ["pg_restore", "--list", str(dump)], capture_output=True, text=True, timeout=30
        )
        assert listing.returncode == 0 and "pg_stat_statements" in listing.stdout
        assert "destructive fix: type the host name" in err
        assert f"runs on orders on {host.name}:" in err
        assert server.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [idle.pid]) == [
            (0,)
        ]
        finished = [json.loads(line) for line in audit.read_text().splitlines()][-1]
        assert finished["outcome"] == "verified" and finished["host"] == host.name
        assert finished["commands"][0].startswith("pg_dump --format=custom --no-password ")
        assert (
            f"pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {idle.pid}"
            in (finished["commands"][1])
        )
        assert secret not in result.stdout + err + audit.read_text()
    finally:
        server.stop()
        netns_lab.remove_host(host)


def test_check_on_a_fresh_server_without_pg_stat_statements_has_no_unknown_database_finding(
    make_pg: PgFactory, tmp_path: Path
) -> None:
    """A freshly installed PostgreSQL (no pg_stat_statements) is healthy: every db.* finding
    of `fleetdeck check --postgres` is OK, so a Nagios setup is not paged for ever."""
    fresh = make_pg(pg_stat_statements=False)
    env = _local(fresh, tmp_path, fresh.passwords[MONITOR])
    result = _check(env, "--postgres", "--no-storage", "--no-containers", "--json")
    database = [f for f in _findings(result) if f["check"].startswith("db.")]
    assert {f["status"] for f in database} == {"OK"}, database
    (slow,) = [f for f in database if f["check"] == "db.slow_statements"]
    assert slow["summary"].startswith(
        "not available: add pg_stat_statements to shared_preload_libraries"
    )
