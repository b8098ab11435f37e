"""Tables of the Host screen that list resources: mounts, interfaces, processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual.reactive import reactive

from fleetdeck.hosts.metrics import ProcessRate, Rates
from fleetdeck.hosts.sample import Mount
from fleetdeck.hosts.units import human_bytes, human_rate
from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.repaint import set_border_subtitle
from fleetdeck.widgets.row_table import Column, RowTable


class DisksTable(RowTable):
    """Space and inodes per mount, with the I/O of the device behind it."""

    COLUMNS = (
        Column("mount", "Mount", max_width=28),
        Column("used", "Used", "right"),
        Column("inodes", "Inodes", "right"),
        Column("size", "Size", "right"),
        Column("read", "Read/s", "right"),
        Column("write", "Write/s", "right"),
        Column("fs", "FS / problem"),
    )

    def show(self, mounts: Sequence[Mount], rates: Rates | None) -> None:
        rows: dict[str, tuple[Cell, ...]] = {}
        for m in mounts:
            if m.error is not None:
                rows[m.mountpoint] = (
                    Cell(m.mountpoint),
                    num("?", -1),
                    num("?", -1),
                    num("?", -1),
                    num("-", -1),
                    num("-", -1),
                    Cell(f"cannot stat: {m.error}"),
                )
                continue
            io = rates.disk(m.disk or m.device) if rates else None
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
        self.set_rows(rows)


class NetworkTable(RowTable):
    """Traffic per interface, with errors and drops since boot and in the last interval."""

    COLUMNS = (
        Column("iface", "Interface"),
        Column("rx", "RX/s", "right"),
        Column("tx", "TX/s", "right"),
        Column("errors", "Errors", "right"),
        Column("drops", "Drops", "right"),
    )

    def show(self, rates: Rates | None) -> None:
        rows: dict[str, tuple[Cell, ...]] = {}
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
        self.set_rows(rows)


class ProcessTable(RowTable):
    """The busiest processes, sorted by CPU, memory or PID (the screen binds c, m, p)."""

    COLUMNS = (
        Column("pid", "PID", "right"),
        Column("user", "User"),
        Column("cpu", "CPU%", "right"),
        Column("mem", "MEM%", "right"),
        Column("rss", "RSS", "right"),
        Column("command", "Command"),
    )
    LIMIT = 100
    SORT_NAMES: ClassVar[dict[str, str]] = {"cpu": "CPU", "mem": "memory", "pid": "PID"}

    sort_by: reactive[str] = reactive("cpu")
    # Shown in the bottom border only (`_subtitle` repaints that line): a whole-widget repaint
    # here rewrote every row each time a process started or exited.
    total: reactive[int] = reactive(0, repaint=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._processes: Sequence[ProcessRate] = ()
        self._cells: dict[str, tuple[tuple[str, ...], tuple[Cell, ...]]] = {}
        self._cpu_rank: dict[str, int] = {}
        """Where each row was last shown sorted by CPU: the tie-breaker of that sort."""

    def watch_sort_by(self) -> None:
        self._cpu_rank = {}
        self._subtitle()
        self.show(self._processes)

    def watch_total(self) -> None:
        self._subtitle()

    def _subtitle(self) -> None:
        shown = min(self.total, self.LIMIT)
        sort = self.SORT_NAMES[self.sort_by]
        set_border_subtitle(self, f"top {shown} of {self.total} by {sort}")

    def show(self, processes: Sequence[ProcessRate]) -> None:
        self._processes = processes
        self.total = len(processes)
        if self.sort_by == "pid":
            top = sorted(processes, key=lambda p: p.info.pid)[: self.LIMIT]
        elif self.sort_by == "mem":
            top = sorted(processes, key=lambda p: (-p.info.rss, p.info.pid))[: self.LIMIT]
        else:
            # CPU as shown, to one decimal; ties (most processes idle at 0.0) keep the order
            # they were shown in, then PID order, so rows don't shuffle from one second to
            # the next. A process back to 0.0 after a blip stays where it was, at the head
            # of the idle ones, rather than going back to its PID's place: that move shifted
            # every row in between, each one rewritten on the terminal.
            rank, unseen = self._cpu_rank, len(self._cpu_rank)
            top = sorted(
                processes,
                key=lambda p: (-round(p.cpu, 1), rank.get(_row_key(p), unseen), p.info.pid),
            )[: self.LIMIT]
            self._cpu_rank = {_row_key(p): i for i, p in enumerate(top)}
        # Most rows look the same from one second to the next: build cells only for rows
        # whose figures moved. The exact RSS is part of the key, since rows are sorted by
        # it: a cell that kept an older RSS behind the same "9.0M" would sort out of place.
        rows: dict[str, tuple[Cell, ...]] = {}
        cache: dict[str, tuple[tuple[str, ...], tuple[Cell, ...]]] = {}
        for p in top:
            key = _row_key(p)
            shown = (f"{p.cpu:.1f}", f"{p.mem:.1f}", human_bytes(p.info.rss))
            figures = (*shown, str(p.info.rss))
            cached = self._cells.get(key)
            if cached is None or cached[0] != figures:
                cells = (
                    num(str(p.info.pid), p.info.pid),
                    Cell(p.info.user[:12]),
                    num(shown[0], round(p.cpu, 1)),
                    num(shown[1], p.info.rss),
                    num(shown[2], p.info.rss),
                    Cell(p.info.command or p.info.name),
                )
                cached = (figures, cells)
            cache[key] = cached
            rows[key] = cached[1]
        self._cells = cache
        self.set_rows(rows)


def _row_key(process: ProcessRate) -> str:
    """A process's row: its PID and start time, so a reused PID is another row."""
    return f"{process.info.pid}:{process.info.started}"
