"""Fewer bytes to the terminal: repaint only the lines of a widget that changed, and draw
scrollbars with fewer segments.

Textual repaints a widget's whole region, borders and blank lines included, whenever the
widget refreshes, and writes every cell of that region to the terminal: it keeps no copy of
what the terminal shows to diff against. A pane whose one figure moved each second thus
rewrote all its lines, which over a slow SSH link is most of what an idle console sends.
These helpers name the lines that changed, so that only those reach the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.segment import Segment, Segments
from rich.text import Text
from textual.geometry import Region
from textual.scrollbar import ScrollBarRender
from textual.widget import Widget

Lines = tuple[tuple[str, str, tuple[object, ...]], ...]
"""What a person sees of each line: its text, base style and styled spans."""

_BACK, _BAR = Color.parse("#555555"), Color.parse("bright_magenta")  # Textual's defaults


def text_lines(text: Text | Sequence[Text]) -> Lines:
    """Rendered text (one Text of several lines, or one Text per line) as comparable lines."""
    lines = text.split("\n", allow_blank=True) if isinstance(text, Text) else text
    return tuple((line.plain, str(line.style), tuple(line.spans)) for line in lines)


def refresh_changed(widget: Widget, before: Lines | None, after: Lines) -> None:
    """Refresh the content lines of `widget` that differ between two renderings (all of
    them when there was none before)."""
    if before is None:
        widget.refresh()
        return
    width = widget.size.width
    changed = [
        y
        for y in range(max(len(before), len(after)))
        if y >= len(before) or y >= len(after) or before[y] != after[y]
    ]
    if changed:
        widget.refresh(*(Region(0, y, width, 1) for y in changed))


def set_border_subtitle(widget: Widget, subtitle: str) -> None:
    """Change a widget's border subtitle, repainting its bottom border line only.

    Setting `border_subtitle` repaints the whole widget (a process table's hundred rows
    for "top 100 of 117" becoming "of 118")."""
    if widget.border_subtitle == subtitle:
        return
    if not widget.is_mounted or not widget.outer_size:
        widget.border_subtitle = subtitle
        return
    # What Textual's border_subtitle setter stores, without its whole-widget refresh; the
    # styles cache reads `_border_subtitle` when it draws the bottom border line.
    widget._border_subtitle = widget.render_str(subtitle).expand_tabs(4).split()[0]
    offset = widget.content_offset  # refresh regions are in content coordinates
    bottom = widget.outer_size.height - 1
    widget.refresh(Region(-offset.x, bottom - offset.y, widget.outer_size.width, 1))


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
