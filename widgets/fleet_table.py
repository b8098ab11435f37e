"""The Fleet table: one row per host with its state, headline figures and alert counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from fleetdeck.checks.alerts import AlertState
from fleetdeck.checks.model import Status
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.ssh import ConnState
from fleetdeck.hosts.units import human_duration
from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.findings_tables import SeverityTable
from fleetdeck.widgets.row_table import Column


@dataclass(frozen=True, slots=True)
class HostRow:
    """What the Fleet table shows of one host; built from its watch, sorted and grouped."""

    name: str
    state: str
    rank: int  # 0 up, 1 connecting, 2 stale, 3 down: worst last when sorting by state
    cpu: float | None
    mem: float | None
    disk: float | None
    load: float | None
    alerts: dict[Status, int]
    labels: tuple[str, ...]
    detail: str


def host_row(
    watch: HostWatch, labels: Sequence[str] = (), others: Mapping[Status, int] | None = None
) -> HostRow:
    """A host's row: current figures only when its data is fresh. `others` are other
    engines' firing alerts about the host (Alertmanager's), counted with its own."""
    link_state = getattr(watch.sampler, "state", None)
    sample, rates = watch.latest, watch.rates
    alerts: dict[Status, int] = dict(others or {})
    for alert in watch.alerts.alerts():
        if alert.state is not AlertState.RESOLVED:
            alerts[alert.severity] = alerts.get(alert.severity, 0) + 1

    def without_figures(state: str, rank: int, detail: str) -> HostRow:
        return HostRow(
            watch.name, state, rank, None, None, None, None, alerts, tuple(labels), detail
        )

    if watch.error is not None and link_state is ConnState.UP:
        detail = f"{watch.error} (connected, but the answer cannot be read)"
        return without_figures("unknown", 2, detail)
    if watch.error is not None and (sample is None or watch.is_stale()):
        reason = link_state.value if link_state is not None else "down"
        seconds = watch.age()
        since = f" (data {human_duration(seconds)} old)" if seconds is not None else ""
        if sample is None and reason == "connecting":
            return without_figures("connecting", 1, f"{watch.error}{since}")
        state = "down" if reason == "down" else f"down: {reason}"
        return without_figures(state, 3, f"{watch.error}{since}")
    if sample is None:
        return without_figures("connecting", 1, f"{watch.name}: connecting…")
    if watch.is_stale():
        age = human_duration(watch.age() or 0.0)
        detail = f"{watch.name}: no new sample for {age}; figures hidden until one arrives"
        return without_figures(f"stale {age}", 2, detail)
    disks = [m.percent for m in sample.mounts if m.error is None]
    return HostRow(
        name=watch.name,
        state="up",
        rank=0,
        cpu=rates.cpu if rates else None,
        mem=sample.memory.percent,
        disk=max(disks) if disks else None,
        load=sample.load.five / sample.core_count,
        alerts=alerts,
        labels=tuple(labels),
        detail=f"{watch.name}: up" + (f", {watch.info.os}" if watch.info else ""),
    )


def _figure(value: float | None, text: str) -> Cell:
    return num("-" if value is None else text, -1 if value is None else value)


class FleetTable(SeverityTable):
    """Hosts with state, CPU, memory, worst disk, load per core and alerts by severity."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Open host")]
    COLUMNS = (
        Column("host", "Host", max_width=28),
        Column("state", "State", max_width=24),
        Column("cpu", "CPU", "right"),
        Column("mem", "Mem", "right"),
        Column("disk", "Disk", "right"),
        Column("load", "Load/c", "right"),
        Column("alerts", "Alerts"),
        Column("labels", "Tags"),
    )
    COMPONENT_CLASSES: ClassVar[set[str]] = SeverityTable.COMPONENT_CLASSES | {
        "fleet--down",
        "fleet--stale",
        "fleet--group",
    }
    DEFAULT_CSS = """
    FleetTable > .fleet--down { color: $error; }
    FleetTable > .fleet--stale { color: $warning; }
    FleetTable > .fleet--group { text-style: bold; color: $text-accent; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._built: dict[str, tuple[HostRow, tuple[Cell, ...]]] = {}

    def show(
        self, rows: Sequence[HostRow], groups: Sequence[tuple[str, Sequence[HostRow]]]
    ) -> None:
        """Show hosts, under group headings when `groups` is given (rows then unused)."""
        table: dict[str, tuple[Cell, ...]] = {}
        if groups:
            for group, members in groups:
                heading = Cell(f"▸ {group} ({len(members)})")
                heading.stylize(self.get_component_rich_style("fleet--group", partial=True))
                blanks = tuple(Cell("") for _ in self.COLUMNS[1:])
                table[f"group:{group}"] = (heading, *blanks)
                for row in members:
                    table[f"{group}/{row.name}"] = self._cells(row)
        else:
            for row in rows:
                table[row.name] = self._cells(row)
        self.set_rows(table)

    def _cells(self, row: HostRow) -> tuple[Cell, ...]:
        """A row's cells, built again only when the row changed (most don't, each second)."""
        cached = self._built.get(row.name)
        if cached is not None and cached[0] == row:
            return cached[1]
        cells = self._build(row)
        self._built[row.name] = (row, cells)
        return cells

    def _build(self, row: HostRow) -> tuple[Cell, ...]:
        state = Cell(row.state)
        if row.rank >= 2:
            name = "fleet--down" if row.rank == 3 else "fleet--stale"
            state.stylize(self.get_component_rich_style(name, partial=True))
        # Sorts worst first: criticals count most, then warnings, then unknowns.
        weight = -sum((1000**s.rank) * n for s, n in row.alerts.items())
        alerts = Cell("", weight)
        for status, letter in ((Status.CRIT, "C"), (Status.WARN, "W"), (Status.UNKNOWN, "U")):
            count = row.alerts.get(status, 0)
            if count and status is Status.UNKNOWN:
                alerts.append(f"{count}{letter} ")
            elif count:
                style = self.get_component_rich_style(
                    f"severity--{status.value.lower()}", partial=True
                )
                alerts.append(f"{count}{letter} ", style)
        return (
            Cell(row.name),
            state,
            _figure(row.cpu, f"{row.cpu or 0:.0f}%"),
            _figure(row.mem, f"{row.mem or 0:.0f}%"),
            _figure(row.disk, f"{row.disk or 0:.0f}%"),
            _figure(row.load, f"{row.load or 0:.2f}"),
            alerts,
            Cell(",".join(row.labels)),
        )
