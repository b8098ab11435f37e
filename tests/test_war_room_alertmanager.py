"""The war room with a real Alertmanager (tests/prom.py: Prometheus's always-firing rule sends
its alert there): Alertmanager's alert on the board beside fleetdeck's own, labelled with its
source; silenced through amtool, it leaves the list and is counted on the SILENCED tile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prom import PromStack
from prom import prom_stack as prom_stack
from test_war_room import cells, until_board
from textual.widgets import Digits
from war_room_data import build_state, war_room_app

from fleetdeck.checks.sources.config import SourcesConfig
from fleetdeck.hosts.prometheus.http import HttpSource
from fleetdeck.tui.war_room import WarRoomScreen
from fleetdeck.widgets.tiles import Tile
from fleetdeck.widgets.war_room import AlertBoard


async def test_alertmanager_alerts_join_the_war_room(
    prom_stack: PromStack,
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    app = war_room_app(audit)
    app.config = replace(
        app.config, sources=SourcesConfig(alertmanager=(HttpSource(prom_stack.alertmanager),))
    )
    where = prom_stack.alertmanager.split("//", 1)[1]
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await until_board(pilot)
        assert isinstance(screen, WarRoomScreen)
        board = screen.query_one(AlertBoard)
        rows: list[list[str]] = []
        for _ in range(600):  # Prometheus evaluates and sends each second; bounded: 60 s
            rows = cells(board)
            if any(r[4] == "FleetdeckAlwaysFiring" for r in rows):
                break
            screen.action_refresh_now()
            await pilot.pause(0.1)
        ours = [r for r in rows if r[4] == "FleetdeckAlwaysFiring"]
        assert ours, rows
        assert ours[0][2] == f"alertmanager {where}"
        assert ours[0][5] == "firing"
        assert any(r[2] == "fleetdeck" and r[3] == "db-01" for r in rows)  # still beside ours
        silenced = screen.query_one(".wr-tiles .tile-silenced", Tile).query_one(Digits)
        before = int(silenced.value)
        prom_stack.amtool(
            "silence", "add", "alertname=FleetdeckAlwaysFiring", "--comment=war room test",
            "--author=test", "--duration=10m",
        )  # fmt: skip
        for _ in range(600):
            screen.action_refresh_now()
            await pilot.pause(0.1)
            if not any(r[4] == "FleetdeckAlwaysFiring" for r in cells(board)):
                break
        assert not any(r[4] == "FleetdeckAlwaysFiring" for r in cells(board))
        assert int(silenced.value) > before
