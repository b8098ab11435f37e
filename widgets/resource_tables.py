"""Tables of the Host screen that list resources: mounts, interfaces, processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import DataTable

from hosts.metrics import ProcessRate, Rates
from hosts.sample import Mount
from hosts.units import human_bytes, human_rate
from widgets.cells import Cell, num, sort_key, sync_rows


class ResourceTable(DataTable[Any]):
    """A read-only table with a row cursor and fixed columns."""

    COLUMNS: ClassVar[Sequence[tuple[str, str]]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]
    DEFAULT_CSS = "ResourceTable { height: auto; max-height: 100%; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)


class DisksTable(ResourceTable):
    """Space and inodes per mount, with the I/O of the device behind it."""

    COLUMNS = (
        ("mount", "Mount"),
        ("used", "Used"),
        ("inodes", "Inodes"),
        ("size", "Size"),
        ("read", "Read/s"),
        ("write", "Write/s"),
        ("fs", "FS"),
    )

    def show(self, mounts: Sequence[Mount], rates: Rates | None) -> None:
        rows = {}
        for m in mounts:
            if m.error is not None:
                rows[m.mountpoint] = (
                    Cell(m.mountpoint),
                    num("?", -1),
                    num("?", -1),
                    Cell(f"cannot stat: {m.error}"),
                    num("", -1),
                    num("", -1),
                    Cell(m.fstype or "?"),
                )
                continue
            io = rates.disk(m.device) if rates else None
            inodes = m.inodes_percent
            rows[m.mountpoint] = (
                Cell(m.mountpoint),
                num(f"{m.percent:.0f}%", m.percent),
                num("-" if inodes is None else f"{inodes:.0f}%", inodes or 0.0),
                num(human_bytes(m.total), m.total),
                num(human_rate(io.read_bps) if io else "-", io.read_bps if io else -1),
                num(human_rate(io.write_bps) if io else "-", io.write_bps if io else -1),
                Cell(m.fstype),
            )
        sync_rows(self, rows)


class NetworkTable(ResourceTable):
    """Traffic per interface, with errors and drops since boot and in the last interval."""

    COLUMNS = (
        ("iface", "Interface"),
        ("rx", "RX/s"),
        ("tx", "TX/s"),
        ("errors", "Errors"),
        ("drops", "Drops"),
    )

    def show(self, rates: Rates | None) -> None:
        rows = {}
        for n in rates.nets if rates else ():
            errors = f"{n.errors:,}" + (f" +{n.new_errors}" if n.new_errors else "")
            drops = f"{n.drops:,}" + (f" +{n.new_drops}" if n.new_drops else "")
            rows[n.name] = (
                Cell(n.name),
                num(human_rate(n.rx_bps), n.rx_bps),
                num(human_rate(n.tx_bps), n.tx_bps),
                num(errors, n.errors),
                num(drops, n.drops),
            )
        sync_rows(self, rows)


class ProcessTable(ResourceTable):
    """The busiest processes, sorted by CPU, memory or PID (the screen binds c, m, p)."""

    COLUMNS = (
        ("pid", "PID"),
        ("user", "User"),
        ("cpu", "CPU%"),
        ("mem", "MEM%"),
        ("rss", "RSS"),
        ("command", "Command"),
    )
    LIMIT = 100

    sort_by: reactive[str] = reactive("cpu")
    total: reactive[int] = reactive(0)

    def action_sort(self, column: str) -> None:
        self.sort_by = column

    def watch_sort_by(self) -> None:
        for key, label in self.COLUMNS:
            arrow = " ▼" if key == self.sort_by else ""
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None:
                column.label = type(column.label)(label + arrow)
        self._resort()
        self._subtitle()

    def watch_total(self) -> None:
        self._subtitle()

    def _subtitle(self) -> None:
        names = {"cpu": "CPU", "mem": "memory", "pid": "PID"}
        shown = min(self.total, self.LIMIT)
        self.border_subtitle = f"top {shown} of {self.total} by {names[self.sort_by]}"

    def _resort(self) -> None:
        if self.row_count:
            self.sort(self.sort_by, key=sort_key, reverse=self.sort_by != "pid")

    def show(self, processes: Sequence[ProcessRate]) -> None:
        def order(p: ProcessRate) -> float:
            return {"cpu": p.cpu, "mem": p.mem}.get(self.sort_by, -p.info.pid)

        self.total = len(processes)
        top = sorted(processes, key=order, reverse=True)[: self.LIMIT]
        rows = {
            f"{p.info.pid}:{p.info.started}": (
                num(str(p.info.pid), p.info.pid),
                Cell(p.info.user[:12]),
                num(f"{p.cpu:.1f}", p.cpu),
                num(f"{p.mem:.1f}", p.mem),
                num(human_bytes(p.info.rss), p.info.rss),
                Cell(p.info.command or p.info.name),
            )
            for p in top
        }
        if sync_rows(self, rows):
            self._resort()
