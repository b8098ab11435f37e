"""A read-only table for live data that redraws only the rows that changed.

Textual's DataTable re-renders every visible cell whenever any cell changes, which is the
bulk of an idle console's CPU when figures move every second. Here each row is rendered once
into a `Strip` and kept until its text changes; the Line API crops the kept strips to the
viewport, and a changed row repaints only its own line (as Toolong does for log lines), and
of that line only the cells that differ from what was last drawn there: when a process
moves up the CPU order, the rows under it shift, and each line keeps most of its cells
(the same user, "0.0", the spaces), which are not sent to the terminal again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from textual import events, on
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from fleetdeck.widgets.cells import Cell
from fleetdeck.widgets.repaint import CompactScrollBarRender, changed_spans

GAP = 2  # spaces between columns


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its key, header, alignment, and a width it never grows past (longer text
    ends in an ellipsis), so one long mount point cannot push the rest off screen."""

    key: str
    label: str
    justify: str = "left"
    max_width: int | None = None


class RowTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header, with a row cursor; fed whole with `set_rows`."""

    COLUMNS: ClassVar[Sequence[Column]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rowtable--header",
        "rowtable--cursor",
        "rowtable--odd",
    }
    DEFAULT_CSS = """
    RowTable { height: auto; max-height: 100%; overflow: auto auto; padding: 0 1; }
    RowTable > .rowtable--header { text-style: bold; color: $text-accent; }
    RowTable > .rowtable--odd { background: $surface-lighten-1 20%; }
    RowTable > .rowtable--cursor { background: $block-cursor-blurred-background; }
    RowTable:focus > .rowtable--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    # The watcher repaints the two lines the cursor left and reached: a whole-widget repaint
    # (a reactive's default) rewrote every row each second the cursor's process re-sorted.
    cursor_row: reactive[int] = reactive(0, repaint=False)

    class Selected(Message):
        """Enter on a row: which table and which row key."""

        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class Highlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, table: RowTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []
        self._strips: dict[str, Strip] = {}
        self._widths = [len(c.label) for c in self.COLUMNS]
        self._header_strip: Strip | None = None
        self._drawn: dict[int, Strip] = {}
        """The last strip `render_line` gave for each line of the view: what the screen
        shows there, to send a changed line's changed cells only."""

    # -- data -----------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def row_keys(self) -> list[str]:
        """Row keys in the order shown."""
        return list(self._order)

    def row(self, index: int) -> tuple[Cell, ...]:
        return self._rows[self._order[index]]

    def column_index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.COLUMNS) if c.key == key)

    def set_rows(
        self, rows: Mapping[str, Sequence[Cell]], order: Sequence[str] | None = None
    ) -> None:
        """Show exactly these rows, in `order` (default: as given). Only rows whose text,
        style or place changed are repainted; a column that widens re-renders everything."""
        order = list(order if order is not None else rows)
        changed = {
            k
            for k, cells in rows.items()
            if self._rows.get(k) is not cells and _plain(self._rows.get(k)) != _plain(cells)
        }
        self._rows = {
            k: cells if isinstance(cells, tuple) else tuple(cells) for k, cells in rows.items()
        }
        for gone in set(self._strips) - set(rows):
            del self._strips[gone]
        # Columns only ever widen: a rate going from "0 B/s" to "12.5 KiB/s" and back must not
        # make the columns jump about (nor cost a layout of the whole screen every second).
        # So only the rows that changed can widen them (10,000 alerts: the rest were counted).
        widths = list(self._widths)
        for cells in (self._rows[k] for k in changed):
            for i, cell in enumerate(cells[: len(widths)]):
                widths[i] = max(widths[i], cell.cell_len)
        for i, column in enumerate(self.COLUMNS):
            if column.max_width is not None:
                widths[i] = min(widths[i], max(column.max_width, len(column.label)))
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
            self._header_strip = None
            changed = set(self._rows)
            self.refresh()
        for key in changed:
            self._strips.pop(key, None)
        old_order, self._order = self._order, order
        size = Size(sum(widths) + GAP * max(len(widths) - 1, 0), len(order) + 1)
        if size != self.virtual_size:
            # The reactive would repaint the whole table as well as lay it out: with fewer
            # processes than its limit, the process table rewrote every row each time one
            # started or exited. The lines that changed are repainted below, and a layout
            # that changes the table's size or scroll position repaints it anyway.
            self.set_reactive(Widget.virtual_size, size)
            self.refresh(layout=True, repaint=False)
        # The cursor stays on its row (a process, a mount), not on a line number, so what
        # Enter acts on does not change under the operator's eyes when rows re-sort.
        held = old_order[self.cursor_row] if self.cursor_row < len(old_order) else None
        if held is not None and held in rows:
            self.cursor_row = order.index(held)
        elif self.cursor_row >= len(order):
            self.cursor_row = max(len(order) - 1, 0)
        # Only lines in view are repainted: rows scrolled off are drawn from the kept rows
        # when they come into view (10,000 alerts were 10,000 refreshes a second).
        top = self.scroll_offset.y
        for index in range(top, min(top + self.size.height, len(order))):
            key = order[index]
            if key in changed or index >= len(old_order) or old_order[index] != key:
                self._repaint_cells(index + 1 - top)
        if len(old_order) > len(order):
            self.refresh_lines(len(order) + 1, len(old_order) - len(order))

    # -- drawing --------------------------------------------------------------------------

    @on(events.Mount)
    def _compact_scrollbar(self) -> None:
        # Textual's documented way to draw one widget's scrollbar with another renderer.
        self.horizontal_scrollbar.renderer = CompactScrollBarRender  # type: ignore[misc]

    def _repaint_cells(self, y: int) -> None:
        """Repaint the spans of view line `y` that differ from what it shows now (the whole
        line if that is not known)."""
        before = self._drawn.get(y)
        spans = None if before is None else changed_spans(before, self.render_line(y))
        if spans is None:
            self.refresh_line(self.scroll_offset.y + y)
        elif spans:
            self.refresh(*(Region(x1, y, x2 - x1, 1) for x1, x2 in spans))

    def render_line(self, y: int) -> Strip:
        strip = self._render_view_line(y)
        self._drawn[y] = strip
        return strip

    def _render_view_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header().crop_extend(scroll_x, scroll_x + width, None)
        index = scroll_y + y - 1
        if index >= len(self._order):
            return Strip.blank(width, self.rich_style)
        key = self._order[index]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_row(self._rows[key])
        style = self.rich_style
        if index == self.cursor_row:
            style += self.get_component_rich_style("rowtable--cursor")
        elif index % 2:
            style += self.get_component_rich_style("rowtable--odd")
        return strip.crop_extend(scroll_x, scroll_x + width, None).apply_style(style)

    def _header(self) -> Strip:
        if self._header_strip is None:
            cells = [Cell(c.label, justify=c.justify) for c in self.COLUMNS]
            style = self.rich_style + self.get_component_rich_style("rowtable--header")
            self._header_strip = self._render_row(cells).apply_style(style)
        return self._header_strip

    def _render_row(self, cells: Sequence[Cell]) -> Strip:
        segments: list[Segment] = []
        last = len(self._widths) - 1
        for i, (cell, width) in enumerate(zip(cells, self._widths, strict=False)):
            text = cell.copy()
            if text.cell_len > width:
                text.truncate(width, overflow="ellipsis")
            elif cell.justify == "right":
                text.pad_left(width - text.cell_len)
            else:
                text.pad_right(width - text.cell_len)
            segments.extend(text.render(self.app.console))
            if i < last:
                segments.append(Segment(" " * GAP))
        return Strip(segments).simplify()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # colours come from TCSS: a theme change re-renders
        self._header_strip = None

    # -- cursor ---------------------------------------------------------------------------

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._keep_cursor_visible()
        key = self._order[new] if new < len(self._order) else None
        self.post_message(self.Highlighted(self, key))

    def _keep_cursor_visible(self) -> None:
        top = self.scroll_offset.y
        rows_shown = max(self.scrollable_content_region.height - 1, 1)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + rows_shown:
            self.scroll_to(y=self.cursor_row - rows_shown + 1, animate=False)

    def move_cursor(self, row: int) -> None:
        self.cursor_row = min(max(row, 0), max(len(self._order) - 1, 0))

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(self.size.height - 2, 1))

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self._order) - 1)

    def action_select(self) -> None:
        if self._order:
            self.post_message(self.Selected(self, self._order[self.cursor_row]))

    def on_focus(self, event: events.Focus) -> None:
        self.refresh_line(self.cursor_row + 1)

    def on_blur(self, event: events.Blur) -> None:
        self.refresh_line(self.cursor_row + 1)


def _plain(cells: Sequence[Cell] | None) -> tuple[object, ...] | None:
    """What a person sees of a row: each cell's text and styles."""
    if cells is None:
        return None
    return tuple((c.plain, str(c.style), tuple(c.spans)) for c in cells)
