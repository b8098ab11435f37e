"""The services domain's declaration: its checks on every host (units, the journal's error
lines), the service wizard, the `[services]` settings and the Services pane."""

from __future__ import annotations

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.domain import Domain, DomainRun, Pane, Periodic
from fleetdeck.checks.model import Finding
from fleetdeck.checks.services.config import TABLE, ServicesConfig

CHECKS_EVERY = 30.0
"""Seconds between sweeps while a Host screen is open: a dozen commands over the host's
shell for the units and the journal (benchmarks/services_sweep.py), a few per endpoint and
the limits' two readings a second apart for the probes; a unit that died or an endpoint
that stopped answering is an alert within half a minute."""
PANE_EVERY = 10.0
"""The Services pane reads the host's units at most this often (seconds)."""


async def _periodic(run: DomainRun) -> list[Finding]:
    """The services sweeps, in order: the units and the journal (`services_findings`, with
    the `[services]` parameters), then the probes (HTTP health, TLS, the security review,
    the limits: `probe_findings`, with the host's `http`, `tls`, `security` and `limits`)."""
    from fleetdeck.checks.services.probes import probe_findings
    from fleetdeck.checks.services.sweep import services_findings

    settings = run.settings
    assert isinstance(settings, ServicesConfig)
    probes = settings.probes.for_host(run.access.name, run.access.labels)
    return [*await services_findings(run.ctx), *await probe_findings(run.ctx, probes)]


def _wanted(access: HostAccess) -> bool:
    """Every host fleetdeck can run commands on; one without systemd says so in the pane."""
    return access.has_shell


SERVICES = Domain(
    "services",
    "Services",
    periodic=Periodic(_periodic, CHECKS_EVERY, frozenset({"shell", "params"})),
    settings=TABLE,
    pane=Pane(PANE_EVERY, _wanted),
    switch="leave out the services checks (failed, flapping and important systemd units, "
    "the journal's error lines, HTTP health, TLS certificates, the security review, "
    "limits) that ask the host. Settings: [services]",
)
"""The service wizard (`fleetdeck wizard service --unit NAME`) is given by the assembly
(`checks.catalog`), which hands it the network and storage checks it reuses."""
