"""Table cells that render as plain text but sort by their value.

Text from hosts is always wrapped in `rich.text.Text`, never parsed as markup, so a process
called `[red]x` shows as exactly that.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from fleetdeck.checks.model import printable


class Cell(Text):
    """A table cell: text to show (control characters made harmless) and a sort value."""

    def __init__(self, text: str, sort_value: Any = None, *, justify: str = "left") -> None:
        # A newline in a command line would break the row, an escape sequence in a name
        # drive the terminal: both show as escapes (\\n, \\x1b), on one line.
        text = printable(text, one_line=True)
        super().__init__(text, justify=justify, end="", no_wrap=True)  # type: ignore[arg-type]
        self.sort_value = text if sort_value is None else sort_value

    def __lt__(self, other: object) -> bool:
        return bool(self.sort_value < sort_key(other))


def num(text: str, value: float) -> Cell:
    """A right-aligned figure that sorts by `value`."""
    return Cell(text, value, justify="right")


def sort_key(cell: Any) -> Any:
    return getattr(cell, "sort_value", cell)
