"""The wizards fleetdeck offers, by domain: what `fleetdeck wizard DOMAIN` and the TUI list."""

from __future__ import annotations

from checks.network import NETWORK_WIZARD
from checks.storage import STORAGE_WIZARD
from checks.wizards import Wizard

WIZARDS: dict[str, Wizard] = {w.domain: w for w in (NETWORK_WIZARD, STORAGE_WIZARD)}
