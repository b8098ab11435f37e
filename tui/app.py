"""The fleetdeck Textual app and the factory that builds it with its dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.samplers import PsutilSampler, Sampler
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets.repaint import crop_partial_updates

if TYPE_CHECKING:
    from fleetdeck.checks.database.link import DbLink
    from fleetdeck.hosts.docker.link import DockerLink
    from fleetdeck.hosts.inventory.records import HostSpec, Inventory
    from fleetdeck.hosts.ssh import SSHOptions
    from fleetdeck.tui.alert_sources import SourceReading


@dataclass(frozen=True, slots=True)
class Settings:
    """How the console runs: refresh interval and whether it may change anything."""

    interval: float = 1.0
    read_only: bool = False
    audit_log: Path | None = None
    tier: str | None = None
    """This machine's environment tier, for fixes on the local console."""
    storage_every: float = 300.0
    """Seconds between runs of the storage checks on an open Host screen; 0: never."""
    postgres: bool = False
    """The local console also watches this machine's PostgreSQL, with libpq's defaults."""
    war_room: bool = False
    """Open on the war-room screen (tui/war_room.py); the CLI makes it read-only too."""


NOTICES_SHOWN = 3
SOURCES_EVERY = 15.0
"""Seconds between two readings of the Alertmanagers (`r` on a Host screen asks at once)."""


GC_YOUNG = 5_000
"""Allocations between two young collections (Python's default is 700). Drawing a frame
makes and drops thousands of short-lived objects (Textual's strips, each with seven small
caches): at 700 an idle console at 200x60 ran 160 young collections in 20 s, and they
promoted enough into the older generations for full ones (gc.callbacks, `run_test`:
168 ms of collections in 20 s, a quarter of the console's CPU meanwhile; 49 ms with this
and `settle_gc`)."""
GC_SETTLE_AFTER = 2.0
"""Seconds from the start to `settle_gc`: the first screens are built and drawn by then."""


def settle_gc() -> None:
    """Collect once, then freeze what survives (the modules, the app, its first screens):
    a full collection no longer walks them. A Fleet screen of 200 hosts held 230,000
    objects, and each full collection held the screen for about 100-140 ms, five times in
    7 s (opening hosts); with this, none in the same 7 s. Frozen objects are still freed
    when nothing refers to them; only a reference cycle among them would outlive its use,
    and what exists two seconds in lives as long as the console (screens opened later are
    not frozen: tests/test_memory_settle.py)."""
    gc.collect()
    gc.freeze()


class FleetdeckApp(App[None]):
    """The console. It is handed what to watch; it opens no connection on its own."""

    TITLE = "fleetdeck"
    CSS_PATH: ClassVar[list[str | PurePath]] = ["global.tcss", "app.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_help", "Keys"),
    ]

    def __init__(
        self,
        settings: Settings,
        config: Config,
        watches: Sequence[HostWatch],
        tags: dict[str, tuple[str, ...]] | None = None,
        groups: dict[str, tuple[str, ...]] | None = None,
        notices: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        crop_partial_updates()  # a refreshed span of a line sends that span, not the line
        self.clock = clock
        """The wall clock the war room shows ages against; tests fix it."""
        self.settings = settings
        self.notices = tuple(notices)
        """Inventory warnings (a missing identity file...) to show as toasts on start."""
        self.config = config
        self.watches = tuple(watches)
        self._tags = tags or {}
        self._groups = groups or {}
        self._access: dict[str, HostAccess] = {}
        self.source_reading: SourceReading | None = None
        """The latest reading of every `[[sources.alertmanager]]` (`_read_sources`); None
        before the first, or with none configured."""
        self._sources_wake = asyncio.Event()
        # The one gate every fix passes; read-only is enforced there, not by the screens.
        self.gate = ActionGate(
            audit=AuditLog(settings.audit_log), confirm=self._confirm, read_only=settings.read_only
        )

    async def _confirm(self, request: ConfirmRequest) -> Decision:
        """The gate's question, asked with the ConfirmFix modal."""
        from fleetdeck.tui.confirm import ConfirmFix

        answer: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

        def answered(decision: Decision | None) -> None:
            if not answer.done():
                answer.set_result(decision or Decision(False))

        self.push_screen(ConfirmFix(request), callback=answered)
        return await answer

    def access(self, watch: HostWatch) -> HostAccess:
        """The one way to reach a watched host: its shell, SSH connection, Docker link and
        database targets, made the first time a screen asks and kept for the console's
        life, so every screen shares its Docker link (its threads, its forward and its last
        stats reading)."""
        if watch.name not in self._access:
            self._access[watch.name] = HostAccess.for_sampler(
                watch.name, watch.sampler, self.settings.tier, self.settings.postgres
            )
        return self._access[watch.name]

    def cadences(self) -> Mapping[str, float]:
        """The console's own cadences for domains' periodic checks on a Host screen, over
        their declared ones: the `Settings` field a domain's `Periodic.every_setting` names,
        such as `storage_every` (0: never)."""
        from fleetdeck.checks.catalog import DOMAINS

        fields = {
            d.name: d.periodic.every_setting
            for d in DOMAINS
            if d.periodic is not None and d.periodic.every_setting is not None
        }
        return {name: float(getattr(self.settings, field)) for name, field in fields.items()}

    def database_link(
        self, watch: HostWatch, target: str = "", dump_dir: str = "", *, first: bool = False
    ) -> DbLink:
        """A link to one of the host's databases (see `checks.database.domain`)."""
        from fleetdeck.checks.database.domain import database_link

        access = self.access(watch)
        return database_link(access, self.config.database, target, dump_dir, first=first)

    def docker_link(self, watch: HostWatch) -> DockerLink:
        """The link to a watched host's Docker engine, one per host (`HostAccess`)."""
        return self.access(watch).docker_link()

    def open_wizard(
        self, watch: HostWatch, domain: str = "network", given: Mapping[str, str] | None = None
    ) -> None:
        """Ask for the wizard's parameters, then run it on the watched host. `given` fills
        the form over the settings file's values (the container under the cursor)."""
        from fleetdeck.checks.catalog import WIZARDS, equip_host
        from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen

        wizard = WIZARDS[domain]

        def start(params: dict[str, str] | None) -> None:
            if params is None:
                return
            access = self.access(watch)

            async def opener() -> FixHost:
                """The host's shell, with what else the wizard needs of it (its database,
                its Docker link: the domain's declaration says)."""
                return equip_host(domain, await access.fix_host(), access, self.config, params)

            self.push_screen(
                WizardScreen(
                    wizard,
                    params,
                    watch.name,
                    opener,
                    self.gate,
                    self.config.thresholds,
                    watch.history,
                )
            )

        if wizard.params:
            from fleetdeck.checks.catalog import configured_params

            spec = getattr(watch.sampler, "spec", None)
            try:
                initial = configured_params(
                    wizard, self.config, watch.name, getattr(spec, "labels", ())
                )
            except ValueError as error:
                self.notify(str(error), title="settings", severity="warning")
                initial = {}
            initial = {**initial, **(given or {})}
            self.push_screen(WizardForm(wizard, watch.name, initial), callback=start)
        else:
            start({})

    def open_audit(self) -> None:
        from fleetdeck.tui.audit_screen import AuditScreen

        self.push_screen(AuditScreen(self.gate.audit.path))

    async def on_unmount(self) -> None:
        """Close every host's access as the console exits: the Docker links' log streams,
        SSH forwards and threads."""
        accesses, self._access = list(self._access.values()), {}
        await asyncio.gather(*(a.close() for a in accesses), return_exceptions=True)

    def read_sources_now(self) -> None:
        """Ask the Alertmanagers again at once (`r`, after a silence)."""
        self._sources_wake.set()

    async def _read_sources(self) -> None:
        """One worker per console: every Alertmanager's alerts every SOURCES_EVERY s (each
        read bounded in time), kept in `source_reading` for the screens that list alerts; a
        failed one is kept as failed, named, and the UI never waits on it."""
        # Imported here: the HTTP clients load only for a console that has sources.
        from fleetdeck.tui.alert_sources import read_sources

        sources = self.config.sources.alertmanager
        while True:
            self._sources_wake.clear()
            self.source_reading = await read_sources(sources)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sources_wake.wait(), SOURCES_EVERY)

    def on_mount(self) -> None:
        # The console's own figures, after the first screens are built: see settle_gc.
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        self.set_timer(GC_SETTLE_AFTER, settle_gc)
        if self.config.sources.alertmanager and not self.settings.war_room:
            self.run_worker(self._read_sources(), group="sources", exit_on_error=False)
        if self.settings.war_room:
            from fleetdeck.tui.alert_sources import alertmanager_sources
            from fleetdeck.tui.war_room import WarRoomScreen

            self.push_screen(
                WarRoomScreen(
                    self.watches,
                    self.config.incidents,
                    self.gate.audit.path,
                    read_only=self.gate.read_only,
                    sources=alertmanager_sources(self.config.sources.alertmanager),
                    clock=self.clock,
                )
            )
        elif len(self.watches) == 1:
            self.push_screen(HostScreen(self.watches[0]))
        else:
            # Imported here: the local console never loads SSH, and stays lighter for it.
            from fleetdeck.tui.fleet_screen import FleetScreen

            self.push_screen(
                FleetScreen(self.watches, self._tags, self._groups, self.settings.interval)
            )
        self._show_notices()

    def _show_notices(self) -> None:
        """The inventory's warnings, which the CLI also printed to stderr before the screen
        covered it: the first few as toasts, the rest counted."""
        for notice in self.notices[:NOTICES_SHOWN]:
            self.notify(notice, title="inventory", severity="warning", timeout=30, markup=False)
        if (more := len(self.notices) - NOTICES_SHOWN) > 0:
            self.notify(
                f"{more} more inventory warnings: `fleetdeck hosts -i FILE` lists them all",
                title="inventory",
                severity="warning",
                timeout=30,
                markup=False,
            )

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette offers every key binding of the screen, so no action needs a key."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.action in seen:
                continue
            seen.add(binding.action)
            yield SystemCommand(
                binding.description,
                f"{binding.description} (key: {binding.key})",
                lambda action=binding.action: screen.run_action(action),
            )


def make_app(
    settings: Settings,
    config: Config,
    host: str = "localhost",
    sampler: Sampler | None = None,
) -> FleetdeckApp:
    """Build the console: this machine through psutil unless another sampler is given."""
    watch = HostWatch(host, sampler or PsutilSampler(), config, settings.interval)
    return FleetdeckApp(settings, config, [watch])


def make_fleet_app(
    settings: Settings,
    config: Config,
    inventory: Inventory,
    hosts: Sequence[HostSpec],
    options: SSHOptions,
) -> FleetdeckApp:
    """Build the console over inventory hosts: one self-reconnecting link and watch each,
    with at most FLEET_CONCURRENCY SSH handshakes at a time."""
    from fleetdeck.checks.runner import FLEET_CONCURRENCY
    from fleetdeck.hosts.link import HostLink

    gate = asyncio.Semaphore(FLEET_CONCURRENCY)
    watches = [
        HostWatch(h.name, HostLink(h, options, inventory, gate), config, settings.interval)
        for h in hosts
    ]
    tags = {h.name: h.tags for h in hosts}
    groups = {h.name: h.groups for h in hosts}
    notices = [str(w) for w in inventory.warnings]
    return FleetdeckApp(settings, config, watches, tags, groups, notices)
