"""The network domain's declaration: its wizard (it runs on demand only)."""

from __future__ import annotations

from fleetdeck.checks.domain import Domain, WizardRef
from fleetdeck.checks.wizards import Wizard


def _wizard() -> Wizard:
    from fleetdeck.checks.network.wizard import NETWORK_WIZARD

    return NETWORK_WIZARD


NETWORK = Domain("network", "Network", wizard=WizardRef("network", _wizard))
