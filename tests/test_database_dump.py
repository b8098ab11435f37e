"""The emergency pg_dump (D8) against a real PostgreSQL: it dumps the database the
sessions reach (libpq's own variables kept, PGPASSFILE too), writes only where no other user
can swap the file, never over a file, and leaves nothing that looks like a backup when it
fails, stalls on a frozen server, or is cancelled."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from fleetdeck.hosts.postgres.dump import dump_database
from fleetdeck.hosts.postgres.targets import PgTarget

from pgserver import SUPERUSER, PgServer, point_libpq_at
from pgserver import pg as pg
from pgserver import pg_server as pg_server


@pytest.fixture
def libpq_env(pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's PostgreSQL the libpq way: PG* variables and a PGPASSFILE."""
    point_libpq_at(pg, monkeypatch, tmp_path)


def _dumps(tmp_path: Path) -> Path:
    directory = tmp_path / "dumps"
    directory.mkdir(mode=0o700)
    return directory


def _pg_dumps_running() -> list[str]:
    found = subprocess.run(["pgrep", "-a", "pg_dump"], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


@pytest.mark.usefixtures("libpq_env")
async def test_with_libpq_defaults_the_dump_is_of_the_database_the_checks_read(
    pg: PgServer, tmp_path: Path
) -> None:
    pg.sql("CREATE TABLE IF NOT EXISTS dump_marker (id int)")
    path = _dumps(tmp_path) / "fleetdeck.dump"
    result = await dump_database(None, str(path), host="db-01")
    assert (result.exit_status, result.error) == (0, None), result.output
    listing = await asyncio.to_thread(
        subprocess.run, ["pg_restore", "--list", str(path)], capture_output=True, text=True
    )
    assert "TABLE public dump_marker" in listing.stdout
    assert f"dbname: {pg.dbname}" in listing.stdout
    assert sorted(p.name for p in path.parent.iterdir()) == ["fleetdeck.dump"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.usefixtures("libpq_env")
async def test_a_directory_others_may_write_and_an_existing_file_are_refused(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = await dump_database(None, str(shared / "x.dump"))
    assert result.error is not None and "writable by others (mode 777)" in result.error
    assert not list(shared.iterdir())

    mine = _dumps(tmp_path)
    (mine / "x.dump").write_text("an older dump")
    result = await dump_database(None, str(mine / "x.dump"))
    assert result.error is not None and "exists already" in result.error
    assert (mine / "x.dump").read_text() == "an older dump"


@pytest.mark.usefixtures("libpq_env")
async def test_a_wrong_password_fails_at_once_instead_of_prompting(
    pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_WRONG", "not-the-password")
    target = PgTarget(
        host=pg.host, port=pg.port, dbname=pg.dbname, user=SUPERUSER, password_env="FD_WRONG"
    )
    path = _dumps(tmp_path) / "x.dump"
    result = await dump_database(target, str(path), timeout=20)
    assert result.exit_status not in (0, None) and "password authentication failed" in (
        result.output
    )
    assert "not-the-password" not in result.output
    assert not list(path.parent.iterdir())  # no partial file left


@pytest.mark.usefixtures("libpq_env")
async def test_a_dump_that_stalls_on_a_frozen_server_is_stopped_and_leaves_nothing(
    pg: PgServer, tmp_path: Path
) -> None:
    path = _dumps(tmp_path) / "x.dump"
    with pg.frozen_server():
        result = await dump_database(None, str(path), stall=2)
    assert result.error is not None and "nothing written for 2 s" in result.error
    assert not list(path.parent.iterdir())
    assert not _pg_dumps_running()


@pytest.mark.usefixtures("libpq_env")
async def test_a_cancelled_dump_kills_pg_dump_and_leaves_nothing(
    pg: PgServer, tmp_path: Path
) -> None:
    path = _dumps(tmp_path) / "x.dump"
    with pg.frozen_server():
        task = asyncio.ensure_future(dump_database(None, str(path)))
        await asyncio.sleep(1.0)
        assert _pg_dumps_running()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not list(path.parent.iterdir())
    assert not _pg_dumps_running()
