"""Fewer bytes to the terminal: repaint only the lines of a widget that changed, and draw
scrollbars with fewer segments.

Textual repaints a widget's whole region, borders and blank lines included, whenever the
widget refreshes, and writes every cell of that region to the terminal: it keeps no copy of
what the terminal shows to diff against. A pane whose one figure moved each second thus
rewrote all its lines, which over a slow SSH link is most of what an idle console sends.
These helpers name the lines that changed, so that only those reach the terminal.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.color import Color
from rich.console import Console
from rich.control import Control
from rich.segment import Segment, Segments
from rich.text import Span, Text
from textual._compositor import ChopsUpdate
from textual.geometry import Region
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

Line = tuple[str, str, tuple[Span, ...]]
"""What a person sees of a line: its text, base style and styled spans."""
Lines = tuple[Line, ...]

_BACK, _BAR = Color.parse("#555555"), Color.parse("bright_magenta")  # Textual's defaults


def text_lines(text: Text | Sequence[Text]) -> Lines:
    """Rendered text (one Text of several lines, or one Text per line) as comparable lines."""
    lines = text.split("\n", allow_blank=True) if isinstance(text, Text) else text
    return tuple((line.plain, str(line.style), tuple(line.spans)) for line in lines)


def refresh_changed(widget: Widget, before: Lines | None, after: Lines) -> None:
    """Refresh the cells of `widget`'s content lines that differ between two renderings
    (all of them when there was none before): a CPU meter whose figure moved from 3.1 %
    to 3.4 % repaints the bar's tip and the figure, not the line.

    Only left-aligned text maps a character to the cell it is drawn in; other lines, and
    lines with a character wider than one cell, are refreshed whole."""
    if before is None:
        widget.refresh()
        return
    width = widget.size.width
    by_cell = widget.styles.text_align in ("left", "start")
    regions: list[Region] = []
    for y in range(max(len(before), len(after))):
        old = before[y] if y < len(before) else None
        new = after[y] if y < len(after) else None
        if old == new:
            continue
        spans = _text_spans(old, new) if by_cell and old and new else None
        if spans is None:
            regions.append(Region(0, y, width, 1))
            continue
        if old and new and max(len(old[0]), len(new[0])) >= width:
            spans.append((width - 1, width))  # a line cut short ends in an ellipsis there
        regions.extend(Region(x1, y, x2 - x1, 1) for x1, x2 in spans if x1 < width)
    if regions:
        widget.refresh(*regions)


class PaintedText:
    """What a widget whose `render` gives one Text last drew, so that a change of its
    figures repaints only the cells that changed: its figures are declared with
    `repaint=False` and their watchers call `repaint`, since a whole refresh rewrites
    every cell of the widget on the terminal."""

    def __init__(self) -> None:
        self._painted: tuple[int, Lines] | None = None

    def repaint(self, widget: Widget) -> None:
        rendered = widget.render() if widget.is_mounted and widget.size else None
        if not isinstance(rendered, Text):
            self._painted = None  # not drawn yet: the first paint draws it whole
            widget.refresh()
            return
        width = widget.size.width
        after = text_lines(rendered)
        before = self._painted[1] if self._painted and self._painted[0] == width else None
        refresh_changed(widget, before, after)
        self._painted = width, after


def _text_spans(before: Line, after: Line) -> list[tuple[int, int]] | None:
    """The character spans where two text lines differ in a character or its style; None
    if a character is not one cell wide."""
    old, new = _char_styles(*before), _char_styles(*after)
    if old is None or new is None:
        return None
    (old_text, old_styles), (new_text, new_styles) = old, new
    end = max(len(old_text), len(new_text))
    old_text, new_text = old_text.ljust(end), new_text.ljust(end)
    old_styles += [None] * (end - len(old_styles))
    new_styles += [None] * (end - len(new_styles))
    return _join(
        x for x in range(end) if old_text[x] != new_text[x] or old_styles[x] != new_styles[x]
    )


def _char_styles(plain: str, base: str, spans: tuple[Span, ...]) -> tuple[str, list[object]] | None:
    """A text line's characters and, for each, the styles that apply to it."""
    if cell_len(plain) != len(plain):
        return None
    styles: list[list[object]] = [[base] for _ in plain]
    for span in spans:
        for x in range(max(span.start, 0), min(span.end, len(plain))):
            styles[x].append(span.style)
    return plain, [tuple(style) for style in styles]


SPAN_GAP = 20
"""Unchanged cells between two changed ones below which both go in one span: a span
costs a cursor move, colour codes and a reset (about 35 bytes), an unchanged cell of the
same colours one byte."""


def changed_spans(before: Strip, after: Strip) -> list[tuple[int, int]] | None:
    """The column spans `[start, end)` where two renderings of a line differ in a character
    or its style, or None when they cannot be compared cell by cell (a wide character, or
    lines of different widths: repaint the line whole).

    Spans closer than `SPAN_GAP` cells are joined: each span costs a cursor move and a
    fresh set of colour codes, more than a few unchanged cells rewritten."""
    old, new = _cells(before), _cells(after)
    if old is None or new is None or len(old[0]) != len(new[0]):
        return None
    (old_text, old_styles), (new_text, new_styles) = old, new
    return _join(
        x
        for x, (a, b) in enumerate(zip(old_text, new_text, strict=True))
        if a != b or (old_styles[x] is not new_styles[x] and old_styles[x] != new_styles[x])
    )


def _join(changed: Iterable[int]) -> list[tuple[int, int]]:
    """Changed cell positions (ascending) as spans `[start, end)`, those less than
    `SPAN_GAP` apart joined."""
    spans: list[tuple[int, int]] = []
    for x in changed:
        if spans and x - spans[-1][1] < SPAN_GAP:
            spans[-1] = (spans[-1][0], x + 1)
        else:
            spans.append((x, x + 1))
    return spans


def _cells(strip: Strip) -> tuple[str, list[object]] | None:
    """A line's characters and the style of each cell; None if a character is not one
    cell wide."""
    texts: list[str] = []
    styles: list[object] = []
    for text, style, _ in strip:
        if cell_len(text) != len(text):
            return None
        texts.append(text)
        styles.extend([style] * len(text))
    return "".join(texts), styles


WRITTEN_FOR = "4c1cdb567e0b8354bd70cb129da78a42314c39eb8aacd5bf21951cbd5aaba0ef"
"""SHA-256 of the source of Textual 8.2.8's `ChopsUpdate.render_segments`, the method
`_render_segments` stands in for."""


def crop_partial_updates() -> bool:
    """Make Textual write only the columns a widget asked to repaint, not everything on its
    left too; True when it does.

    `Widget.refresh(region)` marks a span of a line dirty, and Textual's partial update
    crops what it writes at the span's right end but starts at the widget's left edge
    (`ChopsUpdate.render_segments`; textual issue #5625): a row table asking for the three
    cells of a CPU figure got the whole row up to them, and two spans on one line their
    common prefix twice. This replaces that method with one that crops both ends, which
    is what curses does and what lets `RowTable` send a changed row's changed cells only.
    Called once, by the app at start; what reaches the screen is the same either way.

    It is a private method of Textual's: replaced only when its source is the one this
    was written against (WRITTEN_FOR). Another Textual keeps its own, which draws the same
    screen with more bytes, rather than a stand-in that may no longer fit it."""
    original = ChopsUpdate.render_segments
    if original is _render_segments:
        return True
    try:
        source = inspect.getsource(original)
    except (OSError, TypeError):  # no source shipped: nothing to compare with
        return False
    if hashlib.sha256(source.encode()).hexdigest() != WRITTEN_FOR:
        return False
    ChopsUpdate.render_segments = _render_segments  # type: ignore[method-assign]
    return True


def _render_segments(self: ChopsUpdate, console: Console) -> str:
    """Textual 8.2's `ChopsUpdate.render_segments`, with each span cropped on the left and
    without the newline it wrote after each span (every span starts with a cursor move, and
    the terminal turns that newline into two bytes)."""
    sequences: list[str] = []
    append = sequences.append
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(self.chop_ends[y], self.chops[y].items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            start = max(x, x1)
            if start != x or end > x2:
                strip = strip.crop(start - x, min(end, x2) - x)
            append(Control.move_to(start, y).segment.text)
            append(strip.render(console))
    return "".join(sequences)


def set_border_subtitle(widget: Widget, subtitle: str) -> None:
    """Change a widget's border subtitle, repainting the part of its bottom border line
    that holds it.

    Setting `border_subtitle` repaints the whole widget (a process table's hundred rows
    for "top 100 of 117" becoming "of 118"); the whole bottom line was still 120 to 200
    cells each second on a busy host, for one digit."""
    before = widget.border_subtitle
    if before == subtitle:
        return
    if not widget.is_mounted or not widget.outer_size:
        widget.border_subtitle = subtitle
        return
    # What Textual's border_subtitle setter stores, without its whole-widget refresh; the
    # styles cache reads `_border_subtitle` when it draws the bottom border line.
    widget._border_subtitle = widget.render_str(subtitle).expand_tabs(4).split()[0]
    offset = widget.content_offset  # refresh regions are in content coordinates
    width, bottom = widget.outer_size.width, widget.outer_size.height - 1
    span = width
    if widget.styles.border_subtitle_align == "right":
        # Textual draws a right-aligned label as " label " then one edge cell and the
        # corner: the old and the new label both lie within the last len + 4 cells.
        span = min(width, max(len(str(before or "")), len(subtitle)) + 4)
    widget.refresh(Region(width - span - offset.x, bottom - offset.y, span, 1))


class CompactScrollBarRender(ScrollBarRender):
    """Textual's scrollbar with runs of same-styled cells joined into one segment.

    Textual writes every segment with its full colour codes and a reset, and its scrollbar
    makes one segment per cell: a 70-column horizontal bar was over 500 bytes each time
    it was drawn, and a layout draws every bar on screen. Joined, it draws the same cells
    in a tenth of that."""

    @classmethod
    def render_bar(
        cls,
        size: int = 25,
        virtual_size: float = 50,
        window_size: float = 20,
        position: float = 0,
        thickness: int = 1,
        vertical: bool = True,
        back_color: Color = _BACK,
        bar_color: Color = _BAR,
    ) -> Segments:
        bar = super().render_bar(
            size, virtual_size, window_size, position, thickness, vertical, back_color, bar_color
        )
        if vertical:  # one line per cell: nothing to join
            return bar
        return Segments(Segment.simplify(bar.segments), new_lines=bar.new_lines)
