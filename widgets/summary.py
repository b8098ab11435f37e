"""The summary panes at the top of the Host screen: CPU, memory and swap, load.

They render what they are given (`update_data`) and a status per figure, which picks the
component class, so the colours live in TCSS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget

from fleetdeck.checks.model import Status
from fleetdeck.hosts.sample import LoadAvg, Memory
from fleetdeck.hosts.units import human_bytes
from fleetdeck.widgets.meters import meter
from fleetdeck.widgets.repaint import PaintedText

STATUS_CLASSES = {s: f"-{s.value.lower()}" for s in Status}


class StatusLines(Widget):
    """Lines of meters that fit the pane's width; styles come from component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--ok",
        "status--warn",
        "status--crit",
        "status--unknown",
        "status--label",
        "status--dim",
    }
    DEFAULT_CSS = """
    StatusLines { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusLines > .status--label { color: $text-muted; }
    StatusLines > .status--dim { color: $text-muted; }
    StatusLines > .status--ok { color: $success; }
    StatusLines > .status--warn { color: $warning; }
    StatusLines > .status--crit { color: $error; text-style: bold; }
    StatusLines > .status--unknown { color: $text-muted; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._painted = PaintedText()

    def style_for(self, status: Status | str) -> Style:
        name = status.value.lower() if isinstance(status, Status) else status
        return self.get_component_rich_style(f"status--{name}")

    def repaint_changed(self) -> None:
        """Refresh only the cells whose text or colour changed since the last call."""
        self._painted.repaint(self)


class CpuBars(StatusLines):
    """Total CPU as a meter, then every core: as small meters while they fit in `max_lines`,
    else one block character per core (a 64-core host at 80x24), and a count of any left
    over, so no core is dropped without a sign."""

    BLOCKS = " ▁▂▃▄▅▆▇█"

    total: reactive[float | None] = reactive(None, repaint=False)
    cores: reactive[tuple[float, ...]] = reactive((), repaint=False)
    status: reactive[Status] = reactive(Status.OK, repaint=False)
    max_lines: reactive[int] = reactive(4, layout=True)

    # A new figure only repaints the lines it changed; only a change in how many lines the
    # widget needs (the first sample, another core count) is worth a layout of the screen.
    def watch_total(self, old: float | None, new: float | None) -> None:
        if (old is None) != (new is None):
            self.refresh(layout=True)
        else:
            self.repaint_changed()

    def watch_cores(self, old: tuple[float, ...], new: tuple[float, ...]) -> None:
        if len(old) != len(new):
            self.refresh(layout=True)
        else:
            self.repaint_changed()

    def watch_status(self) -> None:
        self.repaint_changed()

    def on_resize(self) -> None:
        self.refresh(layout=True)  # cores per line follow the width

    def render(self) -> Text:
        width = self.content_size.width or 30
        label = self.style_for("label")
        if self.total is None:
            return Text("measuring…", style=self.style_for("dim"))
        text = meter(
            "CPU", self.total, width, f"{self.total:5.1f}%", self.style_for(self.status), label
        )
        cores, room = self.cores, max(self.max_lines - 1, 1)
        cell = 14  # "12[|||  ] 99%" per core
        per_line = max(width // cell, 1)
        if -(-len(cores) // per_line) <= room:
            for index, pct in enumerate(cores):
                text.append("\n" if index % per_line == 0 else " ")
                text.append_text(
                    meter(f"{index:>2}", pct, cell - 1, f"{pct:3.0f}%", self.style_for("ok"), label)
                )
            return text
        fits = width * room
        shown = cores if len(cores) <= fits else cores[: fits - len(f" +{len(cores)}")]
        for index, pct in enumerate(shown):
            if index % width == 0:
                text.append("\n")
            level = min(int(pct / 100 * (len(self.BLOCKS) - 1) + 0.5), len(self.BLOCKS) - 1)
            text.append(self.BLOCKS[level] if pct > 0 else "·", self.style_for("ok"))
        if len(shown) < len(cores):
            text.append(f" +{len(cores) - len(shown)}", label)
        return text


class HistoryLine(StatusLines):
    """The CPU history as one line of blocks on a fixed 0-100 % scale, newest on the right.

    Textual's Sparkline scales to its own minimum and maximum, so an idle host's 0.5 % and
    1.5 % drew as full-height spikes; and it colours every cell, which is bytes on every
    refresh over a slow link. One style, a fixed scale."""

    BLOCKS = " ▁▂▃▄▅▆▇█"

    values: reactive[tuple[float, ...]] = reactive((), repaint=False)

    def watch_values(self) -> None:
        # The line moves left one cell a second, but runs of equal blocks stay equal: only
        # the cells where a run starts or ends change.
        self.repaint_changed()

    def render(self) -> Text:
        width = self.content_size.width or 30
        shown = self.values[-width:]
        top = len(self.BLOCKS) - 1
        line = "".join(self.BLOCKS[min(round(v / 100 * top), top)] for v in shown)
        return Text(line.rjust(width), style=self.style_for("ok"), no_wrap=True, end="")


class CpuPane(Vertical):
    """CPU: total with a history sparkline, and every core."""

    DEFAULT_CSS = """
    CpuPane { height: auto; border: round $primary-muted; border-title-color: $text; }
    CpuPane.-warn { border: round $warning; }
    CpuPane.-crit { border: round $error; }
    CpuPane HistoryLine { height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield CpuBars()
        yield HistoryLine()

    def on_resize(self) -> None:
        self.query_one(CpuBars).max_lines = max(self.content_size.height - 1, 1)

    def update_data(
        self, total: float | None, cores: Sequence[float], history: Sequence[float], status: Status
    ) -> None:
        bars = self.query_one(CpuBars)
        bars.total, bars.cores, bars.status = total, tuple(cores), status
        self.query_one(HistoryLine).values = tuple(history[-300:])
        for name in STATUS_CLASSES.values():
            self.set_class(name == STATUS_CLASSES[status], name)


class MemoryPane(StatusLines):
    """Memory and swap as meters with used, available and total."""

    DEFAULT_CSS = """
    MemoryPane { border: round $primary-muted; border-title-color: $text; }
    """

    memory: reactive[Memory | None] = reactive(None, repaint=False)
    mem_status: reactive[Status] = reactive(Status.OK, repaint=False)
    swap_status: reactive[Status] = reactive(Status.OK, repaint=False)

    def watch_memory(self) -> None:
        self.repaint_changed()

    def watch_mem_status(self) -> None:
        self.repaint_changed()

    def watch_swap_status(self) -> None:
        self.repaint_changed()

    def show(self, memory: Memory, mem_status: Status, swap_status: Status) -> None:
        """Take new figures; repaint only if what is shown would change (memory moves by a
        few pages every second, which no one can see at this precision)."""
        self.mem_status, self.swap_status = mem_status, swap_status
        if self.memory is None or _shown(self.memory) != _shown(memory):
            self.memory = memory

    def render(self) -> Text:
        mem = self.memory
        if mem is None:
            return Text("waiting for a sample…", style=self.style_for("dim"))
        width = self.content_size.width or 30
        label = self.style_for("label")
        text = meter(
            "Mem",
            mem.percent,
            width,
            f"{mem.percent:3.0f}%",
            self.style_for(self.mem_status),
            label,
        )
        text.append("\n")
        if mem.swap_total:
            swap = meter(
                "Swp",
                mem.swap_percent,
                width,
                f"{mem.swap_percent:3.0f}%",
                self.style_for(self.swap_status),
                label,
            )
            text.append_text(swap)
        else:
            text.append("Swp none configured", self.style_for("dim"))
        text.append(f"\nused  {human_bytes(mem.used)}/{human_bytes(mem.total)}", label)
        text.append(f"\navail {human_bytes(mem.available)}", label)
        if mem.swap_total:
            text.append(
                f"\nswap  {human_bytes(mem.swap_used)}/{human_bytes(mem.swap_total)}", label
            )
        return text


class LoadPane(StatusLines):
    """Load averages over 1, 5 and 15 minutes, as they are and per core."""

    DEFAULT_CSS = """
    LoadPane { border: round $primary-muted; border-title-color: $text; }
    """

    load: reactive[LoadAvg | None] = reactive(None, repaint=False)
    cores: reactive[int] = reactive(1, repaint=False)
    status: reactive[Status] = reactive(Status.OK, repaint=False)

    def watch_load(self) -> None:
        self.repaint_changed()

    def watch_cores(self) -> None:
        self.repaint_changed()

    def watch_status(self) -> None:
        self.repaint_changed()

    def render(self) -> Text:
        load = self.load
        if load is None:
            return Text("waiting for a sample…", style=self.style_for("dim"))
        label = self.style_for("label")
        cores = max(self.cores, 1)
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append("     all  /core\n", label)
        rows = (("1m", load.one, Status.OK), ("5m", load.five, self.status))
        for name, value, status in (*rows, ("15m", load.fifteen, Status.OK)):
            text.append(f"{name:>3} ", label)
            text.append(f"{value:5.2f} ")
            text.append(f"{value / cores:5.2f}\n", self.style_for(status))
        text.append(f"{cores} cores", label)
        return text


def _shown(mem: Memory) -> tuple[object, ...]:
    return (
        round(mem.percent),
        round(mem.swap_percent),
        human_bytes(mem.used),
        human_bytes(mem.available),
        human_bytes(mem.total),
        human_bytes(mem.swap_used),
        human_bytes(mem.swap_total),
    )
