"""The Fleet screen: every host of the inventory in one table, each polled on its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Footer, Input, Static

from fleetdeck.checks.model import Status
from fleetdeck.checks.watch import HostWatch
from fleetdeck.tui.base import FleetdeckScreen
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets.cells import Cell
from fleetdeck.widgets.fleet_table import FleetTable, HostRow, host_row
from fleetdeck.widgets.row_table import Column

if TYPE_CHECKING:
    from fleetdeck.checks.containers.pane import ContainerSnapshot

SORTS = ("name", "state", "cpu", "mem", "disk", "alerts")
GROUPINGS = ("none", "group", "tag")
DOCKER_EVERY = 10.0
"""Seconds between readings of each host's container list for the Fleet column."""
DOCKER_AT_ONCE = 16
"""Container lists read at once across the fleet: what bounds the threads a fleet of hung
daemons can hold (each reading is bounded in time as well)."""


Shown = tuple[str, int, int]
"""A host's containers column: its text, how many run, how many need a look."""


class FleetContainersTable(FleetTable):
    """The Fleet table with a containers column: how many run, and ▲ how many need a look
    (unhealthy, restarting, exited with an error, OOM-killed); "-" no Docker; "?" its
    engine does not answer (the detail line says why)."""

    COLUMNS = (  # type: ignore[assignment]  # one more than FleetTable's tuple type says
        *FleetTable.COLUMNS[:6],
        Column("containers", "Ctrs", "right"),
        *FleetTable.COLUMNS[6:],
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.containers: dict[str, Shown] = {}
        self._joined: dict[
            str, tuple[tuple[Cell, ...], tuple[str, int, int], tuple[Cell, ...]]
        ] = {}

    def _cells(self, row: HostRow) -> tuple[Cell, ...]:
        cells = super()._cells(row)
        value = self.containers.get(row.name, ("", -1, 0))
        cached = self._joined.get(row.name)
        if cached is not None and cached[0] is cells and cached[1] == value:
            return cached[2]
        text, running, troubled = value
        cell = Cell(text, (troubled, running), justify="right")
        if troubled or text == "?":
            cell.stylize(self.get_component_rich_style("severity--warn", partial=True))
        joined = (*cells[:6], cell, *cells[6:])
        self._joined[row.name] = (cells, value, joined)
        return joined


class FleetScreen(FleetdeckScreen[None]):
    """One row per host: state, CPU, memory, worst disk, load per core, alerts. Each host's
    watch polls on its own schedule, so a dead host never holds up the others."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("g", "group", "Group"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("a", "audit", "Audit log"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = """
    FleetScreen #fleet-summary { height: 1; background: $panel; padding: 0 1; }
    FleetScreen #filter { display: none; height: 3; }
    FleetScreen.-filtering #filter { display: block; }
    FleetScreen FleetTable { height: 1fr; max-height: 100%; border: round $primary-muted; }
    FleetScreen #detail { height: 1; padding: 0 1; color: $text-muted;
                          text-wrap: nowrap; text-overflow: ellipsis; }
    """

    sort_by: reactive[str] = reactive("name")
    grouping: reactive[str] = reactive("none")
    filter_text: reactive[str] = reactive("")

    def __init__(
        self,
        watches: Sequence[HostWatch],
        tags: dict[str, tuple[str, ...]],
        groups: dict[str, tuple[str, ...]],
        interval: float,
    ) -> None:
        super().__init__()
        self.watches = {w.name: w for w in watches}
        self.tags = tags
        self.groups = groups
        self.interval = interval
        self._rows: dict[str, HostRow] = {}
        self.docker = {n for n, w in self.watches.items() if self.console.access(w).wants_docker}
        """Hosts whose engine the containers column reads (none: no column at all)."""
        self.containers: dict[str, ContainerSnapshot] = {}
        self._docker_wake = {name: asyncio.Event() for name in self.docker}
        self._docker_gate = asyncio.Semaphore(DOCKER_AT_ONCE)

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-summary")
        yield Input(
            placeholder="filter by name or tag; enter to keep, escape to clear", id="filter"
        )
        yield FleetContainersTable(id="fleet") if self.docker else FleetTable(id="fleet")
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        for watch in self.watches.values():
            self.run_worker(watch.run(), group="watches", exit_on_error=False)
            if watch.name in self.docker:
                self.run_worker(
                    self._read_containers(watch), group="containers", exit_on_error=False
                )
        self.query_one(FleetTable).focus()
        self.set_interval(min(self.interval, 1.0), self.refresh_table)
        self.refresh_table()

    async def _read_containers(self, watch: HostWatch) -> None:
        """The host's container list every DOCKER_EVERY s, in the host's own worker, while
        the host answers (a down host gets no extra connection attempts from here); at most
        DOCKER_AT_ONCE hosts at a time, each reading bounded in time."""
        from fleetdeck.checks.containers.pane import ContainerSnapshot, read_containers

        link = self.console.docker_link(watch)
        wake = self._docker_wake[watch.name]
        while True:
            wake.clear()
            every = 1.0
            if watch.error is None and watch.latest is not None:
                try:
                    async with self._docker_gate:
                        snapshot = await read_containers(link, stats=False)
                except Exception as error:  # a bug stays this host's "?", never the fleet's
                    said = f"fleetdeck could not read the containers: {error!r}"
                    now = time.monotonic(), time.time()
                    snapshot = ContainerSnapshot(watch.name, link.where, *now, error=said)
                self.containers[watch.name] = snapshot
                every = DOCKER_EVERY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), every)

    def _container_column(self, row: HostRow) -> Shown:
        """A host's containers column: (text, running, troubled)."""
        if row.name not in self.docker:
            return ("-", -1, 0)
        snapshot = self.containers.get(row.name)
        if row.rank != 0 or snapshot is None:
            return ("", -1, 0)  # nothing read, or the host is down: no figure passes for current
        if snapshot.absent:
            return ("-", -1, 0)
        if snapshot.error is not None or time.monotonic() - snapshot.at > 3 * DOCKER_EVERY:
            return ("?", -1, 0)
        troubled = len(snapshot.troubled)
        text = f"{snapshot.running}" + (f" ▲{troubled}" if troubled else "")
        return (text, snapshot.running, troubled)

    def _container_detail(self, name: str) -> str:
        snapshot = self.containers.get(name)
        if snapshot is None or name not in self.docker:
            return ""
        if snapshot.error is not None:
            return f" · containers: {snapshot.error}"
        said = f" · containers: {snapshot.running} running of {snapshot.total}"
        named = [f"{c.name} {', '.join(c.trouble)}" for c in snapshot.troubled[:3]]
        more = len(snapshot.troubled) - len(named)
        return (
            said + (f"; {'; '.join(named)}" if named else "") + (f"; +{more}" if more > 0 else "")
        )

    def _source_counts(self, watch: HostWatch) -> dict[Status, int]:
        """The host's Alertmanager alerts that fire (silenced ones not), by severity, from
        the console's latest reading: counted in its row beside fleetdeck's own."""
        reading = self.console.source_reading
        if reading is None:
            return {}
        spec = getattr(watch.sampler, "spec", None)
        found: dict[Status, int] = {}
        for alert in reading.about(watch.name, getattr(spec, "address", "")):
            if not alert.silenced:
                found[alert.severity] = found.get(alert.severity, 0) + 1
        return found

    def refresh_table(self) -> None:
        """Every host's row read again from its watch, then arranged and shown."""
        labels = {n: (*self.tags.get(n, ()), *self.groups.get(n, ())) for n in self.watches}
        rows = [host_row(w, labels[n], self._source_counts(w)) for n, w in self.watches.items()]
        self._rows = {r.name: r for r in rows}
        table = self.query_one(FleetTable)
        if isinstance(table, FleetContainersTable):
            table.containers = {r.name: self._container_column(r) for r in rows}
        self._arrange()

    def _arrange(self) -> None:
        """The rows read last, filtered, sorted and grouped as asked, on the table. A sort,
        group or filter key arranges these (at most a refresh interval old, as between two
        refreshes) instead of reading every watch again: at 1,000 hosts that reading was
        most of the time a key took to answer."""
        rows = list(self._rows.values())
        table = self.query_one(FleetTable)
        wanted = self.filter_text.lower()
        if wanted:
            rows = [
                r
                for r in rows
                if wanted in r.name.lower() or any(wanted in t.lower() for t in r.labels)
            ]
        rows.sort(key=_sort_key(self.sort_by))
        grouped: list[tuple[str, list[HostRow]]] = []
        if self.grouping != "none":
            source = self.groups if self.grouping == "group" else self.tags
            buckets: dict[str, list[HostRow]] = {}
            for row in rows:
                for label in source.get(row.name) or ("(none)",):
                    buckets.setdefault(label, []).append(row)
            grouped = sorted(buckets.items())
        table.show(rows, grouped)
        table.border_subtitle = f"sorted by {self.sort_by}" + (
            f", grouped by {self.grouping}" if self.grouping != "none" else ""
        )
        self._summary(list(self._rows.values()), len(rows))
        self._detail()

    def _summary(self, rows: list[HostRow], shown: int) -> None:
        up = sum(r.rank == 0 for r in rows)
        down = sum(r.rank == 3 for r in rows)
        stale = sum(r.rank == 2 for r in rows)
        text = f"fleetdeck · {len(rows)} hosts · {up} up · {down} down · {stale} stale"
        if shown != len(rows):
            text += f" · showing {shown} matching {self.filter_text!r}"
        self.query_one("#fleet-summary", Static).update(text)

    def _detail(self) -> None:
        table = self.query_one(FleetTable)
        key = table.row_keys[table.cursor_row] if table.row_count else None
        row = self._rows.get(key.rsplit("/", 1)[-1]) if key else None
        detail = ""
        if row is not None:  # a host that is not up has no current containers to tell of
            detail = row.detail + (self._container_detail(row.name) if row.rank == 0 else "")
        self.query_one("#detail", Static).update(Text(detail))

    @on(FleetTable.Selected)
    def _opened(self, event: FleetTable.Selected) -> None:
        self._open(event.key)

    def action_open(self) -> None:
        table = self.query_one(FleetTable)
        if table.row_count:
            self._open(table.row_keys[table.cursor_row])

    def _open(self, key: str) -> None:
        watch = self.watches.get(key.rsplit("/", 1)[-1])
        if watch is not None:
            self.app.push_screen(HostScreen(watch, owns_watch=False))

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        self.query_one(FleetTable).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.remove_class("-filtering")
        self.query_one(FleetTable).focus()

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]

    def action_group(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]

    def action_audit(self) -> None:
        self.console.open_audit()

    def action_refresh_now(self) -> None:
        for watch in self.watches.values():
            watch.poll_now()
        for wake in self._docker_wake.values():
            wake.set()

    def watch_sort_by(self) -> None:
        self._arrange()

    def watch_grouping(self) -> None:
        self._arrange()

    def watch_filter_text(self) -> None:
        self._arrange()

    @on(FleetTable.Highlighted)
    def _moved(self) -> None:
        self._detail()


def _matches(row: HostRow, wanted: str) -> bool:
    return wanted in row.name.lower() or any(wanted in label.lower() for label in row.labels)


def _sort_key(by: str) -> Callable[[HostRow], tuple[object, ...]]:
    def key(row: HostRow) -> tuple[object, ...]:
        figures = {"cpu": row.cpu, "mem": row.mem, "disk": row.disk}
        if by == "state":
            return (-row.rank, row.name)
        if by == "alerts":
            return (-sum((1000**s.rank) * n for s, n in row.alerts.items()), row.name)
        if by in figures:
            value = figures[by]
            return (value is None, -(value or 0), row.name)
        return (row.name,)

    return key
