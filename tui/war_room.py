"""The war-room screen: the incident, the alerts, the fleet and the latest actions on a big
screen, read-only, rotating between views on a timer so that nobody needs to touch it.

Always on top: a banner saying that fixes are refused, the open incidents against their
targets, and which view is shown with a countdown to the next. The views: alerts of every
source with CRIT/WARN/silenced tiles, fleet health with up/down/stale tiles and the hosts worst
first, and the latest fix attempts from the audit log. The state database and the audit log
are read in a thread every `refresh_every` seconds; the fleet comes from the app's watches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static

from fleetdeck.checks.incidents.board import (
    AlertSource,
    BoardAlert,
    board_alerts,
    board_order,
    from_stored,
)
from fleetdeck.checks.incidents.config import IncidentSettings
from fleetdeck.checks.incidents.overview import Overview, overview
from fleetdeck.checks.incidents.store import StoreError, shared_store, state_path
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.units import human_duration
from fleetdeck.widgets.fleet_table import FleetTable, HostRow, host_row
from fleetdeck.widgets.tiles import Tile
from fleetdeck.widgets.war_room import ActionBoard, AlertBoard, IncidentBand

VIEWS = {"alerts": "Alerts", "fleet": "Fleet health", "actions": "Latest actions"}
"""The rotating views, in turn, with the names the tab line shows."""
ALERT_TILES = ("CRIT", "WARN", "SILENCED")
FLEET_TILES = ("UP", "DOWN", "STALE")
WIDE = (160, 50)
"""From this size (columns, rows) all six tiles stay on top and the views show no tiles."""
ROTATE_EVERY = 20.0
REFRESH_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class Board:
    """One reading of the state database and the audit log, and the alerts of every source."""

    overview: Overview | None
    alerts: list[BoardAlert]
    error: str | None


def _read(path: Path, settings: IncidentSettings, audit: Path, now: float) -> Overview | str:
    """Runs in a thread: SQLite and the audit file are blocking reads. The overview, or why
    the state database cannot be read."""
    try:
        return overview(shared_store(path), settings, audit, now=now)
    except (StoreError, OSError) as error:
        return str(error)


def _worst_first(row: HostRow) -> tuple[object, ...]:
    weight = sum((1000**s.rank) * n for s, n in row.alerts.items())
    figures = [f for f in (row.cpu, row.mem, row.disk) if f is not None]
    return (-row.rank, -weight, -max(figures, default=0.0), row.name)


class WarRoomScreen(Screen[None]):
    """The incident room's wall display; read-only whatever key is pressed."""

    CSS_PATH = "war_room.tcss"
    AUTO_FOCUS = None  # nothing to select on a wall display; keys act on the screen
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,p", "pause", "Pause/resume"),
        Binding("n,right", "advance(1)", "Next view"),
        Binding("b,left", "advance(-1)", "Previous view"),
        Binding("r", "refresh_now", "Refresh"),
    ]

    view: reactive[str] = reactive("alerts")
    paused: reactive[bool] = reactive(False)

    def __init__(
        self,
        watches: Sequence[HostWatch],
        settings: IncidentSettings,
        audit: Path,
        *,
        read_only: bool,
        sources: Sequence[tuple[str, AlertSource]] = (),
        rotate_every: float = ROTATE_EVERY,
        refresh_every: float = REFRESH_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.watches = tuple(watches)
        self.settings = settings
        self.audit = audit
        self.read_only = read_only
        self.sources = tuple(sources)
        """Alert sources beside fleetdeck's own, by label (Alertmanager, Prometheus)."""
        self.rotate_every = rotate_every
        self.refresh_every = refresh_every
        self.clock = clock
        self.board: Board | None = None
        self._next_at = clock() + rotate_every
        self._left = rotate_every
        """Seconds left on the countdown when rotation was paused."""

    def compose(self) -> ComposeResult:
        yield Static(id="wr-banner")
        yield IncidentBand(id="wr-incidents")
        with Horizontal(id="wr-summary"):  # a wide screen: every tile, whatever the view
            yield from self._tiles(*ALERT_TILES, *FLEET_TILES)
        yield Static(id="wr-tabs")
        with ContentSwitcher(initial="alerts", id="wr-views"):
            with Vertical(id="alerts"):
                with Horizontal(classes="wr-tiles"):
                    yield from self._tiles(*ALERT_TILES)
                yield AlertBoard(id="wr-alerts")
            with Vertical(id="fleet"):
                with Horizontal(classes="wr-tiles"):
                    yield from self._tiles(*FLEET_TILES)
                hosts = FleetTable(id="wr-hosts")
                hosts.can_focus = False
                yield hosts
            with Vertical(id="actions"):
                yield ActionBoard(id="wr-actions")
        yield Footer()

    @staticmethod
    def _tiles(*labels: str) -> ComposeResult:
        for label in labels:
            yield Tile(label, classes=f"tile-{label.lower()}")

    def _show_tile(self, name: str, figure: int | str, caption: str, state: str) -> None:
        """Both copies of a tile: the view's and the wide screen's summary row."""
        for tile in self.query(f".tile-{name}").results(Tile):
            tile.show(figure, caption, state)

    def on_resize(self) -> None:
        """Wide and tall enough (a wall screen, 200x60): every tile in one row on top."""
        self.set_class(self.size.width >= WIDE[0] and self.size.height >= WIDE[1], "-wide")

    def on_mount(self) -> None:
        for watch in self.watches:
            self.run_worker(watch.run(), group="watches", exit_on_error=False)
        self.query_one("#wr-alerts", AlertBoard).border_title = "Alerts, most severe first"
        self.query_one("#wr-hosts", FleetTable).border_title = "Hosts, worst first"
        self.query_one("#wr-actions", ActionBoard).border_title = "Fix attempts, newest first"
        self.set_interval(1.0, self.tick)
        self.set_interval(self.refresh_every, self.action_refresh_now)
        self.action_refresh_now()
        self.tick()

    # -- rotation --------------------------------------------------------------------------

    def tick(self) -> None:
        """Each second: rotate when the countdown is over, and redraw the clock, the
        countdown and the fleet (the watches poll on their own)."""
        if not self.paused and self.clock() >= self._next_at:
            self.action_advance(1)
        self._show_banner()
        self._show_tabs()
        self._show_fleet()

    def action_advance(self, step: int) -> None:
        names = list(VIEWS)
        self.view = names[(names.index(self.view) + step) % len(names)]
        self._next_at = self.clock() + self.rotate_every
        self._left = self.rotate_every
        self._show_tabs()

    def action_pause(self) -> None:
        if self.paused:
            self._next_at = self.clock() + self._left
        else:
            self._left = max(self._next_at - self.clock(), 0.0)
        self.paused = not self.paused
        self._show_tabs()

    def watch_view(self, view: str) -> None:
        self.query_one("#wr-views", ContentSwitcher).current = view

    def _show_tabs(self) -> None:
        tabs = Text(" ")
        for name, title in VIEWS.items():
            if name == self.view:
                tabs.append(f" ▶ {title} ", style="reverse bold")
            else:
                tabs.append(f"   {title} ")
        names = list(VIEWS)
        following = VIEWS[names[(names.index(self.view) + 1) % len(names)]]
        if self.paused:
            tabs.append(f"    rotation PAUSED ({self._left:.0f} s left): space resumes")
        else:
            left = max(self._next_at - self.clock(), 0.0)
            tabs.append(f"    next: {following} in {left:.0f} s")
        self.query_one("#wr-tabs", Static).update(tabs)

    def _show_banner(self) -> None:
        now = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.clock()))
        banner = Text(" FLEETDECK WAR ROOM ", style="bold reverse")
        if self.read_only:
            banner.append("  READ-ONLY: every fix is refused, whatever key is pressed  ")
        else:
            banner.append("  FIXES ALLOWED: this console can change hosts  ", style="bold")
        banner.append(f"  {now}")
        self.query_one("#wr-banner", Static).update(banner)
        self.set_class(not self.read_only, "-fixes-allowed")

    # -- data ------------------------------------------------------------------------------

    def _show_fleet(self) -> None:
        rows = [host_row(w) for w in self.watches]
        up = sum(r.rank == 0 for r in rows)
        down = sum(r.rank == 3 for r in rows)
        stale = sum(r.rank == 2 for r in rows)
        connecting = len(rows) - up - down - stale
        more = f", {connecting} connecting" if connecting else ""
        self._show_tile(
            "up", up, f"of {len(rows)} hosts{more}", "-good" if up == len(rows) else "-muted"
        )
        self._show_tile(
            "down",
            down,
            ", ".join(r.name for r in rows if r.rank == 3),
            "-bad" if down else "-good",
        )
        self._show_tile(
            "stale",
            stale,
            ", ".join(r.name for r in rows if r.rank == 2),
            "-warn" if stale else "-good",
        )
        self.query_one("#wr-hosts", FleetTable).show(sorted(rows, key=_worst_first), [])

    @work(exclusive=True, group="board", exit_on_error=False)
    async def action_refresh_now(self) -> None:
        """Read the state database and the audit log in a thread, then show them."""
        path = state_path(self.settings.state)
        now = self.clock()
        seen, alerts = await asyncio.gather(
            asyncio.to_thread(_read, path, self.settings, self.audit, now),
            board_alerts([], self.sources, now),
        )
        if isinstance(seen, str):
            self.board = Board(None, alerts, seen)
        else:
            own = [from_stored(a) for a in seen.firing]
            self.board = Board(seen, sorted([*own, *alerts], key=board_order), None)
        self._show_board(self.board, now)

    def _show_board(self, board: Board, now: float) -> None:
        incidents = board.overview.incidents if board.overview else []
        self.query_one(IncidentBand).show(incidents, board.error)
        listed = [a for a in board.alerts if a.state != "silenced"]
        crit = [a for a in listed if a.severity == "CRIT"]
        warn = [a for a in listed if a.severity == "WARN"]
        counts = board.overview.counts if board.overview else {}
        silenced = counts.get("silenced", 0) + len(board.alerts) - len(listed)
        if board.overview is None:
            for name in ("crit", "warn", "silenced"):
                self._show_tile(name, "?", "state database unreadable", "-warn")
        else:
            crit_state, warn_state = ("-bad" if crit else "-good"), ("-warn" if warn else "-good")
            self._show_tile("crit", len(crit), _oldest(crit, now), crit_state)
            self._show_tile("warn", len(warn), _oldest(warn, now), warn_state)
            acked = counts.get("acknowledged", 0)
            self._show_tile("silenced", silenced, f"{acked} acknowledged", "-muted")
        self.query_one("#wr-alerts", AlertBoard).show(listed, now)
        actions = board.overview.actions if board.overview else []
        self.query_one("#wr-actions", ActionBoard).show(actions, now)
        warnings = board.overview.audit_warnings if board.overview else []
        self.query_one("#wr-actions", ActionBoard).border_subtitle = (
            f"audit log: {warnings[0]}" if warnings else ""
        )


def _oldest(alerts: Sequence[BoardAlert], now: float) -> str:
    if not alerts:
        return "none firing"
    return f"oldest {human_duration(now - min(a.since for a in alerts))}"
