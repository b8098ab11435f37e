"""Big tiles: one figure in large digits with a label and a line under it, readable from
across a room (the war-room screen's fleet and alert counts)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Static

TILE_STATES = ("-good", "-warn", "-bad", "-muted")


class Tile(Vertical):
    """A label, a figure in `Digits` and a caption; `show` sets them and the tile's state
    (good, warn, bad, muted), which colours the border and the figure."""

    DEFAULT_CSS = """
    Tile {
        width: 1fr;
        height: auto;
        border: heavy $primary-muted;
        border-title-align: center;
        border-title-style: bold;
        border-title-color: $text;
        padding: 0 1;
        align-horizontal: center;
    }
    Tile > Digits { width: 100%; text-align: center; text-style: bold; }
    Tile > .tile--caption { width: 100%; height: 1; text-align: center; color: $text-muted;
                            text-wrap: nowrap; text-overflow: ellipsis; }
    Tile.-good { border: heavy $success; }
    Tile.-good > Digits { color: $success; }
    Tile.-warn { border: heavy $warning; }
    Tile.-warn > Digits { color: $warning; }
    Tile.-bad { border: heavy $error; background: $error 15%; }
    Tile.-bad > Digits { color: $error; }
    Tile.-muted > Digits { color: $text-muted; }
    """

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = label

    def compose(self) -> ComposeResult:
        yield Digits("-")
        yield Static(classes="tile--caption")

    def show(self, figure: int | str, caption: str = "", state: str = "-muted") -> None:
        """The figure, the line under it (plain text, never markup) and the state class."""
        self.query_one(Digits).update(str(figure))
        self.query_one(".tile--caption", Static).update(Text(caption))
        for name in TILE_STATES:
            self.set_class(name == state, name)
