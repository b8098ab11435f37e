"""The containers pane of the Host screen: a host's containers by compose project and service,
with state, health, restarts, CPU, memory against the limit, uptime, the OOM flag and ports,
as `checks.containers.pane` read them.

It renders the snapshots it is handed and opens nothing. Above the table, one or two lines
say what the table cannot: how many run and which need a look, or why there is nothing to
show. A failed reading shows its cause above the last good table, marked stale with its age;
a host with no Docker at all says so in one muted line, without a table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, Self

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget

from fleetdeck.checks.containers.config import ContainerThresholds
from fleetdeck.checks.model import Status, printable
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.units import human_bytes, human_duration
from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.repaint import Lines, refresh_changed, text_lines
from fleetdeck.widgets.row_table import Column, RowTable

if TYPE_CHECKING:  # the data layer pulls in the docker SDK; the console loads it later
    from fleetdeck.checks.containers.pane import ContainerGroup, ContainerLine, ContainerSnapshot

TROUBLES_SHOWN = 6


class ContainerTable(RowTable):
    """Containers under their compose project (and service, when it runs several)."""

    COLUMNS = (
        Column("name", "Container", max_width=20),
        Column("state", "State", max_width=12),
        Column("health", "Health", max_width=9),
        Column("restarts", "Rst", "right"),
        Column("cpu", "CPU", "right"),
        Column("mem", "Mem", "right"),
        Column("mem_pct", "Mem%", "right"),
        Column("limit", "Limit", "right"),
        Column("up", "Up", "right"),
        Column("oom", "OOM"),
        Column("ports", "Ports", max_width=30),
        Column("image", "Image", max_width=40),
    )
    COMPONENT_CLASSES: ClassVar[set[str]] = RowTable.COMPONENT_CLASSES | {
        "containers--group",
        "containers--warn",
        "containers--error",
        "containers--dim",
    }
    DEFAULT_CSS = """
    ContainerTable > .containers--group { text-style: bold; color: $text-accent; }
    ContainerTable > .containers--warn { color: $warning; }
    ContainerTable > .containers--error { color: $error; text-style: bold; }
    ContainerTable > .containers--dim { color: $text-muted; }
    """

    def __init__(self, memory: Limit | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: dict[str, ContainerLine] = {}
        """The container of each row key (a heading's key: its group's first container)."""
        self.memory = memory or ContainerThresholds().memory
        """The levels Mem% is marked from: the container.memory check's, so the pane
        marks what the check finds."""

    def show(self, groups: tuple[ContainerGroup, ...]) -> None:
        rows: dict[str, tuple[Cell, ...]] = {}
        lines: dict[str, ContainerLine] = {}
        headings = any(g.project is not None for g in groups)
        project: str | None = ""
        for group in groups:
            if headings and group.project != project:
                project = group.project
                members = [g for g in groups if g.project == project]
                key = f"project:{project}"
                rows[key] = self._heading(f"▸ {project or 'no compose project'}", members)
                lines[key] = members[0].lines[0]
            indent = "  " if headings else ""
            if group.service is not None and len(group.lines) > 1:
                key = f"service:{project}/{group.service}"
                rows[key] = self._heading(f"{indent}{group.service} ×{len(group.lines)}", [group])
                lines[key] = group.lines[0]
                indent += "  "
            for line in group.lines:
                rows[line.id] = self._cells(line, indent)
                lines[line.id] = line
        self.lines = lines
        self.set_rows(rows)

    @property
    def selected(self) -> ContainerLine | None:
        """The container under the cursor (on a heading: the group's first)."""
        if not self.row_count:
            return None
        return self.lines.get(self.row_keys[self.cursor_row])

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"containers--{name}", partial=True)

    def _cell(self, text: str, style: str = "", sort: Any = None, right: bool = False) -> Cell:
        cell = Cell(text, sort, justify="right" if right else "left")
        if style:
            cell.stylize(self._style(style))
        return cell

    def _heading(self, title: str, groups: list[ContainerGroup]) -> tuple[Cell, ...]:
        members = [line for g in groups for line in g.lines]
        running = sum(line.state == "running" for line in members)
        troubled = sum(bool(line.trouble) for line in members)
        state = f"{running}/{len(members)} up" + (f" ▲{troubled}" if troubled else "")
        blanks = (Cell("") for _ in self.COLUMNS[2:])
        return (
            self._cell(title, "group"),
            self._cell(state, "warn" if troubled else "dim"),
            *blanks,
        )

    def _memory_style(self, pct: float | None) -> str:
        status = self.memory.grade(pct)
        return {Status.WARN: "warn", Status.CRIT: "error"}.get(status, "")

    def _cells(self, line: ContainerLine, indent: str) -> tuple[Cell, ...]:
        state_style = {"running": "", "restarting": "error", "dead": "error", "paused": "warn"}
        style = state_style.get(line.state, "warn" if line.trouble else "dim")
        health = line.health or "-"
        health_style = {"unhealthy": "error", "starting": "dim", "": "dim"}.get(line.health, "")
        running = line.state == "running"
        cpu = line.cpu_percent
        cpu_text = f"{cpu:.1f}%" if cpu is not None else ("…" if running else "-")
        used, limit, pct = line.memory_used, line.memory_limit, line.memory_percent
        if line.uptime is not None:
            up = num(human_duration(line.uptime), line.uptime)
        elif line.stopped_for is not None:  # how long ago it stopped, as `docker ps` says
            up = num(f"{human_duration(line.stopped_for)} ago", -line.stopped_for)
            up.stylize(self._style("dim"))
        else:
            up = num("-", -1)
        return (
            self._cell(f"{indent}{line.name}", "error" if line.trouble else ""),
            self._cell(line.state_text, style),
            self._cell(health, health_style),
            self._cell(str(line.restart_count), "warn" if line.restart_count else "", right=True),
            num(cpu_text, cpu if cpu is not None else -1),
            num(human_bytes(used) if used is not None else "-", used or -1),
            self._cell(
                f"{pct:.0f}%" if pct is not None else "-",
                self._memory_style(pct),
                pct if pct is not None else -1,
                right=True,
            ),
            num(human_bytes(limit) if limit else "none", limit or -1),
            up,
            self._cell("OOM" if line.oom_killed else "", "error"),
            Cell(", ".join(line.ports)),
            Cell(line.image),
        )


class ContainerStatus(Widget):
    """The lines above the table: counts and troubles, or the error, or why there is none."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "containers--dim",
        "containers--warn",
        "containers--error",
        "containers--stale",
    }
    DEFAULT_CSS = """
    ContainerStatus { height: auto; padding: 0 1; }
    ContainerStatus > .containers--dim { color: $text-muted; }
    ContainerStatus > .containers--warn { color: $warning; }
    ContainerStatus > .containers--error { color: $error; text-style: bold; }
    ContainerStatus > .containers--stale { color: $warning; text-style: bold reverse; }
    """

    def __init__(self, label: str, max_age: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.max_age = max_age
        self.latest: ContainerSnapshot | None = None
        self.good: ContainerSnapshot | None = None
        self._shown: tuple[Lines, tuple[bool, ...]] | None = None

    @property
    def absent(self) -> bool:
        """No Docker here, and never was while the screen was open."""
        return self.latest is not None and self.latest.absent and self.good is None

    @property
    def failed(self) -> bool:
        return self.latest is not None and self.latest.error is not None and not self.absent

    @property
    def age(self) -> float | None:
        return None if self.good is None else time.monotonic() - self.good.at

    @property
    def stale(self) -> bool:
        age = self.age
        return age is not None and (self.failed or age > self.max_age)

    def render(self) -> Group:
        return Group(*self.lines())

    def repaint(self) -> None:
        """Redraw after a reading or a tick of the age: nothing when the lines read the
        same, a layout of the screen only when the lines may take another height (one more
        or fewer, or a wrapped one changed), else only the lines that changed."""
        lines = self.lines()
        shown, wraps = text_lines(lines), tuple(not line.no_wrap for line in lines)
        before, self._shown = self._shown, (shown, wraps)
        if before is None or before[1] != wraps or not self.size:
            self.refresh(layout=True)  # another number of lines, or not drawn yet
            return
        old_lines = before[0]  # as many as now: the same lines wrap
        if any(w and old != new for old, new, w in zip(old_lines, shown, wraps, strict=True)):
            self.refresh(layout=True)
        elif any(wraps):  # a wrapped line above moves the others down: no line-for-line map
            if old_lines != shown:
                self.refresh()
        else:
            refresh_changed(self, old_lines, shown)

    def _line(self, text: str, style: str = "", wrap: bool = False) -> Text:
        styled = self.get_component_rich_style(f"containers--{style}") if style else ""
        if wrap:  # what is wrong, and what to do about it, must be read whole
            return Text(printable(text), styled)
        return Text(printable(text), styled, no_wrap=True, overflow="ellipsis")

    def lines(self) -> list[Text]:
        latest, good = self.latest, self.good
        if latest is None:
            return [self._line(f"reading {self.label or 'the Docker engine'}…", "dim")]
        if self.absent:
            return [self._line(f"no Docker engine: {latest.error}", "dim", wrap=True)]
        said: list[Text] = []
        if latest.error is not None:
            said.append(self._line(latest.error, "error", wrap=True))
        if good is not None and self.stale:
            when = time.strftime("%H:%M:%S", time.localtime(good.taken))
            why = "the last good reading" if self.failed else "no new reading yet"
            age = human_duration(self.age or 0.0)
            said.append(self._line(f"STALE {age}: {why}, of {when}", "stale"))
        if good is not None:
            said += self._summary(good)
        return said

    def _summary(self, s: ContainerSnapshot) -> list[Text]:
        if not s.total:
            return [self._line(f"no containers on this engine (Docker {s.engine})", "dim")]
        head = self._line(f"{s.total} containers, {s.running} running")
        troubled = s.troubled
        if troubled:
            head.append(f", {len(troubled)} need a look", self._style("warn"))
        head.append(f" · Docker {s.engine}", self._style("dim"))
        said = [head]
        if troubled:
            named = [f"{line.name} {', '.join(line.trouble)}" for line in troubled]
            more = len(named) - TROUBLES_SHOWN
            text = "; ".join(named[:TROUBLES_SHOWN]) + (f"; and {more} more" if more > 0 else "")
            said.append(self._line(text, "warn", wrap=True))
        if s.stats_note:
            said.append(self._line(s.stats_note, "warn", wrap=True))
        return said

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"containers--{name}")


class ContainersPane(Vertical):
    """The pane: status lines and the table; `show` takes a reading. The border turns to
    `-error` on a failed reading, `-stale` when data is old, `-absent` with no Docker."""

    DEFAULT_CSS = """
    ContainersPane { height: auto; border: round $primary-muted; border-title-color: $text; }
    ContainersPane:focus-within { border: round $accent; }
    ContainersPane.-stale { border: round $warning; }
    ContainersPane.-error { border: round $error; }
    ContainersPane.-absent { border: round $panel; color: $text-muted; }
    ContainersPane > ContainerTable { height: auto; }
    ContainersPane.-absent > ContainerTable { display: none; }
    """

    def __init__(
        self, label: str = "", max_age: float = 5.0, memory: Limit | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.status = ContainerStatus(label, max_age)
        self.table = ContainerTable(memory)

    def compose(self) -> ComposeResult:
        yield self.status
        yield self.table

    def on_mount(self) -> None:
        self.set_interval(1.0, self._check_age)

    def focus(self, scroll_visible: bool = True) -> Self:
        """Jumping to the pane puts the cursor in its table, and leaves the pane's top (its
        title and status lines) in view rather than scrolling to the table's end."""
        self.table.focus(scroll_visible=False)
        if scroll_visible:
            self.scroll_visible(top=True, animate=False)
        return self

    @property
    def latest(self) -> ContainerSnapshot | None:
        return self.status.latest

    @property
    def good(self) -> ContainerSnapshot | None:
        return self.status.good

    @property
    def stale(self) -> bool:
        return self.status.stale

    @property
    def selected(self) -> ContainerLine | None:
        return None if self.status.absent else self.table.selected

    def text(self) -> str:
        """What the status lines say, as plain text (tests, screenshots)."""
        return "\n".join(line.plain for line in self.status.lines())

    def show(self, snapshot: ContainerSnapshot) -> None:
        status = self.status
        status.latest = snapshot
        if snapshot.error is None:
            status.good = snapshot
            self.table.show(snapshot.groups)
            subtitle = f"Docker {snapshot.engine}"
            if self.border_subtitle != subtitle:
                self.border_subtitle = subtitle
        self._set_state()
        status.repaint()

    def _set_state(self) -> None:
        status = self.status
        self.set_class(status.absent, "-absent")
        self.set_class(status.failed, "-error")
        self.set_class(status.stale and not status.failed, "-stale")

    def _check_age(self) -> None:
        was = self.has_class("-stale") or self.has_class("-error")
        self._set_state()
        if was or self.status.stale:
            self.status.repaint()  # the age shown goes on growing
