"""`FleetdeckScreen`: a screen that reaches the console through a typed `console` property.

Textual types `Screen.app` as any `App`, so the console's own methods (a host's
`HostAccess`, `open_wizard`, `open_audit`) were invisible to the type checker. `Console` says
what the screens ask of the console; `FleetdeckApp` (tui/app.py) is the one app that has it.
It is a protocol rather than the app's class so that screens do not import the module that
imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar, cast, runtime_checkable

from textual.screen import Screen

if TYPE_CHECKING:
    from fleetdeck.checks.access import HostAccess
    from fleetdeck.checks.actions import ActionGate
    from fleetdeck.checks.config import Config
    from fleetdeck.checks.database.link import DbLink
    from fleetdeck.checks.watch import HostWatch
    from fleetdeck.hosts.docker.link import DockerLink
    from fleetdeck.tui.alert_sources import SourceReading

ResultType = TypeVar("ResultType")


@runtime_checkable
class Console(Protocol):
    """What a screen may ask of the console, beyond what every Textual app does."""

    def access(self, watch: HostWatch) -> HostAccess: ...

    def cadences(self) -> Mapping[str, float]: ...

    def database_link(
        self, watch: HostWatch, target: str = "", dump_dir: str = "", *, first: bool = False
    ) -> DbLink: ...

    def docker_link(self, watch: HostWatch) -> DockerLink: ...

    def open_wizard(
        self, watch: HostWatch, domain: str = "network", given: Mapping[str, str] | None = None
    ) -> None: ...

    def open_audit(self) -> None: ...

    config: Config
    gate: ActionGate
    """The one gate every fix passes (read-only refuses there)."""
    source_reading: SourceReading | None
    """The latest reading of the Alertmanagers, if any are configured."""

    def read_sources_now(self) -> None: ...


class FleetdeckScreen(Screen[ResultType]):
    """A screen of the console."""

    @property
    def console(self) -> Console:
        """The app, as the console it is (every fleetdeck screen is pushed by one)."""
        app = self.app
        assert isinstance(app, Console), f"{type(app).__name__} is not fleetdeck's console"
        return cast(Console, app)
