"""The Services pane: a host's systemd units as `checks.services.pane` read them.

It renders the snapshots it is handed and opens nothing. The head line counts what matters
(failed, flapping, important units down); then one line per unit that needs a look, worst
first, then the important units that are fine. A failed reading shows its cause above the
last good reading, marked stale with its age. Lines are cut at the pane's width, never
wrapped (the error excepted, which must be read whole); at 80 columns the description goes.

Focused, the pane has a cursor on one unit (up/down, home/end): `selected` is that unit, for
the screen's keys that act on one (its log on enter, the service wizard); the cursor stays
on the same unit across readings while it is listed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widget import Widget

from fleetdeck.checks.model import Status, printable
from fleetdeck.hosts.units import human_duration

if TYPE_CHECKING:
    from fleetdeck.checks.services.pane import ServicesSnapshot, UnitLine

WIDE = 100
"""From this width on, names get more room and each line ends with the unit's description."""
NAME = (26, 36)
"""The name column below WIDE, and from WIDE on."""
ICONS = {Status.OK: "✔", Status.WARN: "▲", Status.CRIT: "✖", Status.UNKNOWN: "?"}


class ServicesPane(Widget, can_focus=True):
    """The pane's text: the latest snapshot, or the last good one under the latest error."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("home", "move(-1_000_000)", "First", show=False),
        Binding("end", "move(1_000_000)", "Last", show=False),
        Binding("enter", "screen.logs", "Unit's log"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "services--cursor",
        "services--title",
        "services--head",
        "services--dim",
        "services--warn",
        "services--crit",
        "services--error",
        "services--stale",
    }
    DEFAULT_CSS = """
    ServicesPane {
        height: auto; padding: 0 1; border: round $primary-muted; border-title-color: $text;
    }
    ServicesPane:focus { border: round $accent; }
    ServicesPane.-error { border: round $error; }
    ServicesPane > .services--title { text-style: bold; }
    ServicesPane > .services--head { color: $text-accent; text-style: bold; }
    ServicesPane > .services--dim { color: $text-muted; }
    ServicesPane > .services--warn { color: $warning; }
    ServicesPane > .services--crit { color: $error; }
    ServicesPane > .services--error { color: $error; text-style: bold; }
    ServicesPane > .services--stale { color: $warning; text-style: bold reverse; }
    ServicesPane > .services--cursor { text-style: reverse; }
    """

    def __init__(self, max_age: float = 30.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_age = max_age
        self.latest: ServicesSnapshot | None = None
        self.good: ServicesSnapshot | None = None
        self.cursor = 0

    def show(self, snapshot: ServicesSnapshot) -> None:
        """Take a reading: a good one replaces what is shown; a failed one goes above it."""
        self.latest = snapshot
        self.set_class(snapshot.error is not None, "-error")
        if snapshot.error is None:
            before = self.selected
            self.good = snapshot
            names = [line.name for line in snapshot.lines]
            if before is not None and before.name in names:
                self.cursor = names.index(before.name)
            self.cursor = max(0, min(self.cursor, len(names) - 1))
        self.refresh(layout=True)

    @property
    def selected(self) -> UnitLine | None:
        """The unit under the cursor, or None when no unit is listed."""
        lines = self.good.lines if self.good is not None else ()
        return lines[self.cursor] if lines else None

    def action_move(self, by: int) -> None:
        lines = self.good.lines if self.good is not None else ()
        self.cursor = max(0, min(self.cursor + by, len(lines) - 1))
        self.refresh()

    @property
    def stale(self) -> bool:
        if self.good is None:
            return False
        failed = self.latest is not None and self.latest.error is not None
        return failed or time.monotonic() - self.good.at > self.max_age

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def render(self) -> Group:
        return Group(*self.lines(self.content_size.width or 80))

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self.lines(width))

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"services--{name}")

    def _line(self, text: str = "", style: str = "") -> Text:
        return Text(text, self._style(style) if style else "", no_wrap=True, overflow="ellipsis")

    def lines(self, width: int) -> list[Text]:
        """What the pane shows at `width` columns, a Text per line (the error may wrap)."""
        latest, good = self.latest, self.good
        if latest is None:
            return [self._line("reading the units…", "dim")]
        said: list[Text] = []
        if latest.error is not None:
            said.append(Text(printable(latest.error), self._style("error")))
        if good is not None and self.stale:
            when = time.strftime("%H:%M:%S", time.localtime(good.taken))
            age = human_duration(time.monotonic() - good.at)
            said.append(self._line(f"STALE {age}: the last good reading, of {when}", "stale"))
        if good is not None:
            said += self._body(good, width)
        return said

    def _body(self, s: ServicesSnapshot, width: int) -> list[Text]:
        if s.absent:
            return [self._line("no systemd on this host: no units to show", "dim")]
        title = self._line(f"Services · {s.listed} units", "title")
        for count, what, style in (
            (s.failed, "failed", "crit"),
            (s.flapping, "flapping", "warn"),
            (s.important_down, f"of {s.important} important down", "crit"),
        ):
            if what.startswith("of") and not s.important:
                continue
            title.append(f" · {count} {what}", self._style(style) if count else "")
        said = [title]
        if not s.lines:
            return [*said, self._line("no unit failed or flapping", "dim")]
        name = NAME[width >= WIDE]
        said.append(
            self._line(f"  {'unit':<{name}} {'state':<12} {'restarts':>8} {'for':>7}  why", "dim")
        )
        said += [self._unit(line, width) for line in s.lines]
        if self.has_focus and s.lines:
            said[2 + self.cursor].stylize(self._style("cursor"))
        return said

    def _unit(self, line: UnitLine, width: int) -> Text:
        style = {Status.CRIT: "crit", Status.WARN: "warn"}.get(line.status, "")
        room = NAME[width >= WIDE]
        name = line.name if len(line.name) <= room else line.name[: room - 1] + "…"
        state = line.sub if line.sub else line.active
        restarts = "?" if line.restarts is None else str(line.restarts)
        since = "?" if line.since is None else human_duration(line.since)
        why = line.trouble or ("important" if line.important else "")
        text = self._line(f"{ICONS[line.status]} {name:<{room}} ", style)
        text.append(f"{state:<12} {restarts:>8} {since:>7}  {why}")
        if width >= WIDE and line.description:
            text.append(f"  {line.description}", self._style("dim"))
        return text
