"""A row table whose rows move on a key, drawn with partial updates cropped to the changed
cells (`crop_partial_updates`), for test_repaint's check through a real terminal."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType

from fleetdeck.widgets.cells import Cell
from fleetdeck.widgets.repaint import crop_partial_updates
from fleetdeck.widgets.row_table import Column, RowTable


def rows(step: int) -> list[tuple[str, str, str]]:
    """What the table shows after `step` presses of s: thirty processes by "CPU", where each
    press lifts one to the top (the rows above its old place shift down one) and changes
    a few figures in place, and the last process comes and goes, as an idle host's process
    table does each second."""
    cpu = {n: f"{(n * 7 + step * (n % 3 == 0)) % 5}.{n % 10}" for n in range(30)}
    for lifted in range(step):
        cpu[(lifted * 11) % 30] = f"{9 + lifted}.0"
    running = [n for n in range(30) if n != 29 or step % 2 == 0]  # 29 exits and starts again
    order = sorted(running, key=lambda n: (-float(cpu[n]), n))
    return [(str(1000 + n), f"proc-{n}" + "x" * (n % 4), cpu[n]) for n in order]


class Figures(RowTable):
    COLUMNS = (
        Column("pid", "PID", "right"),
        Column("name", "Name"),
        Column("cpu", "CPU%", "right"),
    )


class RepaintApp(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("s", "step"), Binding("q", "quit")]

    def __init__(self) -> None:
        super().__init__()
        crop_partial_updates()
        self.step = 0

    def compose(self) -> ComposeResult:
        yield Figures()

    def on_mount(self) -> None:
        self.show()

    def action_step(self) -> None:
        self.step += 1
        self.show()

    def show(self) -> None:
        shown = rows(self.step)
        table = self.query_one(Figures)
        table.set_rows(
            {
                pid: (Cell(pid, justify="right"), Cell(name), Cell(cpu, justify="right"))
                for pid, name, cpu in shown
            }
        )


if __name__ == "__main__":
    RepaintApp().run()
