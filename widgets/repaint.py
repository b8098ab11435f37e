"""Repaint only the lines of a widget that changed.

Textual repaints a widget's whole region, borders and blank lines included, whenever the
widget refreshes, and writes every cell of that region to the terminal: it keeps no copy of
what the terminal shows to diff against. A pane whose one figure moved each second thus
rewrote all its lines, which over a slow SSH link is most of what an idle console sends.
These helpers name the lines that changed, so that only those reach the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

Lines = tuple[tuple[str, str, tuple[object, ...]], ...]
"""What a person sees of each line: its text, base style and styled spans."""


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
