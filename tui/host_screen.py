"""The Host screen: live resource panes, findings and alerts of one host."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from fleetdeck.checks.actions import FixHost
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.docker.endpoint import EndpointKind
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.samplers import PsutilSampler
from fleetdeck.widgets import (
    AlertsTable,
    ContainersPane,
    ContainerTable,
    CpuPane,
    DatabasePane,
    DisksTable,
    FindingsTable,
    HostHeader,
    LoadPane,
    MemoryPane,
    NetworkTable,
    ProcessTable,
    RowTable,
)

if TYPE_CHECKING:
    from fleetdeck.checks.database.link import DbLink
    from fleetdeck.hosts.docker.link import DockerLink

MIN_WIDTH, MIN_HEIGHT = 60, 16
DB_EVERY = 2.0
"""The database pane reads at most this often (seconds), whatever the host's interval."""
DOCKER_EVERY = 2.0
"""The containers pane reads at most this often (seconds), whatever the host's interval."""
NO_DOCKER_EVERY = 30.0
"""How often a host without Docker is asked again (`r` asks at once)."""
CONTAINER_CHECKS_EVERY = 10.0
"""Seconds between runs of the container checks (C1, C3, C5) while the screen is open: their
findings raise alerts; the restart-loop and memory-growth checks read the pane's readings."""


def docker_wanted(watch: HostWatch) -> bool:
    """Whether a watched host has a Docker engine to show: an inventory host unless it says
    `docker = "none"`, and the local console (which says plainly when it finds none). A
    recorded host has none: this machine's engine is not its."""
    spec = getattr(watch.sampler, "spec", None)
    if spec is not None:
        return spec.docker is None or spec.docker.kind is not EndpointKind.NONE
    return isinstance(watch.sampler, PsutilSampler)


class HostScreen(Screen[None]):
    """One host's resources, as its `HostWatch` sees them. The screen polls the watch itself
    (`owns_watch`, the local console) or shows one the Fleet screen already polls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "sort('cpu')", "Sort CPU"),
        Binding("m", "sort('mem')", "Sort mem"),
        Binding("p", "sort('pid')", "Sort PID"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("w", "wizard('network')", "Network wizard"),
        Binding("d", "wizard('storage')", "Disk wizard", show=False),
        Binding("b", "wizard('database')", "Database wizard", show=False),
        Binding("o", "wizard('containers')", "Container wizard", show=False),
        Binding("l", "logs", "Logs", show=False),
        Binding("a", "audit", "Audit log", show=False),
        Binding("1", "jump('alerts')", "Alerts", show=False),
        Binding("2", "jump('processes')", "Processes", show=False),
        Binding("3", "jump('disks')", "Disks", show=False),
        Binding("4", "jump('network')", "Network", show=False),
        Binding("5", "jump('findings')", "Findings", show=False),
        Binding("6", "jump('database')", "Database", show=False),
        Binding("7", "jump('containers')", "Containers", show=False),
        Binding("escape", "back", "Fleet", show=False),
    ]

    def __init__(self, watch: HostWatch, owns_watch: bool = True) -> None:
        super().__init__()
        # Under 120 columns the tables stack in one scrolling column; from 120 they sit side
        # by side (see app.tcss).
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self.host_watch = watch
        self.owns_watch = owns_watch
        self.host_name = watch.name
        self.interval = watch.interval
        self._stop_listening: Callable[[], None] | None = None
        self._db_link: DbLink | None = None
        self._db_wake = asyncio.Event()
        self._docker_wake = asyncio.Event()

    @property
    def polls(self) -> int:
        return self.host_watch.polls

    @property
    def history(self) -> SampleHistory:
        return self.host_watch.history

    @property
    def findings(self) -> list[Finding]:
        return self.host_watch.findings

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
                targets = self.app.database_targets(self.host_watch)  # type: ignore[attr-defined]
                if targets:
                    label = targets[0].label if targets[0] is not None else "postgres"
                    yield DatabasePane(label, max_age=2 * self.db_every + 1, id="database")
                if docker_wanted(self.host_watch):
                    yield ContainersPane(
                        self.host_watch.name,
                        max_age=2 * self.docker_every + 1,
                        memory=self.host_watch.config.thresholds.containers.memory,
                        id="containers",
                    )
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
            "database": "6 Database",
            "containers": "7 Containers",
        }
        for widget_id, title in titles.items():
            for widget in self.query(f"#{widget_id}"):
                widget.border_title = title
        self.query_one("#processes", ProcessTable).focus(scroll_visible=False)
        self._stop_listening = self.host_watch.listen(self._show)
        if self.host_watch.polls or self.host_watch.error:
            self._show(self.host_watch)
        self._watch_storage()
        if self.query(DatabasePane):
            self._watch_database()
        if self.query(ContainersPane):
            self._watch_containers()
            self._check_containers()
        if self.owns_watch:
            self.run_worker(self.host_watch.run(), group="watch", exit_on_error=False)
        else:
            self.host_watch.poll_now()  # processes are wanted now that someone looks

    async def on_unmount(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        # Nobody refreshes them once the screen is gone: they must not keep alerts firing.
        self.host_watch.storage_findings = []
        self.host_watch.container_findings = []
        self.host_watch.sampler.processes = False
        self.workers.cancel_group(self, "database")
        self.workers.cancel_group(self, "containers")
        self.workers.cancel_group(self, "container-checks")
        link, self._db_link = self._db_link, None
        if link is not None:
            await link.close()  # bounded: a silent server's connection is dropped, not awaited

    @property
    def db_every(self) -> float:
        return max(self.interval, DB_EVERY)

    @property
    def docker_every(self) -> float:
        return max(self.interval, DOCKER_EVERY)

    @on(Resize)
    def _check_size(self, event: Resize) -> None:
        small = event.size.width < MIN_WIDTH or event.size.height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {event.size.width}x{event.size.height}.\n"
                f"fleetdeck needs at least {MIN_WIDTH}x{MIN_HEIGHT}; 80x24 shows everything."
            )

    @work(exclusive=True, group="storage", exit_on_error=False)
    async def _watch_storage(self) -> None:
        """The storage checks every `storage_every` s while the screen is open, through the
        host's shell; a host with none (a recorded one) shows the sampled checks only."""
        # The catalog imports every domain (half a second): off the event loop, so the
        # first screen is drawn meanwhile.
        await asyncio.to_thread(__import__, "fleetdeck.checks.catalog")
        from fleetdeck.checks.catalog import configured_params
        from fleetdeck.checks.storage.wizard import STORAGE_WIZARD, storage_findings

        watch = self.host_watch
        every: float = self.app.settings.storage_every  # type: ignore[attr-defined]
        while every > 0:
            try:
                host: FixHost = await self.app.open_fix_host(watch)  # type: ignore[attr-defined]
            except RuntimeError:
                return  # a host with no shell (recorded data): the sampled checks only
            except Exception as error:  # the host cannot be reached just now
                watch.storage_findings = [
                    Finding("storage.checks", Status.UNKNOWN, watch.name, f"not run: {error}")
                ]
            else:
                spec = getattr(watch.sampler, "spec", None)
                config = watch.config
                try:
                    labels = getattr(spec, "labels", ())
                    params = configured_params(STORAGE_WIZARD, config, watch.name, labels)
                except ValueError as error:
                    self.notify(str(error), title="settings", severity="warning")
                    params = {}
                ctx = CheckContext(
                    watch.name, watch.history, config.thresholds, host.shell, host.tier, params
                )
                watch.storage_findings = await storage_findings(ctx)
            self._show(watch)
            await asyncio.sleep(every)

    @work(exclusive=True, group="database", exit_on_error=False)
    async def _watch_database(self) -> None:
        """Read the first PostgreSQL target into the database pane every `db_every` s (at
        once on `r`), over one read-only session kept for the screen's life. Each reading
        is bounded by the session's timeouts, and the UI never waits on it."""
        from fleetdeck.checks.database.pane import PaneSnapshot, read_pane

        pane = self.query_one(DatabasePane)
        app, watch = self.app, self.host_watch
        link: DbLink = app.database_link(watch, first=True)  # type: ignore[attr-defined]
        link.settings = replace(link.settings, read_only=True)
        self._db_link = link
        snapshot: PaneSnapshot | None = None
        while True:
            self._db_wake.clear()
            try:
                snapshot = await read_pane(link, snapshot)
            except Exception as error:  # a bug must not stop the pane for the screen's life
                said = f"fleetdeck could not read the pane: {type(error).__name__}: {error}"
                snapshot = PaneSnapshot(link.label, watch.name, 0.0, 0.0, error=said)
            pane.show(snapshot)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._db_wake.wait(), self.db_every)

    @work(exclusive=True, group="containers", exit_on_error=False)
    async def _watch_containers(self) -> None:
        """Read the host's engine into the containers pane every `docker_every` s (at once
        on `r`; a host with no Docker every NO_DOCKER_EVERY s), through the link the console
        keeps for the host. Each reading is bounded (`read_containers`), and the UI never
        waits on it: a hung daemon shows as an error while the keys go on working."""
        from fleetdeck.checks.containers.pane import ContainerSnapshot, read_containers

        pane = self.query_one(ContainersPane)
        link: DockerLink = self.app.docker_link(self.host_watch)  # type: ignore[attr-defined]
        while True:
            self._docker_wake.clear()
            try:
                snapshot = await read_containers(link)
            except Exception as error:  # a bug must not stop the pane for the screen's life
                said = f"fleetdeck could not read the pane: {type(error).__name__}: {error}"
                now = time.monotonic(), time.time()
                snapshot = ContainerSnapshot(link.host, link.where, *now, error=said)
            pane.show(snapshot)
            every = NO_DOCKER_EVERY if pane.status.absent else self.docker_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._docker_wake.wait(), every)

    @work(exclusive=True, group="container-checks", exit_on_error=False)
    async def _check_containers(self) -> None:
        """The container checks every CONTAINER_CHECKS_EVERY s, on the link the pane reads
        through (and so with the readings it keeps): their findings join the host's, and
        raise alerts like the others. Nothing to check on a host without Docker."""
        from fleetdeck.checks.containers.checks import ENGINE, ENGINE_ID
        from fleetdeck.checks.containers.wizard import container_findings

        watch = self.host_watch
        link: DockerLink = self.app.docker_link(watch)  # type: ignore[attr-defined]
        pane = self.query_one(ContainersPane)
        # A first look once the pane has read twice, so restarts have a reading to be
        # counted from rather than a probe of their own.
        await asyncio.sleep(2 * self.docker_every + 1)
        while True:
            if pane.status.absent:
                watch.container_findings = []
            else:
                limits = watch.config.thresholds
                ctx = CheckContext(watch.name, watch.history, limits, docker=link)
                try:
                    found = await container_findings(ctx)
                except Exception as error:  # a bug must not stop the checks for good
                    said = f"container checks stopped: {type(error).__name__}: {error}"
                    found = [Finding(ENGINE_ID, Status.UNKNOWN, ENGINE, said)]
                watch.container_findings = found
            self._show(watch)
            await asyncio.sleep(CONTAINER_CHECKS_EVERY)

    def action_refresh_now(self) -> None:
        self.host_watch.poll_now()
        self._db_wake.set()
        self._docker_wake.set()

    def action_logs(self) -> None:
        """The log of the container under the containers pane's cursor."""
        panes = self.query(ContainersPane)
        line = panes.first().selected if panes else None
        if line is None:
            where = "no containers pane" if not panes else "no container to show"
            self.notify(f"{self.host_name}: {where}", severity="warning")
            return
        self._open_logs(line.id, line.name)

    @on(RowTable.Selected)
    def _row_opened(self, event: RowTable.Selected) -> None:
        if isinstance(event.table, ContainerTable):
            line = event.table.lines.get(event.key)
            if line is not None:
                self._open_logs(line.id, line.name)

    def _open_logs(self, container_id: str, name: str) -> None:
        from fleetdeck.tui.logs_screen import LogsScreen

        link = self.app.docker_link(self.host_watch)  # type: ignore[attr-defined]
        self.app.push_screen(LogsScreen(link, container_id, name))

    def action_wizard(self, domain: str) -> None:
        """Open a wizard's form; the containers wizard's names the container under the
        pane's cursor, so the operator who spotted it need not type its name."""
        initial: dict[str, str] = {}
        panes = self.query(ContainersPane)
        line = panes.first().selected if domain == "containers" and panes else None
        if line is not None:
            initial["container"] = line.name
        self.app.open_wizard(self.host_watch, domain, initial)  # type: ignore[attr-defined]

    def action_audit(self) -> None:
        self.app.open_audit()  # type: ignore[attr-defined]

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # opened from the Fleet screen
            self.app.pop_screen()

    def action_sort(self, column: str) -> None:
        self.query_one(ProcessTable).sort_by = column

    def action_jump(self, pane: str) -> None:
        found = self.query(f"#{pane}")
        if not found and pane == "containers" and getattr(self.host_watch.sampler, "spec", None):
            self.notify(f'{self.host_name}: no Docker here (the inventory says docker = "none")')
            return
        if not found:
            self.notify(f"{self.host_name} has no {pane} pane", severity="warning")
            return
        widget = found.first()
        widget.scroll_visible(top=True, animate=False)
        widget.focus()

    def _show(self, watch: HostWatch) -> None:
        """Put the watch's latest sample, findings and alerts on the panes."""
        header = self.query_one(HostHeader)
        header.info = watch.info
        header.stale_reason = watch.error
        processes = self.query_one(ProcessTable)
        # Process lists are the costly part of a sample: only while someone can see them.
        watch.sampler.processes = processes.is_on_screen or len(watch.history) < 2
        sample, rates = watch.latest, watch.rates
        if sample is None:
            return
        header.updated = sample.at
        findings = watch.findings
        host_wide = {"cpu", "memory", "swap", "load"}
        status = {f.check: f.status for f in findings if f.target in host_wide}
        self.query_one(CpuPane).update_data(
            rates.cpu if rates else None,
            rates.cores if rates else (),
            watch.history.cpu_series(),
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
        self.query_one(FindingsTable).show(watch.all_findings(), watch.name)
        alerts = watch.alerts.alerts()
        self.query_one(AlertsTable).show(alerts, now=sample.at)
        subtitle = f"{len(alerts)}" if alerts else "none"
        table = self.query_one(AlertsTable)
        if table.border_subtitle != subtitle:  # setting it repaints the table, even unchanged
            table.border_subtitle = subtitle
        header.alert_counts = watch.alerts.counts()
