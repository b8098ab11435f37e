"""The Fleet screen: every host of the inventory in one table, each polled on its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from checks.watch import HostWatch
from tui.host_screen import HostScreen
from widgets.fleet_table import FleetTable, HostRow, host_row

SORTS = ("name", "state", "cpu", "mem", "disk", "alerts")
GROUPINGS = ("none", "group", "tag")


class FleetScreen(Screen[None]):
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

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-summary")
        yield Input(
            placeholder="filter by name or tag; enter to keep, escape to clear", id="filter"
        )
        yield FleetTable(id="fleet")
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        for watch in self.watches.values():
            self.run_worker(watch.run(), group="watches", exit_on_error=False)
        self.query_one(FleetTable).focus()
        self.set_interval(min(self.interval, 1.0), self.refresh_table)
        self.refresh_table()

    def refresh_table(self) -> None:
        labels = {n: (*self.tags.get(n, ()), *self.groups.get(n, ())) for n in self.watches}
        rows = [host_row(w, labels[n]) for n, w in self.watches.items()]
        self._rows = {r.name: r for r in rows}
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
        table = self.query_one(FleetTable)
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
        self.query_one("#detail", Static).update(Text(row.detail if row else ""))

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
        self.app.open_audit()  # type: ignore[attr-defined]

    def action_refresh_now(self) -> None:
        for watch in self.watches.values():
            watch.poll_now()

    def watch_sort_by(self) -> None:
        self.refresh_table()

    def watch_grouping(self) -> None:
        self.refresh_table()

    def watch_filter_text(self) -> None:
        self.refresh_table()

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
