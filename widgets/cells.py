"""Table cells that render as plain text but sort by their value, and row syncing.

Text from hosts is always wrapped in `rich.text.Text`, never parsed as markup, so a process
called `[red]x` shows as exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable


class Cell(Text):
    """A table cell: text to show and a value to sort by."""

    def __init__(self, text: str, sort_value: Any = None, *, justify: str = "left") -> None:
        super().__init__(text, justify=justify, end="", no_wrap=True)  # type: ignore[arg-type]
        self.sort_value = text if sort_value is None else sort_value

    def __lt__(self, other: object) -> bool:
        return bool(self.sort_value < sort_key(other))


def num(text: str, value: float) -> Cell:
    """A right-aligned figure that sorts by `value`."""
    return Cell(text, value, justify="right")


def sort_key(cell: Any) -> Any:
    return getattr(cell, "sort_value", cell)


def sync_rows(table: DataTable[Any], rows: Mapping[Any, Sequence[Cell]]) -> bool:
    """Make the table hold exactly `rows` ({row key: cells}) touching only what changed.

    Refilling a DataTable each tick makes it flicker and costs a full re-layout; here rows
    that went away are removed, new ones added, and cells whose text changed updated.
    Returns whether anything changed.
    """
    changed = False
    columns = list(table.columns)
    for key in [k for k in table.rows if k.value not in rows]:
        table.remove_row(key)
        changed = True
    for key, cells in rows.items():
        if key not in table.rows:
            table.add_row(*cells, key=key)
            changed = True
            continue
        current = table.get_row(key)
        for column, old, new in zip(columns, current, cells, strict=False):
            if str(old) != str(new) or sort_key(old) != sort_key(new) or old.style != new.style:
                table.update_cell(key, column, new)
                changed = True
    return changed
