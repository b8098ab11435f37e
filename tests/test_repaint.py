"""Repainting only what changed (widgets/repaint.py, widgets/row_table.py): which cells are
named, what Textual then writes, and that a real terminal ends up showing the right screen."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from repaint_app import rows
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from test_tmux_console import Tmux
from textual._compositor import ChopsUpdate
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from fleetdeck.widgets.repaint import (
    SPAN_GAP,
    changed_spans,
    crop_partial_updates,
    refresh_changed,
    text_lines,
)

RED, BLUE = Style(color="red"), Style(color="blue")


def test_changed_spans_name_the_cells_that_differ_in_text_or_colour() -> None:
    before = Strip([Segment("1234  root  0.0  ", RED), Segment("python3 -m http.server", BLUE)])
    same = Strip([Segment("1234  root  0.0  python3", RED), Segment(" -m http.server", BLUE)])
    assert changed_spans(before, same) == [(17, 24)]  # "python3" turned red
    moved = Strip([Segment("1301  root  0.0  ", RED), Segment("sshd: root@pts/0      ", BLUE)])
    # The PID's last three digits and the command; the thirteen cells between them cost
    # less rewritten than a second cursor move and set of colour codes.
    assert changed_spans(before, moved) == [(1, 39)]
    assert changed_spans(before, before) == []


def test_changed_spans_join_close_cells_and_give_up_on_wide_characters() -> None:
    line = "a" * 60
    far = line[:5] + "b" + line[6 : 6 + SPAN_GAP] + "b" + line[7 + SPAN_GAP :]
    near = line[:5] + "bb" + line[7:]
    assert changed_spans(Strip([Segment(line)]), Strip([Segment(far)])) == [
        (5, 6),
        (6 + SPAN_GAP, 7 + SPAN_GAP),
    ]
    assert changed_spans(Strip([Segment(line)]), Strip([Segment(near)])) == [(5, 7)]
    wide = "日本" + "a" * 56
    assert changed_spans(Strip([Segment(line)]), Strip([Segment(wide)])) is None
    assert changed_spans(Strip([Segment(line)]), Strip([Segment(line[:-1])])) is None


def test_a_partial_update_writes_the_refreshed_span_only() -> None:
    console = Console(color_system="truecolor", force_terminal=True, width=40)
    row = Strip([Segment("PID 1234 user root cpu 0.5", RED)])  # one widget's chop at x=2
    update = ChopsUpdate([{0: None, 2: row}], [(0, 11, 15)], [[2, 40]])
    # Textual as installed writes from the widget's left edge ("PID 1234 ") to the span's end.
    # False: Textual's method is not the one the stand-in was written for (a new Textual):
    # compare the two, then update WRITTEN_FOR in widgets/repaint.py.
    assert crop_partial_updates(), "Textual's ChopsUpdate.render_segments has changed"
    written = update.render_segments(console)
    assert written.startswith(Control.move_to(11, 0).segment.text)
    plain = Text.from_ansi(written[len(Control.move_to(11, 0).segment.text) :]).plain
    assert plain == "user"


class _Lines(Widget):
    """A text widget that records the regions it is asked to repaint."""

    def __init__(self) -> None:
        super().__init__()
        self.text = Text("cpu  3.1 %  ▮▮▮\nmem 41.0 %  ▮▮▮▮▮▮▮▮")
        self.asked: list[Region] = []

    def render(self) -> Text:
        return self.text

    def refresh(self, *regions: Region, **kwargs: bool) -> _Lines:  # type: ignore[override]
        self.asked.extend(regions)
        return super().refresh(*regions, **kwargs)


async def test_text_lines_repaint_their_changed_characters_only() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield _Lines()

    async with Host().run_test(size=(40, 6)) as pilot:
        widget = pilot.app.query_one(_Lines)
        before = text_lines(widget.text)
        widget.text = Text("cpu  3.4 %  ▮▮▮▮\nmem 41.0 %  ▮▮▮▮▮▮▮▮")
        widget.asked.clear()
        refresh_changed(widget, before, text_lines(widget.text))
        assert widget.asked == [Region(7, 0, 9, 1)]  # "4 %  ▮▮▮▮": one span, joined
        widget.asked.clear()
        refresh_changed(widget, before, text_lines(Text("cpu  3.1 %  ▮▮▮\nmem  0.0 %")))
        assert widget.asked == [Region(4, 1, 16, 1)]  # to the end of the longer line


@pytest.fixture
def table_app(tmp_path: Path) -> Iterator[Tmux]:
    tmux = Tmux(f"fleetdeck-repaint-{os.getpid()}")
    app = Path(__file__).with_name("repaint_app.py")
    tmux("new-session", "-d", "-s", "console", "-x", "60", "-y", "24", f"{sys.executable} {app}")
    try:
        yield tmux
    finally:
        tmux("kill-server")


def _table(screen: str) -> list[list[str]]:
    """The rows a capture shows, as the words of each line under the header."""
    lines = [line.split()[:3] for line in screen.splitlines()]  # not the scrollbar
    header = next(i for i, words in enumerate(lines) if words[:1] == ["PID"])
    return [words for words in lines[header + 1 :] if words]


def test_a_table_drawn_cell_by_cell_shows_the_right_rows_in_a_real_terminal(
    table_app: Tmux,
) -> None:
    """Rows shift and figures change; each update writes only the cells that differ; the
    terminal must end up showing what a full redraw shows, colours included."""
    for step in range(8):
        expected = [list(row) for row in rows(step)][:23]
        table_app.wait_for(lambda s, e=expected: "PID" in s and _table(s) == e)  # type: ignore[misc]
        table_app("send-keys", "-t", "console", "s")
    expected = [list(row) for row in rows(8)][:23]
    table_app.wait_for(lambda s: "PID" in s and _table(s) == expected)
    partial = table_app("capture-pane", "-e", "-p", "-t", "console")
    # A resize there and back makes Textual draw the whole screen afresh.
    table_app("resize-window", "-t", "console", "-x", "61")
    table_app.wait_for(lambda s: "PID" in s and len(s.splitlines()[0]) <= 61)
    time.sleep(0.5)
    table_app("resize-window", "-t", "console", "-x", "60")
    time.sleep(0.5)
    full = table_app.wait_for(lambda s: "PID" in s and _table(s) == expected)
    assert _table(full) == expected
    assert table_app("capture-pane", "-e", "-p", "-t", "console") == partial


def test_another_textuals_method_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Textual whose partial update is not the one the stand-in copies keeps its own."""

    def newer(self: ChopsUpdate, console: Console) -> str:
        return "a method of another Textual"

    monkeypatch.setattr(ChopsUpdate, "render_segments", newer)
    assert not crop_partial_updates()
    assert ChopsUpdate.render_segments is newer
