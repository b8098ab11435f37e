"""The services domain's probes as one periodic sweep: HTTP health, TLS certificates, the
security review and the limits, for one host, with the settings `probe_config` gives it."""

from __future__ import annotations

from fleetdeck.checks.model import Check, CheckContext, Finding, run_checks
from fleetdeck.checks.services.http import http_check
from fleetdeck.checks.services.limits import limits_check
from fleetdeck.checks.services.probe_config import ProbeSettings
from fleetdeck.checks.services.security import security_check
from fleetdeck.checks.services.tls import tls_check

SWEEP_TIMEOUT = 60.0
"""Per check: the limits wait a second between readings, and each endpoint may take its
crit_ms; more than this and the check is UNKNOWN, the others still reported."""


def probe_checks(settings: ProbeSettings) -> list[Check]:
    """The checks of one host's probes, in the order they are shown."""
    return [
        http_check(settings),
        tls_check(settings),
        security_check(settings),
        limits_check(settings),
    ]


async def probe_findings(ctx: CheckContext, settings: ProbeSettings) -> list[Finding]:
    """Every probe on one host; a check that fails or overruns is one UNKNOWN finding."""
    return await run_checks(ctx, probe_checks(settings), timeout=SWEEP_TIMEOUT)
