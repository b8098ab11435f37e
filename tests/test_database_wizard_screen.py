"""The database wizard in the console, keys only, against a real PostgreSQL from initdb.

The local console started with `--postgres` (libpq's defaults: PG* variables and a
PGPASSFILE) opens the wizard with `b`, runs its steps, and terminates a session idle in its
transaction once the operator confirms and types the host name; the step turns green.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from fleetdeck.checks.config import Config
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.settings import Limit
from fleetdeck.tui.app import FleetdeckApp, Settings, make_app
from fleetdeck.tui.confirm import ConfirmFix
from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen

from pgserver import PgServer, point_libpq_at
from pgserver import pg as pg
from pgserver import pg_server as pg_server
from recorded import until_wizard_done

HOST = "db-tui"


@pytest.fixture
def libpq_env(pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's PostgreSQL the libpq way: PG* variables and a PGPASSFILE."""
    point_libpq_at(pg, monkeypatch, tmp_path)


def _app(tmp_path: Path) -> FleetdeckApp:
    low = DbThresholds(idle_in_transaction=Limit(0.2, 600), long_query=Limit(0.2, 600))
    settings = Settings(
        interval=1.0, audit_log=tmp_path / "audit.jsonl", storage_every=0, postgres=True
    )
    return make_app(settings, Config().with_domain("database", low), HOST)


def _detail(app: FleetdeckApp) -> str:
    return str(app.screen.query_one("#detail-text", Static).render())


async def _open_wizard(pilot: Pilot[None]) -> WizardScreen:
    await pilot.pause(0.3)
    await pilot.press("b")
    await pilot.pause(0.3)
    assert isinstance(pilot.app.screen, WizardForm)
    await pilot.press("enter")
    await pilot.pause(0.3)
    await until_wizard_done(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, WizardScreen) and screen.run is not None
    return screen


@pytest.mark.usefixtures("libpq_env")
async def test_idle_transaction_terminated_from_the_wizard_screen(
    pg: PgServer, tmp_path: Path
) -> None:
    idle = pg.session(name="forgotten-psql")
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pg.wait_for(
        "SELECT now() - state_change > interval '0.3 s' FROM pg_stat_activity WHERE pid = %s",
        [idle.pid],
    )
    app = _app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _open_wizard(pilot)
        assert screen.run is not None
        index = screen.run.index_of("db.idle_in_transaction")
        steps = screen.query_one("#steps", OptionList)
        assert str(steps.get_option_at_index(0).prompt) == "✔ Reachable and logged in"
        await pilot.press(*["down"] * index)
        detail = _detail(app)
        assert f"pid {idle.pid} (postgres@127.0.0.1 (forgotten-psql))" in detail
        assert f"[1] Terminate pid {idle.pid} (destructive)" in detail
        assert (
            f"=# SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {idle.pid}"
            in (detail)
        )
        assert "[2] Dump " in detail and "then terminate" in detail

        await pilot.press("f")
        await pilot.pause(0.5)
        assert isinstance(app.screen, ConfirmFix)
        shown = str(app.screen.query_one("#details Static", Static).render())
        assert "its transaction, open" in shown
        assert f"runs on database {pg.dbname} on {HOST}:" in shown
        assert isinstance(app.screen.query_one("#typed", Input), Input)
        await pilot.press(*HOST, "enter")
        for _ in range(100):
            await pilot.pause(0.1)
            if "last action: verified" in _detail(app):
                break
        assert "last action: verified" in _detail(app), _detail(app)
        assert "after:  OK" in _detail(app)
        prompt = str(steps.get_option_at_index(index).prompt)
        assert prompt.startswith("✔"), prompt
    gone = pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [idle.pid])
    assert gone == [(0,)]


@pytest.mark.usefixtures("libpq_env")
async def test_a_frozen_server_never_freezes_the_wizard_screen(
    pg: PgServer, tmp_path: Path
) -> None:
    """SIGSTOP on the server: the steps end with its cause within the session limits, and
    the screen answers keys all along."""
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        with pg.frozen_server():
            await pilot.press("b")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.5)
            screen = app.screen
            assert isinstance(screen, WizardScreen)
            await pilot.press("down", "up")  # keys are handled while it waits
            assert screen.query_one("#steps", OptionList).highlighted == 0
            await until_wizard_done(pilot)
            assert screen.run is not None
            first = screen.run.results[0]
            assert first.status is not None and first.status.value == "CRIT"
            assert "does not reply" in first.findings[0].summary
            assert screen.run.results[1].state.value == "skipped"
