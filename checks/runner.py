"""Headless checking: sample a host, run the checks once, report for people or machines.

This is what `fleetdeck check` runs. Its JSON shape and exit status (the Nagios plugin
convention) are a contract with cron jobs and monitoring, so they only ever grow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import (
    CheckContext,
    Finding,
    Status,
    aligned,
    run_checks,
    worst_exit_code,
)
from fleetdeck.checks.registry import CHECKS
from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.samplers import SampleGarbage, Sampler
from fleetdeck.hosts.ssh import ConnectError, SSHOptions, connect_host
from fleetdeck.hosts.stream import StreamScripts

SAMPLE_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class HostReport:
    """The findings of one host, or why it could not be checked."""

    name: str
    reachable: bool
    findings: tuple[Finding, ...] = ()
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """A host that cannot be reached is CRITICAL: nobody knows what it is doing."""
        if not self.reachable:
            return Status.CRIT.exit_code
        return worst_exit_code([f.status for f in self.findings])


@dataclass(frozen=True, slots=True)
class Report:
    hosts: tuple[HostReport, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        codes = [h.exit_code for h in self.hosts]
        for code in (2, 1, 3):
            if code in codes:
                return code
        return 0


async def check_host(
    name: str,
    sampler: Sampler,
    config: Config,
    spacing: float,
    access: HostAccess,
    skip: Collection[str] = (),
) -> HostReport:
    """Two samples `spacing` seconds apart (CPU is a rate), then every registered check;
    then every registered domain's periodic checks (but those in `skip`) that the host can
    run (`scheduler.available`): those that need the samples after them, over that
    history, the others at the same time as the samples."""
    from fleetdeck.checks.catalog import DOMAINS
    from fleetdeck.checks.scheduler import available, run_once

    domains = [d for d in DOMAINS if d.name not in skip and available(d, access)]
    after = [d for d in domains if d.periodic is not None and "samples" in d.periodic.needs]
    beside = [d for d in domains if d not in after]

    async def sampled() -> HostReport:
        report, history = await _sampled(name, sampler, config, spacing)
        if history is None:
            return report
        more = [await run_once(d, history, config, access) for d in after]
        return replace(report, findings=report.findings + tuple(f for m in more for f in m))

    if not beside:
        return await sampled()
    empty = SampleHistory(size=2)
    report, found = await asyncio.gather(
        sampled(), asyncio.gather(*(run_once(d, empty, config, access) for d in beside))
    )
    more = tuple(finding for group in found for finding in group)
    return replace(report, findings=report.findings + more)


async def _sampled(
    name: str, sampler: Sampler, config: Config, spacing: float
) -> tuple[HostReport, SampleHistory | None]:
    """The host's report from its samples, and their history (None when it has none)."""
    history = SampleHistory(size=4)
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT + spacing):
            history.add(await sampler.sample())
            await asyncio.sleep(spacing)
            history.add(await sampler.sample())
    except TimeoutError:
        return HostReport(name, False, error=f"{name}: sampling timed out"), None
    except SampleGarbage as error:  # reachable, but what it says cannot be read
        finding = Finding("host.sample", Status.UNKNOWN, name, str(error))
        return HostReport(name, True, (finding,)), None
    except Exception as error:  # the report says why, and the exit status is UNKNOWN
        return HostReport(name, False, error=str(error) or type(error).__name__), None
    findings = await run_checks(CheckContext(name, history, config.thresholds), CHECKS)
    return HostReport(name, True, tuple(findings)), history


async def check_local(
    name: str, config: Config, spacing: float, postgres: bool, skip: Collection[str] = ()
) -> HostReport:
    """This machine, through psutil and a local shell; with `postgres`, libpq's defaults."""
    from fleetdeck.hosts.samplers import PsutilSampler

    access = HostAccess.local(name, postgres=postgres)
    try:
        return await check_host(name, PsutilSampler(), config, spacing, access, skip)
    finally:
        await access.close()


FLEET_CONCURRENCY = 32  # connection attempts at once: OpenSSH's MaxStartups starts at 10:30


async def check_fleet(
    inventory: Inventory,
    hosts: Sequence[HostSpec],
    options: SSHOptions,
    config: Config,
    spacing: float,
    skip: Collection[str] = (),
) -> Report:
    """Every host at once (bounded), each through one SSH connection and one stream; one
    host's failure is that host's entry, never the others'. The domains' checks (but those
    in `skip`) reach the host through the same connection (its PostgreSQL targets and its
    Docker engine through a forward)."""
    gate = asyncio.Semaphore(FLEET_CONCURRENCY)

    async def one(spec: HostSpec) -> HostReport:
        async with gate:
            try:
                connection = await connect_host(spec, options, inventory)
            except ConnectError as error:
                return HostReport(spec.name, False, error=str(error))
        access = HostAccess.over_ssh(spec, connection)
        try:
            sampler = ProcSampler(StreamScripts(spec.name, connection))
            return await check_host(spec.name, sampler, config, spacing, access, skip)
        finally:
            await access.close()  # the Docker link, before the connection it forwards over
            connection.close()

    return Report(tuple(await asyncio.gather(*(one(h) for h in hosts))))


def to_json(report: Report) -> str:
    hosts = []
    for host in report.hosts:
        entry: dict[str, object] = {"name": host.name, "reachable": host.reachable}
        if host.error:
            entry["error"] = host.error
        entry["findings"] = [
            {"check": f.check, "status": f.status.value, "target": f.target, "summary": f.summary}
            for f in host.findings
        ]
        hosts.append(entry)
    return json.dumps({"hosts": hosts}, indent=2)


def to_table(report: Report) -> str:
    """Aligned columns for a person: the worst findings first."""
    rows = [("HOST", "STATUS", "CHECK", "TARGET", "SUMMARY")]
    for host in report.hosts:
        if not host.reachable:
            rows.append(
                (host.name, Status.UNKNOWN.value, "host.reachable", host.name, host.error or "")
            )
        for f in sorted(host.findings, key=lambda f: (-f.status.rank, f.check, f.target)):
            rows.append((host.name, f.status.value, f.check, f.target, f.summary))
    return "\n".join(aligned(rows))
