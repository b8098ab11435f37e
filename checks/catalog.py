"""The registered domains: the one list the console, `fleetdeck check` and `fleetdeck wizard`
iterate (see `checks/domain.py`), the wizards they offer by name, and the parameters the
settings file gives a wizard for a host."""

from __future__ import annotations

from collections.abc import Sequence

from fleetdeck.checks.config import Config
from fleetdeck.checks.containers.domain import CONTAINERS
from fleetdeck.checks.database.domain import DATABASE
from fleetdeck.checks.domain import Domain
from fleetdeck.checks.network.domain import NETWORK
from fleetdeck.checks.resources.domain import RESOURCES
from fleetdeck.checks.storage.domain import STORAGE
from fleetdeck.checks.wizards import Wizard

DOMAINS: tuple[Domain, ...] = (RESOURCES, NETWORK, STORAGE, DATABASE, CONTAINERS)
"""Every domain, in the order their findings are reported. A new domain is added here (and
its settings table, if any, in `checks/config.py`)."""

WIZARDS: dict[str, Wizard] = {d.name: d.wizard for d in DOMAINS if d.wizard is not None}


def configured_params(
    wizard: Wizard, config: Config, host: str, labels: Sequence[str]
) -> dict[str, str]:
    """The wizard's parameters that the settings file gives for this host ([storage])."""
    known = {p.name for p in wizard.params}
    given = config.storage.for_host(host, labels).params()
    try:
        return wizard.parse_params({k: v for k, v in given.items() if k in known})
    except ValueError as error:
        where = config.source or "the settings file"
        raise ValueError(f"{where}: [storage] for {host}: {error}") from None
