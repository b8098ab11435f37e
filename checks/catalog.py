"""The registered domains: the one list the console, `fleetdeck check` and `fleetdeck wizard`
iterate (see `checks/domain.py`), the wizards they offer by name, and the parameters the
settings file gives a wizard for a host."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import FixHost
from fleetdeck.checks.config import Config
from fleetdeck.checks.containers.domain import CONTAINERS
from fleetdeck.checks.database.domain import DATABASE
from fleetdeck.checks.domain import Domain, WizardRef
from fleetdeck.checks.network.domain import NETWORK
from fleetdeck.checks.resources.domain import RESOURCES
from fleetdeck.checks.services.domain import SERVICES
from fleetdeck.checks.storage.domain import STORAGE
from fleetdeck.checks.wizards import Param, Wizard


def _service_wizard() -> Wizard:
    """The service wizard runs the network and storage wizards' own checks on a unit's
    dependencies; a domain imports no other domain, so they are handed in here."""
    from fleetdeck.checks.services.wizard import service_wizard

    lent = tuple(d.wizard.load() for d in (NETWORK, STORAGE) if d.wizard is not None)
    return service_wizard(*lent)


def _service_params() -> tuple[Param, ...]:
    """The service wizard's parameters, without building it (and the network wizard it
    borrows from), for checking the `[services]` settings each sweep."""
    from fleetdeck.checks.services.wizard import PARAMS

    return PARAMS


_SERVICES = replace(SERVICES, wizard=WizardRef("service", _service_wizard, params=_service_params))

DOMAINS: tuple[Domain, ...] = (RESOURCES, NETWORK, STORAGE, DATABASE, CONTAINERS, _SERVICES)
"""Every domain, in the order their findings are reported. A new domain is added here (and
its settings table, if any, in `checks/config.py`)."""


class _Wizards(Mapping[str, Wizard]):
    """The domains' wizards by name, each built (and its imports made) when first looked up:
    listing the names builds none (`WizardRef`)."""

    def __init__(self, refs: Sequence[WizardRef]) -> None:
        self._refs = {ref.name: ref for ref in refs}

    def __getitem__(self, name: str) -> Wizard:
        return self._refs[name].load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)


WIZARDS: Mapping[str, Wizard] = _Wizards([d.wizard for d in DOMAINS if d.wizard is not None])
"""The wizards by the name `fleetdeck wizard NAME` takes: the wizard's own (`Wizard.domain`),
which is its domain's name but where the wizard is about one thing of the domain (`service`,
one unit, in the `services` domain)."""


def equip_host(
    name: str, host: FixHost, access: HostAccess, config: Config, params: Mapping[str, str]
) -> FixHost:
    """The host wizard `name` runs on: `host` (its shell) with what else its declaration says
    the wizard needs (`WizardRef.equip`), given its domain's settings and the wizard's
    parameters. ValueError: the parameters do not say which (which database to pick)."""
    for domain in DOMAINS:
        ref = domain.wizard
        if ref is not None and ref.name == name:
            if ref.equip is None:
                return host
            return ref.equip(host, access, config.domains.get(domain.name), params)
    raise KeyError(name)


def domain_params(
    domain: Domain, config: Config, host: str, labels: Sequence[str]
) -> dict[str, str]:
    """The parameters a domain's settings give a host, for its periodic checks (`needs`
    "params"): those its wizard takes, checked by it (ValueError), and the others as the
    settings table gives them, which the checks reading them check (the services sweep's
    `restarts`, `log_minutes`... that the service wizard does not take). The wizard is not
    built for it where its declaration names its parameters (`WizardRef.params`)."""
    table = domain.settings
    if table is None or table.params is None:
        return {}
    given = table.params(config.domains[domain.name], host, labels)
    if domain.wizard is None:
        return dict(given)
    known = {p.name for p in domain.wizard.params()}
    others = {k: v for k, v in given.items() if k not in known and v}
    return {**others, **_checked(domain, config, host, given)}


def configured_params(
    wizard: Wizard, config: Config, host: str, labels: Sequence[str]
) -> dict[str, str]:
    """The wizard's parameters that the settings file gives for this host: those of its
    domain's settings table (`SettingsTable.params`), such as `[storage]` or `[services]`."""
    domain = next(
        (d for d in DOMAINS if d.wizard is not None and d.wizard.name == wizard.domain), None
    )
    table = domain.settings if domain is not None else None
    if domain is None or table is None or table.params is None:
        return {}
    return _checked(domain, config, host, table.params(config.domains[domain.name], host, labels))


def _checked(domain: Domain, config: Config, host: str, given: Mapping[str, str]) -> dict[str, str]:
    """Those of `given` the domain's wizard takes, checked by it; ValueError names the
    settings file, the table and the host."""
    ref, table = domain.wizard, domain.settings
    assert ref is not None and table is not None
    known = {p.name for p in ref.params()}
    try:
        return ref.parse_params({k: v for k, v in given.items() if k in known})
    except ValueError as error:
        where = config.source or "the settings file"
        raise ValueError(f"{where}: [{table.dotted}] for {host}: {error}") from None
