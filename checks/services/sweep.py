"""The services checks as one sweep, for `fleetdeck check` and the Host screen: the units
(R02) and the journal's error lines (R06), with the host's `[services]` settings as their
parameters (`ServicesSettings.params()`). The wizard's steps are left out: they are about
one unit, named by the operator."""

from __future__ import annotations

from fleetdeck.checks.model import Check, CheckContext, Finding, run_checks
from fleetdeck.checks.services.logs import LOGS
from fleetdeck.checks.services.units import UNITS

SERVICES_CHECKS: tuple[Check, ...] = (UNITS, LOGS)


async def services_findings(ctx: CheckContext) -> list[Finding]:
    """Every services check on the context's host; one that fails or overruns is UNKNOWN."""
    return await run_checks(ctx, SERVICES_CHECKS)
