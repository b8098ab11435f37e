"""Text meters (`Mem[||||||    ] 62%`) for the summary panes."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text


def meter(
    label: str, percent: float, width: int, right: str, bar: Style, label_style: Style
) -> Text:
    """One line: a label, a bar filling what `width` leaves to `percent`, and a figure."""
    bar_width = max(width - len(label) - len(right) - 3, 3)
    filled = round(bar_width * min(max(percent, 0.0), 100.0) / 100.0)
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(label, label_style)
    text.append("[")
    text.append("|" * filled, bar)
    text.append(" " * (bar_width - filled))
    text.append("]")
    text.append(f" {right}")
    return text
