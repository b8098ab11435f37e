"""`Domain`: everything the rest of fleetdeck needs to know about one domain, said in one place.

A domain (storage, database, containers...) declares itself once, in its package's
`domain.py`: its name (the wizard's name in `fleetdeck wizard NAME`, the key of its settings
and findings, the `--no-NAME` switch of `fleetdeck check`), its title, its wizard, its
periodic checks and their cadence, its settings table, its inventory keys and its pane. The
assembly modules iterate the registered domains (`checks/catalog.py` holds the one list);
none of them names a domain. No Textual here: a domain with a pane declares its headless
reader, and the console finds the widget by the domain's name (`tui/panes.py`).

A declaration is cheap to import: its wizard is a `WizardRef` and its periodic run imports
its checks when it first runs, so that reading the list (the Host screen's `compose`,
`fleetdeck check --help`) loads no client library (asyncssh, the Docker SDK, psycopg).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import FixHost
from fleetdeck.checks.model import CheckContext, Finding
from fleetdeck.checks.settings import SettingsTable

if TYPE_CHECKING:
    from fleetdeck.checks.wizards import Param, Wizard

Need = Literal["shell", "docker", "database", "samples", "params"]
"""What of a host periodic checks need: its shell (the context gets it with the host's tier;
a host with none is left out), its Docker link (the context gets it), database targets (a
host with none is left out; the checks build their links from `HostAccess`), its samples (in
`fleetdeck check` they run after the host is sampled, over that history; otherwise at the
same time, over an empty one), the parameters the domain's settings give the host
(`SettingsTable.params`; those its wizard takes checked by it)."""


@dataclass(frozen=True, slots=True)
class DomainRun:
    """What one run of a domain's periodic checks is given: the check context (host, samples,
    thresholds, and what the checks `need`: shell, tier, parameters, Docker link), the host's
    access (for links of the domain's own, such as its databases) and the domain's settings
    (what its `SettingsTable` parsed, or None for a domain without one)."""

    ctx: CheckContext
    access: HostAccess
    settings: object


@dataclass(frozen=True, slots=True)
class Periodic:
    """A domain's checks run on every host: by `fleetdeck check` once, and on an open Host
    screen every `every` seconds (None: only by `fleetdeck check`). Their findings join the
    host's and raise alerts like the sampled ones. `run` keeps its own failures as findings:
    what it raises is turned into an UNKNOWN `<domain>.checks` finding by the caller."""

    run: Callable[[DomainRun], Awaitable[list[Finding]]]
    every: float | None
    needs: frozenset[Need] = frozenset()
    every_setting: str | None = None
    """The console's setting (a field of `tui.app.Settings`) that overrides `every` on the
    Host screen, such as `storage_every`; None: `every` holds."""
    after_pane_reads: int = 0
    """On the Host screen, the first run waits for this many readings of the domain's pane
    (so that checks reading the pane's link have readings to count from)."""


@dataclass(frozen=True, slots=True)
class Pane:
    """A domain's pane on the Host screen: shown when `wanted(access)`, read at most every
    `every` seconds through the domain's headless reader; the widget is the console's."""

    every: float
    wanted: Callable[[HostAccess], bool]


Equip = Callable[[FixHost, HostAccess, object, Mapping[str, str]], FixHost]
"""See `WizardRef.equip`."""


class WizardRef:
    """A domain's wizard, named but not built until it is wanted: a wizard's steps import
    what they talk to (psycopg, the Docker SDK, asyncssh), and the registered domains are
    read before the console's first frame and by `fleetdeck check --help`, which need none
    of it. `name` is what `fleetdeck wizard NAME` takes (the built wizard's `domain`);
    `load` builds it once, imports included, and hands the same wizard every time after.
    `equip` gives the host a wizard runs on what of it the wizard needs beyond its shell (the
    database its parameters name, the Docker link), from the host's access, its domain's
    settings and the wizard's parameters; None: the shell is enough. ValueError: the
    parameters do not say which (which database to pick). `params` gives the wizard's
    parameters without building it, where building costs more than its domain's periodic
    checks import (the service wizard borrows the network wizard's steps): the settings
    file's parameters for a host are checked every time the checks run; None: `load`."""

    __slots__ = ("_build", "_built", "_params", "equip", "name")

    def __init__(
        self,
        name: str,
        build: Callable[[], Wizard],
        equip: Equip | None = None,
        params: Callable[[], tuple[Param, ...]] | None = None,
    ) -> None:
        self.name = name
        self._build = build
        self._built: Wizard | None = None
        self._params = params
        self.equip = equip

    def load(self) -> Wizard:
        if self._built is None:
            built = self._build()
            if built.domain != self.name:
                raise ValueError(f"wizard {self.name!r} built as {built.domain!r}")
            if self._params is not None and built.params != self._params():
                raise ValueError(f"wizard {self.name!r} built with other parameters")
            self._built = built
        return self._built

    def params(self) -> tuple[Param, ...]:
        """The wizard's parameters, building it only if its declaration does not say them."""
        if self._built is None and self._params is not None:
            return self._params()
        return self.load().params

    def parse_params(self, given: Mapping[str, str | None]) -> dict[str, str]:
        """`Wizard.parse_params`, with the wizard built only if `params` needs it."""
        from fleetdeck.checks.wizards import parse_params

        return parse_params(self.name, self.params(), given)


@dataclass(frozen=True, slots=True)
class Domain:
    """One domain's declaration (see the module's docstring)."""

    name: str
    title: str
    wizard: WizardRef | None = None
    periodic: Periodic | None = None
    settings: SettingsTable | None = None
    inventory_keys: tuple[str, ...] = ()
    """The keys of an inventory host's TOML entry that belong to this domain."""
    pane: Pane | None = None
    switch: str | None = None
    """The help of `fleetdeck check --no-NAME`; None: the domain has no such switch."""
    also_off_with: tuple[str, ...] = ()
    """Other domains whose `--no-X` switch leaves this one out too."""
