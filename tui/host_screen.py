"""The Host screen: live resource panes, findings and alerts of one host."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from checks.alerts import AlertTracker
from checks.config import Config
from checks.model import CheckContext, Finding, Status
from checks.registry import run_checks
from hosts.metrics import SampleHistory
from hosts.samplers import Sampler
from widgets import (
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

MIN_WIDTH, MIN_HEIGHT = 60, 16


class HostScreen(Screen[None]):
    """One host's resources, refreshed every `interval` seconds; the next poll is scheduled
    when the last one ends, so a slow host never piles polls up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "sort('cpu')", "Sort CPU"),
        Binding("m", "sort('mem')", "Sort mem"),
        Binding("p", "sort('pid')", "Sort PID"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("1", "jump('alerts')", "Alerts", show=False),
        Binding("2", "jump('processes')", "Processes", show=False),
        Binding("3", "jump('disks')", "Disks", show=False),
        Binding("4", "jump('network')", "Network", show=False),
        Binding("5", "jump('findings')", "Findings", show=False),
    ]

    def __init__(self, name: str, sampler: Sampler, config: Config, interval: float) -> None:
        super().__init__()
        # Under 120 columns the tables stack in one scrolling column; from 120 they sit side
        # by side (see app.tcss).
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self.host_name = name
        self.sampler = sampler
        self.config = config
        self.interval = interval
        # Enough history to cover the CPU window at this interval, and ten minutes at least.
        window_samples = int(config.thresholds.cpu_window / interval) + 2
        self.history = SampleHistory(size=max(600, window_samples))
        self.alerts = AlertTracker(name, config.alert_for)
        self.findings: list[Finding] = []
        self.polls = 0
        self._next_poll: Timer | None = None

    def compose(self) -> ComposeResult:
        yield HostHeader(self.host_name, max_age=max(2 * self.interval, 2.0))
        with Horizontal(id="summary"):
            yield CpuPane(id="cpu")
            yield MemoryPane(id="memory")
            yield LoadPane(id="load")
        with VerticalScroll(id="panes"):
            with Vertical(id="col-main"):
                yield AlertsTable(id="alerts")
                yield ProcessTable(id="processes")
            with Vertical(id="col-side"):
                yield DisksTable(id="disks")
                yield NetworkTable(id="network")
                yield FindingsTable(id="findings")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "cpu": "CPU",
            "memory": "Memory",
            "load": "Load",
            "alerts": "1 Alerts",
            "processes": "2 Processes",
            "disks": "3 Disks",
            "network": "4 Network",
            "findings": "5 Findings",
        }
        for widget_id, title in titles.items():
            self.query_one(f"#{widget_id}").border_title = title
        self.query_one("#processes", ProcessTable).focus(scroll_visible=False)
        self.run_worker(self._describe(), group="describe", exit_on_error=False)
        self.poll()

    async def _describe(self) -> None:
        self.query_one(HostHeader).info = await asyncio.wait_for(self.sampler.describe(), 10)

    @on(Resize)
    def _check_size(self, event: Resize) -> None:
        small = event.size.width < MIN_WIDTH or event.size.height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {event.size.width}x{event.size.height}.\n"
                f"fleetdeck needs at least {MIN_WIDTH}x{MIN_HEIGHT}; 80x24 shows everything."
            )

    def action_refresh_now(self) -> None:
        self.poll()

    def action_sort(self, column: str) -> None:
        self.query_one(ProcessTable).sort_by = column

    def action_jump(self, pane: str) -> None:
        widget = self.query_one(f"#{pane}")
        widget.scroll_visible(top=True, animate=False)
        widget.focus()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        """Take one sample and show it, then book the next poll (one chain of timers only)."""
        if self._next_poll is not None:
            self._next_poll.stop()
        header = self.query_one(HostHeader)
        try:
            await self._poll_once()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            header.stale_reason = "sampling timed out"
        except Exception as error:  # every failure becomes a visible stale state, not a crash
            header.stale_reason = str(error) or type(error).__name__
        delay = self.interval if len(self.history) >= 2 else min(0.5, self.interval)
        self._next_poll = self.set_timer(delay, self.poll, name="next-poll")

    async def _poll_once(self) -> None:
        header = self.query_one(HostHeader)
        processes = self.query_one(ProcessTable)
        # Process lists are the costly part of a sample: only while someone can see them.
        self.sampler.processes = processes.is_on_screen or not self.history
        sample = await asyncio.wait_for(self.sampler.sample(), max(2 * self.interval, 5))
        rates = self.history.add(sample)
        header.stale_reason = None
        header.updated = sample.at
        ctx = CheckContext(self.host_name, self.history, self.config.thresholds)
        self.findings = await run_checks(ctx)
        self.alerts.update(self.findings, sample.at)
        host_wide = {"cpu", "memory", "swap", "load"}
        status = {f.check: f.status for f in self.findings if f.target in host_wide}
        self.query_one(CpuPane).update_data(
            rates.cpu if rates else None,
            rates.cores if rates else (),
            self.history.cpu_series(),
            status.get("cpu.usage", Status.OK),
        )
        self.query_one(MemoryPane).show(
            sample.memory, status.get("mem.usage", Status.OK), status.get("mem.swap", Status.OK)
        )
        load = self.query_one(LoadPane)
        load.load, load.cores = sample.load, sample.core_count
        load.status = status.get("load.per_core", Status.OK)
        self.query_one(DisksTable).show(sample.mounts, rates)
        self.query_one(NetworkTable).show(rates)
        if rates is not None and rates.processes is not None:
            processes.show(rates.processes)
        self.query_one(FindingsTable).show(self.findings)
        alerts = self.alerts.alerts()
        self.query_one(AlertsTable).show(alerts, now=sample.at)
        subtitle = f"{len(alerts)}" if alerts else "none"
        table = self.query_one(AlertsTable)
        if table.border_subtitle != subtitle:  # setting it repaints the table, even unchanged
            table.border_subtitle = subtitle
        header.alert_counts = self.alerts.counts()
        self.polls += 1
