"""The logs view: one log (a container's, a unit's), tailed and followed, filtered, its
errors counted. Where the lines come from is a `LogSource`: `ContainerLog` here, a unit's
journal in `tui/panes.py`.

The engine sends raw bytes: invalid UTF-8, escape sequences, carriage returns, a 64 KiB line
without a newline. Each line is decoded with replacement characters, cut at LINE_CHARS, and
every control character (and bidirectional override) becomes a visible escape such as
\\x1b, so what a container prints can never drive the terminal; lines are Text, never markup.

The view keeps the last KEEP lines (it says how many older ones it dropped), counts the
lines that look like errors over the last WINDOW seconds (by the lines' own timestamps),
and keeps following across restarts: when a container stops, the stream ends, and the
view waits for it to run again and resumes from the last line it has.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import reactive
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Input, Static

from fleetdeck.checks.model import printable
from fleetdeck.hosts.docker.endpoint import DockerError, DockerFailure
from fleetdeck.hosts.units import human_duration

if TYPE_CHECKING:
    from fleetdeck.hosts.docker.link import DockerLink

TAIL = 500
"""Lines read back when the view opens."""
KEEP = 5_000
"""Lines kept; older ones are dropped (and counted)."""
LINE_CHARS = 2_000
"""Characters kept of one line; the rest is said as a count."""
ERRORS = r"error|exception|fatal|panic|traceback"
"""What makes a line an error line (case-insensitive)."""
WINDOW = 300.0
"""Seconds over which error lines are counted."""
FLUSH = 0.1
"""Seconds between repaints while lines pour in: a flood costs one repaint per tick."""
RETRY = 2.0
"""Seconds between looks at a stopped container (or a failed stream) before following again."""
TIME_WIDTH = 9


def safe_text(raw: bytes) -> str:
    """A log line as text that shows what was written and can drive nothing."""
    text = raw.decode("utf-8", errors="replace")
    if len(text) > LINE_CHARS:
        text = f"{text[:LINE_CHARS]}… ({len(text) - LINE_CHARS:,} more characters)"
    return printable(text)  # bidi overrides included


def split_timestamp(raw: bytes) -> tuple[datetime | None, bytes]:
    """The engine's RFC 3339 timestamp (timestamps=True) and the line after it."""
    from fleetdeck.hosts.docker.link import parse_time

    head, space, rest = raw.partition(b" ")
    if space and 20 <= len(head) <= 40 and head[:4].isdigit():
        at = parse_time(head.decode("ascii", errors="replace"))
        if at is not None:
            return at, rest
    return None, raw


def parse_filter(text: str) -> re.Pattern[str] | None:
    """A filter as typed: a substring, or a regex between slashes (`/tim(e|ed) out/`); case
    matters only when it has a capital letter. None: no filter. ValueError: a bad regex."""
    if not text:
        return None
    regex = len(text) >= 2 and text.startswith("/") and text.endswith("/")
    body = text[1:-1] if regex else text
    flags = 0 if any(c.isupper() for c in body) else re.IGNORECASE
    try:
        return re.compile(body if regex else re.escape(body), flags)
    except re.error as error:
        raise ValueError(f"invalid regex: {error}") from None


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line as shown: its engine time, its safe text, whether it is an error line."""

    seq: int
    at: datetime | None
    text: str
    error: bool
    width: int
    """Cells it takes, its time included."""


class ErrorTally:
    """Error lines per second over a sliding window: bounded by the window, not the flood."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.seconds: Counter[int] = Counter()

    def add(self, at: float, now: float) -> None:
        if at >= now - self.window:
            self.seconds[int(at)] += 1

    def count(self, now: float) -> int:
        for second in [s for s in self.seconds if s < now - self.window]:
            del self.seconds[second]
        return sum(self.seconds.values())


class LogBuffer:
    """The last `keep` lines, how many were dropped, and the error tally."""

    def __init__(self, keep: int = KEEP, errors: str = ERRORS, window: float = WINDOW) -> None:
        self.lines: deque[LogLine] = deque(maxlen=keep)
        self.errors = re.compile(errors, re.IGNORECASE)
        self.tally = ErrorTally(window)
        self.dropped = 0
        self.received = 0
        self.last_at: datetime | None = None
        self.skip_until: datetime | None = None
        """After a resume (since = last_at): lines up to it were shown already."""
        self._seq = itertools.count()

    def add(self, raw: bytes, now: float | None = None) -> LogLine | None:
        at, body = split_timestamp(raw)
        if at is not None and self.skip_until is not None and at <= self.skip_until:
            return None
        now = time.time() if now is None else now
        text = safe_text(body)
        error = self.errors.search(text) is not None
        if error:
            self.tally.add(at.timestamp() if at is not None else now, now)
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        line = LogLine(next(self._seq), at, text, error, TIME_WIDTH + cell_len(text))
        self.lines.append(line)
        self.received += 1
        self.last_at = at or self.last_at
        return line

    def clear(self) -> None:
        self.lines.clear()
        self.tally.seconds.clear()
        self.dropped = self.received = 0
        self.last_at = self.skip_until = None


class LogView(ScrollView, can_focus=True):
    """The lines that pass the filter, drawn only where they are on screen (Line API)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"log--time", "log--error", "log--match"}
    DEFAULT_CSS = """
    LogView { height: 1fr; overflow: auto auto; }
    LogView > .log--time { color: $text-muted; }
    LogView > .log--error { color: $error; }
    LogView > .log--match { background: $warning 40%; text-style: bold; }
    """
    follow: reactive[bool] = reactive(True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: deque[LogLine] = deque()
        self.pattern: re.Pattern[str] | None = None
        self._widest = 0
        self._strips: dict[int, Strip] = {}

    def set_lines(self, lines: Iterable[LogLine], pattern: re.Pattern[str] | None) -> None:
        """Show these lines (those the pattern matches), from scratch."""
        self.pattern = pattern
        self.shown.clear()
        self._strips.clear()
        self._widest = 0
        self.add(lines, first=-1)
        self.refresh()

    def add(self, lines: Iterable[LogLine], first: int) -> None:
        """Add new lines that match; drop those older than `first` (the buffer's oldest)."""
        pattern = self.pattern
        for line in lines:
            if pattern is None or pattern.search(line.text):
                self.shown.append(line)
                self._widest = max(self._widest, line.width)
        while self.shown and self.shown[0].seq < first:
            self._strips.pop(self.shown.popleft().seq, None)
        self.virtual_size = Size(self._widest, len(self.shown))
        if self.follow:
            # After the next refresh, and forced: until the layout has seen the new height,
            # the view has no scrollbar and refuses to scroll (seen on a loaded machine: a
            # flood that arrived before the first layout left the view at the top).
            self.scroll_end(animate=False, x_axis=False, force=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self.shown):
            return Strip.blank(width, self.rich_style)
        line = self.shown[index]
        strip = self._strips.get(line.seq)
        if strip is None:
            if len(self._strips) > 4 * max(self.size.height, 50):
                self._strips.clear()
            strip = self._strips[line.seq] = self._draw(line)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _draw(self, line: LogLine) -> Strip:
        stamp = line.at.astimezone().strftime("%H:%M:%S ") if line.at else " " * TIME_WIDTH
        text = Text(stamp, self.get_component_rich_style("log--time"), end="", no_wrap=True)
        body = Text(line.text, end="", no_wrap=True)
        if line.error:
            body.stylize(self.get_component_rich_style("log--error"))
        if self.pattern is not None:
            match = self.get_component_rich_style("log--match")
            for found in self.pattern.finditer(line.text):
                if found.end() > found.start():
                    body.stylize(match, found.start(), found.end())
        text.append_text(body)
        text.expand_tabs()
        return Strip(list(text.render(self.app.console)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    # Scrolling back stops following; End (or f) follows again.
    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_scroll_end(self) -> None:
        self.follow = True
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)


StateReport = Callable[[str, str | None], None]
"""How a source says what its stream is doing ("following", "retrying...") and why not."""


class LogSource(Protocol):
    """Where a Logs screen's lines come from. `name` says whose log it is and `where` where
    it is read (printable text: "web", "(3f2a9c) on web-01"). `follow` reads the last `tail`
    lines and then what comes, adding each raw line (`RFC3339-time message` bytes) to the
    buffer and yielding what the buffer kept, for as long as the screen reads; it says its
    state through `state` and ends when the log does (the container was removed)."""

    @property
    def name(self) -> str: ...

    @property
    def where(self) -> str: ...

    def follow(
        self, buffer: LogBuffer, tail: int, state: StateReport
    ) -> AsyncIterator[LogLine]: ...


class ContainerLog:
    """A container's log through the host's `DockerLink`, followed across restarts."""

    def __init__(self, link: DockerLink, container_id: str, name: str) -> None:
        self.link = link
        self.container_id = container_id
        self.name = printable(name)

    @property
    def where(self) -> str:
        return f"({self.container_id[:12]}) on {self.link.host}"

    async def follow(
        self, buffer: LogBuffer, tail: int, state: StateReport
    ) -> AsyncIterator[LogLine]:
        """Read the log and follow it; after the stream ends (the container stopped) or
        fails, look again every RETRY s and resume from the last line shown."""
        link = self.link
        while True:
            since = buffer.last_at
            buffer.skip_until = since
            try:
                async with link.logs(
                    self.container_id,
                    tail=tail if since is None else None,
                    since=since,
                    follow=True,
                    timestamps=True,
                ) as lines:
                    state("following", None)
                    async for raw in lines:
                        line = buffer.add(raw)
                        if line is not None:
                            yield line
            except DockerError as error:
                if error.failure is DockerFailure.GONE:
                    state("the container was removed: its log ends here", str(error))
                    return
                state(f"retrying every {RETRY:g} s", str(error))
            else:
                state("the log ended: the container stopped; waiting for it to run", None)
            if not await self._until_running(state):
                state("the container was removed: its log ends here", None)
                return

    async def _until_running(self, state: StateReport) -> bool:
        """Wait until the container runs again (True) or is removed (False)."""
        while True:
            await asyncio.sleep(RETRY)
            try:
                container = await self.link.inspect(self.container_id)
            except DockerError as error:
                state(f"retrying every {RETRY:g} s", str(error))
                continue
            if container is None:
                return False
            if str(container.state) in ("running", "restarting", "paused"):
                return True


class LogsScreen(Screen[None]):
    """One log (a `LogSource`): tail, follow, filter with `/`, error lines counted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow/pause"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        source: LogSource,
        *,
        tail: int = TAIL,
        keep: int = KEEP,
        errors: str = ERRORS,
        window: float = WINDOW,
    ) -> None:
        super().__init__()
        self.source = source
        self.tail = tail
        self.buffer = LogBuffer(keep, errors, window)
        self.window = window
        self.stream_state = "opening the log…"
        self.stream_error: str | None = None
        self.filter_error: str | None = None
        self._pending: list[LogLine] = []

    def compose(self) -> ComposeResult:
        yield Static(id="logs-title")
        yield Input(
            placeholder="filter: text, or /regex/  (/ to type, enter to read)", id="logs-filter"
        )
        yield LogView(id="logs-view")
        yield Static(id="logs-error")
        yield Static(id="logs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LogView).focus()
        self.set_interval(FLUSH, self._flush)
        self.set_interval(1.0, self._show_status)
        self._follow()
        self._show_status()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _follow(self) -> None:
        """Read the source into the buffer; the view shows what came at each FLUSH."""
        async for line in self.source.follow(self.buffer, self.tail, self._state):
            self._pending.append(line)

    def _state(self, state: str, error: str | None) -> None:
        self.stream_state, self.stream_error = state, error
        self._show_status()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        oldest = self.buffer.lines[0].seq if self.buffer.lines else 0
        self.view.add((line for line in pending if line.seq >= oldest), oldest)
        self._show_status()

    def _show_status(self) -> None:
        if not self.is_mounted:
            return
        view, buffer = self.view, self.buffer
        title = Text(f"Logs of {self.source.name} ", style="bold", no_wrap=True)
        title.append(f"{self.source.where} · ", style="")
        follow = self.stream_state if view.follow else "paused (End or f follows)"
        title.append(follow)
        self.query_one("#logs-title", Static).update(title)
        problems = [printable(p) for p in (self.stream_error, self.filter_error) if p]
        error = self.query_one("#logs-error", Static)
        error.update(Text("\n".join(problems)))
        error.display = bool(problems)
        status = Text(no_wrap=True, overflow="ellipsis")
        kept = f"{len(buffer.lines):,} lines"
        if buffer.dropped:
            kept += f" ({buffer.dropped:,} older dropped, the last {buffer.lines.maxlen:,} kept)"
        status.append(kept)
        if view.pattern is not None:
            status.append(f" · {len(view.shown):,} matching")
        errors = buffer.tally.count(time.time())
        status.append(f" · {errors:,} error lines in the last {human_duration(self.window)}")
        widget = self.query_one("#logs-status", Static)
        widget.update(status)
        widget.set_class(errors > 0, "-errors")

    # -- keys -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#logs-filter", Input).focus()

    @on(Input.Changed, "#logs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            pattern = parse_filter(event.value)
        except ValueError as error:
            self.filter_error = f"{error} (the last good filter stays)"
            event.input.add_class("-invalid")
        else:
            self.filter_error = None
            event.input.remove_class("-invalid")
            self.view.set_lines(self.buffer.lines, pattern)
        self._show_status()

    @on(Input.Submitted, "#logs-filter")
    def _filter_kept(self) -> None:
        self.view.focus()

    def action_follow(self) -> None:
        self.view.follow = not self.view.follow
        self._show_status()

    def action_reload(self) -> None:
        self.buffer.clear()
        self._pending.clear()
        self.view.set_lines((), self.view.pattern)
        self.view.follow = True
        self._follow()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.view.focus()
        else:
            self.app.pop_screen()
