"""The wizards fleetdeck offers, by domain: what `fleetdeck wizard DOMAIN` and the TUI list,
and the parameters the settings file gives them for a host."""

from __future__ import annotations

from collections.abc import Sequence

from fleetdeck.checks.config import Config
from fleetdeck.checks.containers.wizard import CONTAINERS_WIZARD
from fleetdeck.checks.database.wizard import DATABASE_WIZARD
from fleetdeck.checks.network.wizard import NETWORK_WIZARD
from fleetdeck.checks.services.wizard import service_wizard
from fleetdeck.checks.storage.wizard import STORAGE_WIZARD
from fleetdeck.checks.wizards import Wizard

WIZARDS: dict[str, Wizard] = {
    w.domain: w
    for w in (
        NETWORK_WIZARD,
        STORAGE_WIZARD,
        DATABASE_WIZARD,
        CONTAINERS_WIZARD,
        service_wizard(NETWORK_WIZARD, STORAGE_WIZARD),
    )
}


def configured_params(
    wizard: Wizard, config: Config, host: str, labels: Sequence[str]
) -> dict[str, str]:
    """The wizard's parameters that the settings file gives for this host ([storage],
    [services])."""
    known = {p.name for p in wizard.params}
    given = {
        **config.storage.for_host(host, labels).params(),
        **config.services.for_host(host, labels).params(),
    }
    try:
        return wizard.parse_params({k: v for k, v in given.items() if k in known})
    except ValueError as error:
        where = config.source or "the settings file"
        raise ValueError(f"{where}: [{wizard.domain}] for {host}: {error}") from None
