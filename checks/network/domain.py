"""The network domain's declaration: its wizard (it runs on demand only)."""

from __future__ import annotations

from fleetdeck.checks.domain import Domain
from fleetdeck.checks.network.wizard import NETWORK_WIZARD

NETWORK = Domain("network", "Network", wizard=NETWORK_WIZARD)
