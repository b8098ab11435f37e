"""The Host screen as an operator uses it: keys only, at 80x24 and larger, on this machine."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.hosts.metrics import ProcessRate
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.sample import ProcessInfo
from fleetdeck.hosts.shell import LocalShell
from fleetdeck.tui.app import FleetdeckApp, Settings, make_app
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets import (
    AlertsTable,
    CpuPane,
    DisksTable,
    FindingsTable,
    HostHeader,
    LoadPane,
    MemoryPane,
    NetworkTable,
    ProcessTable,
)


async def _until(pilot: Pilot[None], condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.05)
        waited += 0.05


def _screen(app: FleetdeckApp) -> HostScreen:
    assert isinstance(app.screen, HostScreen)
    return app.screen


async def test_every_pane_is_there_and_values_change_between_refreshes() -> None:
    app = make_app(Settings(interval=0.3), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = _screen(app)
        await _until(pilot, lambda: screen.polls >= 2)
        for pane in (
            CpuPane,
            MemoryPane,
            LoadPane,
            AlertsTable,
            ProcessTable,
            DisksTable,
            NetworkTable,
            FindingsTable,
            HostHeader,
        ):
            assert screen.query_one(pane).display
        header = screen.query_one(HostHeader)
        assert header.info is not None and header.stale_reason is None
        first_update, first_series = header.updated, len(screen.history.cpu_series())
        assert screen.query_one(DisksTable).row_count >= 1
        assert screen.query_one(NetworkTable).row_count >= 1
        assert screen.query_one(FindingsTable).row_count >= 5
        polls = screen.polls
        await _until(pilot, lambda: screen.polls >= polls + 2)
        assert header.updated is not None and first_update is not None
        assert header.updated > first_update
        assert len(screen.history.cpu_series()) >= first_series + 2
        assert screen.query_one(ProcessTable).row_count > 5


async def test_sort_keys_order_processes_by_cpu_memory_and_pid() -> None:
    app = make_app(Settings(interval=0.3), Config())
    async with app.run_test(size=(100, 30)) as pilot:
        screen = _screen(app)
        table = screen.query_one(ProcessTable)
        await _until(pilot, lambda: table.row_count > 5)

        def column(key: str) -> list[float]:
            index = table.column_index(key)
            return [table.row(r)[index].sort_value for r in range(table.row_count)]

        await pilot.press("m")
        await pilot.pause(0.1)
        assert table.sort_by == "mem"
        assert "by memory" in str(table.border_subtitle)
        assert column("mem") == sorted(column("mem"), reverse=True)
        await pilot.press("p")
        await pilot.pause(0.1)
        assert column("pid") == sorted(column("pid"))
        await pilot.press("c")
        await _until(pilot, lambda: screen.polls >= 3)
        assert column("cpu") == sorted(column("cpu"), reverse=True)
        assert "by CPU" in str(table.border_subtitle)

        # The cursor keys, on rows that hold still: on a live list a sample landing between
        # a key and the check re-sorts the rows, and the cursor follows its process there
        # (by design: seen in CI, "end" then row 97 of 100).
        app.workers.cancel_group(screen, "watch")
        await pilot.pause()
        table.focus()
        table.move_cursor(0)
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        assert table.scroll_offset.y > 0  # the cursor stays in view
        await pilot.press("home")
        assert (table.cursor_row, table.scroll_offset.y) == (0, 0)


async def test_memory_order_holds_when_rss_moves_below_what_the_column_shows() -> None:
    """Seen in CI: a process whose RSS grew by a few KiB still read "9.0M", its row kept
    the older RSS, and the memory column sorted out of place."""

    def process(pid: int, rss: int) -> ProcessRate:
        info = ProcessInfo(pid, "root", f"p{pid}", f"p{pid}", 0.0, rss, 1.0)
        return ProcessRate(info, cpu=0.0, mem=rss / 2**34 * 100)

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield ProcessTable()

    async with One().run_test() as pilot:
        table = pilot.app.query_one(ProcessTable)
        table.sort_by = "mem"
        table.show([process(1, 9_400_320), process(2, 9_420_000)])
        table.show([process(1, 9_449_472), process(2, 9_420_000)])
        await pilot.pause()
        index = table.column_index("mem")
        assert [table.row(r)[index].sort_value for r in range(2)] == [9_449_472, 9_420_000]
        assert [table.row(r)[0].sort_value for r in range(2)] == [1, 2]


async def test_a_process_back_to_idle_keeps_its_place_instead_of_shifting_the_rows() -> None:
    """By CPU, processes that show the same figure keep the order they were shown in: one
    that blipped to 0.5 % and went back to 0.0 stays at the head of the idle ones, where
    going back to its PID's place would move (and rewrite) every row in between."""

    def process(pid: int, cpu: float) -> ProcessRate:
        info = ProcessInfo(pid, "root", f"p{pid}", f"p{pid}", 0.0, 1_000_000, 1.0)
        return ProcessRate(info, cpu=cpu, mem=0.1)

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield ProcessTable()

    async with One().run_test() as pilot:
        table = pilot.app.query_one(ProcessTable)

        def pids() -> list[int]:
            return [int(table.row(r)[0].sort_value) for r in range(table.row_count)]

        def cpus() -> list[float]:
            index = table.column_index("cpu")
            return [float(table.row(r)[index].sort_value) for r in range(table.row_count)]

        table.show([process(pid, 0.0) for pid in range(1, 7)])
        assert pids() == [1, 2, 3, 4, 5, 6]
        table.show([process(pid, 0.5 if pid == 5 else 0.0) for pid in range(1, 7)])
        assert pids() == [5, 1, 2, 3, 4, 6] and cpus() == sorted(cpus(), reverse=True)
        table.show([process(pid, 0.0) for pid in range(1, 8)])  # 7 started meanwhile
        assert pids() == [5, 1, 2, 3, 4, 6, 7]
        table.show([process(pid, 0.04 if pid == 3 else 0.0) for pid in range(1, 8)])
        assert pids() == [5, 1, 2, 3, 4, 6, 7]  # 0.04 shows as 0.0: a tie, no move
        table.show([process(pid, 1.0 if pid == 6 else 0.0) for pid in range(1, 8)])
        assert pids() == [6, 5, 1, 2, 3, 4, 7] and cpus() == sorted(cpus(), reverse=True)
        table.sort_by = "pid"
        table.sort_by = "cpu"  # a new CPU sort starts again from PID order
        assert pids() == [6, 1, 2, 3, 4, 5, 7]


async def test_the_command_palette_reaches_the_screen_actions() -> None:
    app = make_app(Settings(interval=5), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = _screen(app)
        await _until(pilot, lambda: screen.polls >= 1)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for key in "Sort mem":
            await pilot.press("space" if key == " " else key)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await _until(pilot, lambda: screen.query_one(ProcessTable).sort_by == "mem")


async def test_resizing_down_to_80x24_and_below_keeps_it_usable() -> None:
    app = make_app(Settings(interval=0.5), Config())
    async with app.run_test(size=(200, 60)) as pilot:
        screen = _screen(app)
        await _until(pilot, lambda: screen.polls >= 2)
        assert screen.has_class("-wide")
        wide = screen.query_one(ProcessTable).size.height
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert screen.has_class("-narrow") and not screen.has_class("-too-small")
        for pane in (CpuPane, MemoryPane, LoadPane, ProcessTable):
            assert screen.query_one(pane).size.width > 10
        assert screen.query_one(ProcessTable).size.height < wide
        await pilot.press("3")  # jump to the disks pane, scrolled into view
        await pilot.pause(0.2)
        assert screen.focused is screen.query_one(DisksTable)
        assert screen.query_one(DisksTable).region.height > 0
        await pilot.resize_terminal(50, 12)
        await pilot.pause(0.3)
        assert screen.has_class("-too-small")
        message = str(screen.query_one("#too-small").render())
        assert "too small: 50x12" in message and "80x24" in message
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not screen.has_class("-too-small")


async def test_a_host_that_cannot_be_sampled_shows_stale_with_the_reason() -> None:
    broken = ProcSampler(LocalShell("edge-9", env={"PATH": "/nonexistent"}))
    app = make_app(Settings(interval=0.2), Config(), "edge-9", broken)
    async with app.run_test(size=(80, 24)) as pilot:
        header = _screen(app).query_one(HostHeader)
        await _until(pilot, lambda: header.stale_reason is not None)
        assert "edge-9" in header.stale_reason  # type: ignore[operator]
        assert "No such file" in header.stale_reason  # type: ignore[operator]
        shown = str(header.render())
        assert shown.startswith("edge-9 · STALE") and "No such file" in shown
        await pilot.press("r")
        await pilot.pause(0.3)
        assert app.is_running


async def test_a_host_that_stops_answering_goes_stale_with_the_age_of_its_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The host answers, then hangs (its `sh` sleeps once a flag file exists): the figures
    stay but the header says STALE with their age, then why, and the UI keeps working."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flag = tmp_path / "hang"
    fake_sh = bin_dir / "sh"
    fake_sh.write_text(f'#!/bin/sh\n[ -e "{flag}" ] && exec sleep 60\nexec /bin/sh "$@"\n')
    fake_sh.chmod(0o755)
    shell = LocalShell("slow-1", env={"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"})
    app = make_app(Settings(interval=0.5), Config(), "slow-1", ProcSampler(shell))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = _screen(app)
        header = screen.query_one(HostHeader)
        await _until(pilot, lambda: screen.polls >= 2)
        flag.touch()
        await _until(pilot, lambda: header.overdue, timeout=10)
        assert "STALE" in str(header.render()) and "no new sample" in str(header.render())
        await _until(pilot, lambda: header.stale_reason == "sampling timed out", timeout=15)
        assert screen.query_one(DisksTable).row_count >= 1  # the last figures are still shown
        await pilot.press("m")
        assert screen.query_one(ProcessTable).sort_by == "mem"


async def test_the_cursor_stays_on_its_row_when_the_rows_re_sort() -> None:
    """The operator has a process under the cursor when the order changes: the cursor goes
    with the process (and Enter names it), not with the line number."""
    from fleetdeck.widgets import Cell, RowTable
    from fleetdeck.widgets.row_table import Column

    class Table(RowTable):
        COLUMNS = (Column("name", "Name"),)

    selected: list[str] = []

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Table()

        def on_row_table_selected(self, message: RowTable.Selected) -> None:
            selected.append(message.key)

    app = Host()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(Table)
        table.set_rows({k: (Cell(k),) for k in ("a", "b", "c")})
        table.focus()
        await pilot.press("j")
        assert table.row_keys[table.cursor_row] == "b"
        table.set_rows({k: (Cell(k),) for k in ("b", "c", "a")})  # re-sorted
        assert table.row_keys[table.cursor_row] == "b"
        table.set_rows({k: (Cell(k),) for k in ("c", "a")})  # b went away
        assert table.cursor_row < table.row_count
        await pilot.press("enter")
        await pilot.pause()
        assert selected == [table.row_keys[table.cursor_row]]


def test_host_text_with_newlines_and_escapes_cannot_break_a_row() -> None:
    """A command line with a newline (sh -c 'multi-line script') or an escape sequence
    (a process that renamed itself) shows on one line, harmless, escaped as everywhere else
    (checks.model.printable): what is there can be read, none of it acts."""
    from fleetdeck.widgets import Cell

    cell = Cell("sh -c fd() {\n  x\n}\x1b[2J\tend")
    assert cell.plain == "sh -c fd() {\\n  x\\n}\\x1b[2J\\tend"
    assert "\n" not in cell.plain and "\x1b" not in cell.plain


def test_a_row_names_its_finding_target_unless_the_summary_or_the_host_already_does() -> None:
    from fleetdeck.widgets.findings_tables import headline

    assert headline("shop-db-1", "unhealthy: 3 failed probe(s)") == (
        "shop-db-1: unhealthy: 3 failed probe(s)"
    )
    assert headline("/", "read-write") == "/: read-write"
    assert headline("/var", "/var 93% used") == "/var 93% used"
    assert headline("cpu", "CPU 10% busy") == "CPU 10% busy"  # already named, any case
    assert headline("web-01", "no software RAID", host="web-01") == "no software RAID"
    assert headline("", "nothing to name") == "nothing to name"
