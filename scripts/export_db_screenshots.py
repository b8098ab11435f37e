"""Refresh the database screenshots in screenshots/ from a real PostgreSQL in an incident.

It starts a server from initdb (tests/pgserver.py, as root on a machine with PostgreSQL
installed), sets up what the runbooks' D3-D6 describe (a lock chain of three sessions behind
an idle transaction, a table full of dead rows, an invalid index), and drives the console
(`fleetdeck --postgres` on this machine, the libpq way) to the database pane and wizard.
Pids and times differ on every run, which is why these are screenshots, not snapshots.

    .venv/bin/python scripts/export_db_screenshots.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

from fleetdeck.checks.config import Config  # noqa: E402
from fleetdeck.checks.database.config import DbThresholds  # noqa: E402
from fleetdeck.checks.settings import Limit  # noqa: E402
from fleetdeck.tui.app import Settings, make_app  # noqa: E402

from pgserver import SUPERUSER, PgFactory, PgServer  # noqa: E402
from recorded import until_wizard_done  # noqa: E402

HOST = "db-01"
# (name, size, keys on the Host screen; a name with "wizard" or "confirm" opens it first)
SHOTS = [
    ("database-pane-80x24", (80, 24), ("6",)),
    ("database-pane-160x50", (160, 50), ("6",)),
    ("database-wizard-80x24-lock-chain", (80, 24), ("down", "down")),
    ("database-wizard-160x45", (160, 45), ("down", "down")),
    ("database-confirm-100x30", (100, 30), ("down", "down", "f")),
]


def incident(server: PgServer) -> None:
    server.sql("CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric)")
    server.sql("INSERT INTO orders SELECT g, 'open', g FROM generate_series(1, 20000) g")
    server.sql("ALTER TABLE orders SET (autovacuum_enabled = off)")
    server.sql("UPDATE orders SET status = 'paid' WHERE id > 4000")
    server.sql("INSERT INTO orders VALUES (20001, 'open', 1)")
    with contextlib.suppress(psycopg.errors.UniqueViolation):  # leaves an invalid index
        server.sql("CREATE UNIQUE INDEX CONCURRENTLY orders_total ON orders (total)")
    admin, billing, report = (server.session(name=n) for n in ("psql", "billing", "nightly"))
    admin.execute("BEGIN")
    admin.execute("UPDATE orders SET status = 'held' WHERE id = 1")
    billing.start("UPDATE orders SET status = 'paid' WHERE id = 1")
    server.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [admin.pid, billing.pid])
    report.start("UPDATE orders SET total = 0 WHERE id = 1")
    server.wait_for("SELECT %s = ANY(pg_blocking_pids(%s))", [billing.pid, report.pid])
    for session in server.open_sessions(3, name="api"):
        session.execute("SELECT 1")


async def shoot(name: str, size: tuple[int, int], keys: tuple[str, ...], audit: Path) -> Path:
    low = DbThresholds(
        idle_in_transaction=Limit(1, 600), long_query=Limit(1, 600), lock_wait=Limit(1, 600)
    )
    settings = Settings(interval=1.0, storage_every=0, postgres=True, audit_log=audit)
    app = make_app(settings, Config().with_domain("database", low), HOST)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(3.0)  # two samples and two database readings (TPS needs both)
        if "wizard" in name or "confirm" in name:
            await pilot.press("b")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until_wizard_done(pilot)
        await pilot.press(*keys)
        await pilot.pause(0.8)
        return Path(app.save_screenshot(f"{name}.svg", path=str(ROOT / "screenshots")))


def main() -> None:
    factory = PgFactory()
    server = factory()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            passfile = Path(tmp) / "pgpass"
            secret = server.passwords[SUPERUSER]
            passfile.write_text(
                f"{server.host}:{server.port}:{server.dbname}:{SUPERUSER}:{secret}\n"
            )
            passfile.chmod(0o600)
            for key in [k for k in os.environ if k.startswith("PG")]:
                del os.environ[key]
            os.environ.update(
                PGHOST=server.host,
                PGPORT=str(server.port),
                PGUSER=SUPERUSER,
                PGDATABASE=server.dbname,
                PGPASSFILE=str(passfile),
            )
            incident(server)
            for name, size, keys in SHOTS:
                shot = asyncio.run(shoot(name, size, keys, Path(tmp) / "audit.jsonl"))
                print(shot.relative_to(ROOT))
    finally:
        server.close_sessions()
        factory.close()


if __name__ == "__main__":
    main()
