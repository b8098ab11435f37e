"""The console over a fleet watched through Prometheus (`fleetdeck --prometheus URL`).

Every node_exporter target of the source's job is a host; all their watches share one
`PromFleet`, so a refresh of the whole fleet is a few PromQL queries, not one SSH session per
host. A host that is also in the inventory (same name or address) keeps its SSH link, used
only when the operator opens a wizard or a fix on it; the others say they have none.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from fleetdeck.checks.config import Config
from fleetdeck.checks.sources.config import PromSource, pick_prometheus
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.link import HostLink
from fleetdeck.hosts.prometheus.api import Prometheus
from fleetdeck.hosts.prometheus.http import SourceError
from fleetdeck.hosts.prometheus.sampler import PromFleet, PromSampler
from fleetdeck.hosts.ssh import SSHOptions
from fleetdeck.tui.app import FleetdeckApp, Settings


async def discover(source: PromSource) -> list[str]:
    """The hosts Prometheus scrapes node_exporter on; raises `SourceError` naming the URL."""
    return await PromFleet(Prometheus(source.http), source.job).hosts()


def make_prom_fleet_app(
    settings: Settings,
    config: Config,
    source: PromSource,
    hosts: Sequence[str],
    inventory: Inventory | None = None,
    options: SSHOptions | None = None,
) -> FleetdeckApp:
    """Build the console over Prometheus's hosts, all sampled from one shared batch."""
    fleet = PromFleet(Prometheus(source.http), source.job, max_age=settings.interval / 2)
    known: dict[str, HostSpec] = {}
    for spec in inventory.hosts if inventory else ():
        known.setdefault(spec.name, spec)
        known.setdefault(spec.address, spec)
    gate = asyncio.Semaphore(8)
    watches = []
    for host in hosts:
        found = known.get(host)
        link = HostLink(found, options, inventory, gate) if found and options else None
        watches.append(HostWatch(host, PromSampler(fleet, host, link), config, settings.interval))
    return FleetdeckApp(settings, config, watches)


def run_prom_console(
    args: argparse.Namespace, config: Config, settings: Settings, inventory: Inventory | None
) -> int:
    """`fleetdeck --prometheus [URL]`: find the hosts, build the console, run it; a source
    that cannot be read stops it with the URL and the cause (exit 2)."""
    source = pick_prometheus(config.sources, args.prometheus or None)
    if source is None:
        print("fleetdeck: --prometheus without URL needs [[sources.prometheus]]", file=sys.stderr)
        return 2
    try:
        hosts = asyncio.run(discover(source))
    except SourceError as error:
        print(f"fleetdeck: Prometheus: {error}", file=sys.stderr)
        return 2
    if not hosts:
        print(f"fleetdeck: {source.http.url} has no targets in job {source.job!r}", file=sys.stderr)
        return 2
    options = SSHOptions(known_hosts=args.known_hosts, accept_new=args.accept_new)
    app = make_prom_fleet_app(settings, config, source, hosts, inventory, options)
    app.run()
    return app.return_code or 0
