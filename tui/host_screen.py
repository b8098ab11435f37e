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
from textual.widget import Widget
from textual.widgets import Footer, Static

from fleetdeck.checks.alerts import Alert, AlertState
from fleetdeck.checks.incidents.alertlog import AlertRecorder
from fleetdeck.checks.incidents.board import BoardAlert, unreadable
from fleetdeck.checks.model import Finding, Status
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.tui.base import FleetdeckScreen
from fleetdeck.tui.panes import PANES
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
from fleetdeck.widgets.findings_tables import alerts_subtitle

if TYPE_CHECKING:
    from fleetdeck.checks.database.link import DbLink
    from fleetdeck.checks.domain import Domain
    from fleetdeck.checks.sources.alerts import SourceAlert
    from fleetdeck.hosts.docker.link import DockerLink
    from fleetdeck.tui.logs_screen import LogSource

MIN_WIDTH, MIN_HEIGHT = 60, 16
NO_DOCKER_EVERY = 30.0
"""How often a host without Docker is asked again (`r` asks at once)."""


def _domains() -> tuple[Domain, ...]:
    """The registered domains, imported when a Host screen is built: the console's import
    stays light, and the list is the one `fleetdeck check` iterates."""
    from fleetdeck.checks.catalog import DOMAINS

    return DOMAINS


def _pane_bindings() -> list[BindingType]:
    """Each domain pane's jump key, and the key of the wizard its cursor fills
    (`tui/panes.py`)."""
    found: list[BindingType] = []
    for name, pane in PANES.items():
        found.append(Binding(pane.key, f"jump('{name}')", name.title(), show=False))
        if pane.wizard is not None and pane.wizard_key:
            what = f"{pane.wizard.title()} wizard"
            found.append(Binding(pane.wizard_key, f"wizard('{pane.wizard}')", what, show=False))
    return found


def _pane_every(name: str) -> float:
    pane = next(d.pane for d in _domains() if d.name == name and d.pane is not None)
    return pane.every


class HostScreen(FleetdeckScreen[None]):
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
        Binding("l", "logs", "Logs", show=False),
        Binding("a", "audit", "Audit log", show=False),
        Binding("1", "jump('alerts')", "Alerts", show=False),
        Binding("2", "jump('processes')", "Processes", show=False),
        Binding("3", "jump('disks')", "Disks", show=False),
        Binding("4", "jump('network')", "Network", show=False),
        Binding("5", "jump('findings')", "Findings", show=False),
        *_pane_bindings(),
        Binding("i", "open_incident", "Open incident", show=False),
        Binding("A", "acknowledge", "Acknowledge alert", show=False),
        Binding("S", "silence", "Silence alert", show=False),
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
        self._pane_wakes: dict[str, asyncio.Event] = {}
        self._runbooks: dict[tuple[str, str, str], str | None] = {}
        """Each alert's rule's runbook id, by alert key (None: no rule or no runbook)."""
        self.source_alerts: dict[BoardAlert, SourceAlert] = {}
        """The Alertmanager alerts the alert list shows, by their row."""

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
                access = self.console.access(self.host_watch)
                for domain in _domains():  # each domain's pane, if the host wants it
                    if domain.pane is not None and domain.pane.wanted(access):
                        max_age = 2 * max(self.interval, domain.pane.every) + 1
                        config = self.host_watch.config
                        yield PANES[domain.name].make(access, config, max_age, domain.name)
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
            **{d.name: f"{PANES[d.name].key} {d.title}" for d in _domains() if d.name in PANES},
        }
        for widget_id, title in titles.items():
            for widget in self.query(f"#{widget_id}"):
                widget.border_title = title
        self.query_one("#processes", ProcessTable).focus(scroll_visible=False)
        self._stop_listening = self.host_watch.listen(self._show)
        if self.host_watch.polls or self.host_watch.error:
            self._show(self.host_watch)
        self._run_domains()
        if self.query(DatabasePane):
            self._watch_database()
        if self.query(ContainersPane):
            self._watch_containers()
        for name, pane in PANES.items():
            if pane.read is not None and self.query(f"#{name}"):
                self._read_pane(name)
        if self.owns_watch:
            self.run_worker(self.host_watch.run(), group="watch", exit_on_error=False)
        else:
            self.host_watch.poll_now()  # processes are wanted now that someone looks

    async def on_unmount(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        # Nobody refreshes them once the screen is gone: they must not keep alerts firing.
        self.host_watch.domain_findings.clear()
        self.host_watch.sampler.processes = False
        self.workers.cancel_group(self, "domains")
        self.workers.cancel_group(self, "database")
        self.workers.cancel_group(self, "containers")
        self.workers.cancel_group(self, "panes")
        link, self._db_link = self._db_link, None
        if link is not None:
            await link.close()  # bounded: a silent server's connection is dropped, not awaited

    @property
    def db_every(self) -> float:
        return max(self.interval, _pane_every("database"))

    @property
    def docker_every(self) -> float:
        return max(self.interval, _pane_every("containers"))

    @on(Resize)
    def _check_size(self, event: Resize) -> None:
        small = event.size.width < MIN_WIDTH or event.size.height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {event.size.width}x{event.size.height}.\n"
                f"fleetdeck needs at least {MIN_WIDTH}x{MIN_HEIGHT}; 80x24 shows everything."
            )

    @work(exclusive=True, group="domains", exit_on_error=False)
    async def _run_domains(self) -> None:
        """Every registered domain's periodic checks, each at its cadence, while the screen
        is open (`checks.scheduler`): the storage checks every `storage_every` s through
        the host's shell (a host with none, a recorded one, shows the sampled checks only),
        the container checks on the link the containers pane reads through. Their findings
        join the host's and raise alerts like the others."""
        from fleetdeck.checks.scheduler import DomainScheduler

        def bad_settings(error: ValueError) -> None:
            self.notify(str(error), title="settings", severity="warning")

        scheduler = DomainScheduler(
            self.host_watch,
            self.console.access(self.host_watch),
            _domains(),
            updated=lambda: self._show(self.host_watch),
            bad_settings=bad_settings,
            every=self.console.cadences(),
            shown=lambda name: bool(self.query(f"#{name}")),
            quiet=self._pane_absent,
        )
        await scheduler.run()

    def _pane_absent(self, name: str) -> bool:
        """Whether the domain's pane says its service is not on this host (no Docker)."""
        if name not in PANES:
            return False
        panes = self.query(f"#{name}")
        return bool(panes) and PANES[name].absent(panes.first(Widget))

    @work(exclusive=True, group="database", exit_on_error=False)
    async def _watch_database(self) -> None:
        """Read the first PostgreSQL target into the database pane every `db_every` s (at
        once on `r`), over one read-only session kept for the screen's life. Each reading
        is bounded by the session's timeouts, and the UI never waits on it."""
        from fleetdeck.checks.database.pane import PaneSnapshot, read_pane

        pane = self.query_one(DatabasePane)
        app, watch = self.console, self.host_watch
        link: DbLink = app.database_link(watch, first=True)
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
        link: DockerLink = self.console.docker_link(self.host_watch)
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

    @work(group="panes", exit_on_error=False)
    async def _read_pane(self, name: str) -> None:
        """Read the host into a domain's pane through its reader (`PaneWidget.read`) every
        max(interval, the domain's pane cadence) s, at once on `r`. The reader shows its own
        failures in the pane; a bug in it is said and the next reading tries again."""
        read = PANES[name].read
        assert read is not None
        pane = self.query_one(f"#{name}")
        access = self.console.access(self.host_watch)
        wake = self._pane_wakes.setdefault(name, asyncio.Event())
        every = max(self.interval, _pane_every(name))
        while True:
            wake.clear()
            try:
                await read(pane, access, self.host_watch.config)
            except Exception as error:  # a bug must not stop the pane for the screen's life
                said = f"{self.host_name}: the {name} pane: {type(error).__name__}: {error}"
                self.notify(said, severity="error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), every)

    def action_refresh_now(self) -> None:
        self.host_watch.poll_now()
        self.console.read_sources_now()
        self._db_wake.set()
        self._docker_wake.set()
        for wake in self._pane_wakes.values():
            wake.set()

    def _panes_under(self) -> list[tuple[str, Widget]]:
        """The domain panes on the screen, the one that has the focus (or holds it) first."""
        shown = [(name, w) for name in PANES for w in self.query(f"#{name}")]
        focus = self.focused.ancestors_with_self if self.focused is not None else []
        held = [(n, w) for n, w in shown if w in focus]
        return held + [(n, w) for n, w in shown if (n, w) not in held]

    def action_logs(self) -> None:
        """The log of what is under the cursor of the focused pane (or of the first pane
        that has a log and something under its cursor): a container, a unit."""
        access = self.console.access(self.host_watch)
        for name, pane in self._panes_under():
            log = PANES[name].log
            source = log(pane, access) if log is not None else None
            if source is not None:
                self._open_source(source)
                return
        self.notify(f"{self.host_name}: no container or unit to show", severity="warning")

    @on(RowTable.Selected)
    def _row_opened(self, event: RowTable.Selected) -> None:
        if isinstance(event.table, AlertsTable):  # Enter on an alert: its runbook's wizard
            from fleetdeck.tui.alert_actions import open_runbook

            alert = event.table.shown.get(event.key)
            if isinstance(alert, Alert):
                open_runbook(self, alert)
            elif alert is not None:
                self.notify(f"{alert.source}: no runbook wizard for its alerts")
        if isinstance(event.table, ContainerTable):
            line = event.table.lines.get(event.key)
            if line is not None:
                self._open_logs(line.id, line.name)

    def _open_logs(self, container_id: str, name: str) -> None:
        from fleetdeck.tui.logs_screen import ContainerLog

        link = self.console.docker_link(self.host_watch)
        self._open_source(ContainerLog(link, container_id, name))

    def _open_source(self, source: LogSource) -> None:
        from fleetdeck.tui.logs_screen import LogsScreen

        self.app.push_screen(LogsScreen(source))

    def action_wizard(self, domain: str) -> None:
        """Open a wizard's form; a pane that fills it (`PaneWidget.given`) names what is
        under its cursor (a container, a unit), so the operator who spotted it need not
        type its name."""
        initial: dict[str, str] = {}
        for name, pane in self._panes_under():
            if PANES[name].wizard == domain:
                initial = {**PANES[name].given(pane)}
                break
        self.console.open_wizard(self.host_watch, domain, initial)

    def action_open_incident(self) -> None:
        from fleetdeck.tui.alert_actions import open_incident_from

        open_incident_from(self)

    def action_acknowledge(self) -> None:
        from fleetdeck.tui.alert_actions import acknowledge_under_cursor

        acknowledge_under_cursor(self)

    def action_silence(self) -> None:
        from fleetdeck.tui.alert_actions import silence_under_cursor

        silence_under_cursor(self)

    def action_audit(self) -> None:
        self.console.open_audit()

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
        hook = watch.alerts.hook  # acks and silences from the state database, if it is kept
        marks = hook.marks() if isinstance(hook, AlertRecorder) else {}
        others, said = self._source_alerts()
        if isinstance(hook, AlertRecorder) and hook.settings.rules:
            for a in alerts:  # rules do not change while the console runs: once per alert
                if a.key not in self._runbooks:
                    rule = hook.rule(a.check, a.target)
                    self._runbooks[a.key] = rule.runbook if rule else None
        runbooks = {a.key: r for a in alerts if (r := self._runbooks.get(a.key))}
        self.query_one(AlertsTable).show(
            alerts, now=sample.at, marks=marks, others=others, runbooks=runbooks
        )
        subtitle = alerts_subtitle(alerts, marks) + said
        table = self.query_one(AlertsTable)
        if table.border_subtitle != subtitle:  # setting it repaints the table, even unchanged
            table.border_subtitle = subtitle
        tally = watch.alerts.counts()
        tally[AlertState.FIRING] += sum(1 for a in others if a.state == "firing")
        header.alert_counts = tally

    def _source_alerts(self) -> tuple[list[BoardAlert], str]:
        """The Alertmanagers' alerts about this host (by its name or address), from the
        console's latest reading, and what the list's subtitle adds ("; alertmanager: 1
        firing, 0 silenced"); each source that could not be read is one UNKNOWN row."""
        reading = self.console.source_reading
        if reading is None:
            return [], ""
        from fleetdeck.checks.sources.alerts import counts
        from fleetdeck.tui.alert_sources import board_alert

        spec = getattr(self.host_watch.sampler, "spec", None)
        mine = reading.about(self.host_name, getattr(spec, "address", ""))
        self.source_alerts = {board_alert(a): a for a in mine}
        failed = [unreadable(label, why, reading.at) for label, why in reading.failed]
        return [*self.source_alerts, *failed], f"; alertmanager: {counts(mine)}"
