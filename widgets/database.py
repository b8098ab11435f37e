"""The database pane of the Host screen: one PostgreSQL target's connections, running
statements, lock chains, rates and replication, as `checks.database.pane` read them.

It renders the snapshots it is handed and opens nothing. A failed reading shows its cause in
plain words above the last good reading, marked stale with its age; a reading that is late
(a server slow to answer) is marked stale too, so old figures never pass for live ones.
Lines are cut at the pane's width, never wrapped, except the error, which must be read
whole; at 80 columns the client column gives way to the query text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget

from fleetdeck.checks.model import printable
from fleetdeck.hosts.units import human_duration

if TYPE_CHECKING:  # the data layer pulls in psycopg and asyncssh; the console loads it later
    from fleetdeck.checks.database.pane import ChainView, PaneSnapshot, SessionLine

WIDE = 90
"""From this width on, running statements show user@client and their wait event in full;
below it the client's address only, so 80 columns leave the query text about 27."""


def _cut(text: str, width: int) -> str:
    """`text` in exactly `width` columns: padded, or cut with an ellipsis."""
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: float | None) -> str:
    return "?" if value is None else human_duration(value)


class DatabaseLines(Widget):
    """The pane's text: the latest snapshot, or the last good one under the latest error."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "db--title",
        "db--head",
        "db--dim",
        "db--warn",
        "db--error",
        "db--stale",
    }
    DEFAULT_CSS = """
    DatabaseLines { height: auto; }
    DatabaseLines > .db--title { text-style: bold; }
    DatabaseLines > .db--head { color: $text-accent; text-style: bold; }
    DatabaseLines > .db--dim { color: $text-muted; }
    DatabaseLines > .db--warn { color: $warning; }
    DatabaseLines > .db--error { color: $error; text-style: bold; }
    DatabaseLines > .db--stale { color: $warning; text-style: bold reverse; }
    """

    def __init__(self, label: str = "", max_age: float = 4.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.max_age = max_age
        self.latest: PaneSnapshot | None = None
        self.good: PaneSnapshot | None = None

    @property
    def age(self) -> float | None:
        """Seconds since the last good reading."""
        return None if self.good is None else time.monotonic() - self.good.at

    @property
    def stale(self) -> bool:
        age = self.age
        return age is not None and (self.failed or age > self.max_age)

    @property
    def failed(self) -> bool:
        return self.latest is not None and self.latest.error is not None

    def render(self) -> Group:
        return Group(*self.lines(self.content_size.width or 80))

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"db--{name}")

    def lines(self, width: int) -> list[Text]:
        """What the pane shows at `width` columns, a Text per line (the error may wrap)."""
        latest, good = self.latest, self.good
        if latest is None:
            return [self._line(f"connecting to {self.label or 'the database'}…", "dim")]
        said: list[Text] = []
        if latest.error is not None:
            said.append(Text(printable(latest.error), self._style("error")))
        if good is not None and self.stale:
            when = time.strftime("%H:%M:%S", time.localtime(good.taken))
            why = "the last good reading" if self.failed else "no new reading yet"
            said.append(self._line(f"STALE {_seconds(self.age)}: {why}, of {when}", "stale"))
        if good is not None:
            said += self._body(good, width)
        return said

    def _line(self, text: str = "", style: str = "") -> Text:
        return Text(text, self._style(style) if style else "", no_wrap=True, overflow="ellipsis")

    def _body(self, s: PaneSnapshot, width: int) -> list[Text]:
        dim = self._style("dim")
        title = self._line(f"{s.user}@{s.database}", "title")
        title.append(f" · {s.role} · ")
        if s.tps is not None:
            title.append(f"{s.tps:,.1f} tps")
        else:
            title.append(f"tps unknown ({s.rate_note or 'not read'})", dim)
        hit = "unknown" if s.cache_hit is None else f"{s.cache_hit:.1f} %"
        title.append(f" · cache hit {hit}")
        title.append(f" · PostgreSQL {s.version}" if s.version else "", dim)
        connections = self._line(f"{s.connections} of {s.usable} connections")
        by_state = ", ".join(f"{n} {state}" for state, n in s.states) or "none"
        connections.append(f": {by_state}")
        if s.own:
            connections.append(f" (fleetdeck's own {s.own} left out)", dim)
        if not s.seen:
            connections = self._line("connections, statements and locks: not read (below)", "warn")
        said = [title, connections]
        said += [*self._statements(s, width), *self._chains(s)] if s.seen else []
        for index, text in enumerate(s.replication):
            line = self._line("Replication: " if index == 0 else "  ", "head" if not index else "")
            said.append(line.append(text))
        # What is hidden or missing, and what to do about it, must be read whole: it wraps.
        said += [Text(note, self._style("warn")) for note in (s.hidden, *s.notes) if note]
        return said

    def _statements(self, s: PaneSnapshot, width: int) -> list[Text]:
        head = self._line("Running statements: ", "head")
        if not s.active_total:
            return [head.append("none visible" if s.hidden else "none", self._style("dim"))]
        shown = len(s.active)
        more = f" (the {shown} longest shown)" if shown < s.active_total else ""
        said = [head.append(f"{s.active_total}{more}")]
        wait, client = (19, 21) if width >= WIDE else (15, 15)
        columns = f"{'pid':>7} {'time':>7}  {'wait event':<{wait}} {'client':<{client}} query"
        said.append(self._line(columns, "dim"))
        for line in s.active:
            who = line.who if width >= WIDE else line.client or "local"
            said.append(
                self._line(
                    f"{line.pid:>7} {_seconds(line.seconds):>7}  {_cut(line.wait or '-', wait)} "
                    f"{_cut(who, client)} {line.query}"
                )
            )
        return said

    def _chains(self, s: PaneSnapshot) -> list[Text]:
        head = self._line("Lock chains: ", "head")
        if not s.chains:
            return [head.append("no session waits on another's lock", self._style("dim"))]
        said = [head.append(str(len(s.chains)))]
        for chain in s.chains:
            said.append(self._line(_root(chain), "warn"))
            depth = {chain.root_pid: 0}
            for waiter in chain.waiting:
                level = 1 + min((depth[p] for p in waiter.blocked_by if p in depth), default=0)
                depth[waiter.pid] = level
                on = ", ".join(str(p) for p in waiter.blocked_by)
                said.append(
                    self._line(
                        f"{'  ' * level}└ pid {waiter.pid} {_who(waiter)} waits "
                        f"{_seconds(waiter.seconds)} on {on}: {waiter.query or '(hidden)'}"
                    )
                )
            if chain.total > len(chain.waiting):
                said.append(self._line(f"  and {chain.total - len(chain.waiting)} more", "dim"))
        return said


def _who(line: SessionLine) -> str:
    return line.who + (f" ({line.application})" if line.application else "")


def _root(chain: ChainView) -> str:
    root = chain.root
    blocks = f"blocks {chain.total}"
    blocks += f" ({chain.direct} directly)" if chain.direct != chain.total else ""
    blocks += f", longest wait {_seconds(chain.longest_wait)}"
    if root is None:
        return f"{chain.root_text} {blocks}"
    if root.state == "hidden":
        return f"pid {root.pid} {root.who} (another user's session, state hidden) {blocks}"
    xact = f", transaction open {_seconds(root.seconds)}" if root.seconds is not None else ""
    text = f"pid {root.pid} {_who(root)} {root.state}{xact}: {blocks}"
    return text + (f"; last statement: {root.query}" if root.query else "")


class DatabasePane(VerticalScroll):
    """The pane: its lines, scrolled when they outgrow the room; `show` takes a reading.
    The border turns to `-error` on a failed reading and `-stale` when data is old."""

    DEFAULT_CSS = """
    DatabasePane {
        height: auto; padding: 0 1; border: round $primary-muted; border-title-color: $text;
    }
    DatabasePane:focus { border: round $accent; }
    DatabasePane.-stale { border: round $warning; }
    DatabasePane.-error { border: round $error; }
    """

    def __init__(self, label: str = "", max_age: float = 4.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lines = DatabaseLines(label, max_age)

    def compose(self) -> ComposeResult:
        yield self._lines

    def on_mount(self) -> None:
        self.set_interval(1.0, self._check_age)

    @property
    def latest(self) -> PaneSnapshot | None:
        return self._lines.latest

    @property
    def good(self) -> PaneSnapshot | None:
        return self._lines.good

    @property
    def stale(self) -> bool:
        return self._lines.stale

    def lines(self, width: int | None = None) -> list[Text]:
        """The text shown (at the pane's width unless given)."""
        return self._lines.lines(width or self._lines.content_size.width or 80)

    def show(self, snapshot: PaneSnapshot) -> None:
        lines = self._lines
        lines.latest = snapshot
        if snapshot.error is None:
            lines.good = snapshot
        subtitle = snapshot.label
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        self._set_state()
        lines.refresh(layout=True)

    def _set_state(self) -> None:
        self.set_class(self._lines.failed, "-error")
        self.set_class(self._lines.stale and not self._lines.failed, "-stale")

    def _check_age(self) -> None:
        was = self.has_class("-stale") or self.has_class("-error")
        self._set_state()
        if was or self._lines.stale:
            self._lines.refresh(layout=True)  # the age shown goes on growing
