"""Headless checking: sample a host, run the checks once, report for people or machines.

This is what `fleetdeck check` runs. Its JSON shape and exit status (the Nagios plugin
convention) are a contract with cron jobs and monitoring, so they only ever grow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

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
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.ssh import ConnectError, SSHOptions, SSHShell, connect_host
from fleetdeck.hosts.stream import StreamScripts

if TYPE_CHECKING:
    import asyncssh

    from fleetdeck.hosts.docker.endpoint import DockerEndpoint
    from fleetdeck.hosts.postgres.targets import PgTarget

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
    shell: Shell | None = None,
    labels: Sequence[str] = (),
    databases: Sequence[PgTarget | None] = (),
    ssh: asyncssh.SSHClientConnection | None = None,
    containers: bool = False,
    docker: DockerEndpoint | None = None,
) -> HostReport:
    """Two samples `spacing` seconds apart (CPU is a rate), then every registered check;
    with a shell, the storage checks too (settings from `[storage]` for this host); the
    database checks of each of `databases` (None: this machine's libpq defaults), reached
    through `ssh` for a remote host; with `containers`, the container checks of the host's
    Docker engine (`docker`, or the default one); the last two at the same time as the
    samples."""
    sampled = _sampled(name, sampler, config, spacing, shell, labels)
    extra: list[Awaitable[list[Finding]]] = []
    if databases:
        extra.append(database_findings(name, databases, config, ssh))
    if containers:
        extra.append(container_findings(name, config, docker, ssh))
    if not extra:
        return await sampled
    report, found = await asyncio.gather(sampled, asyncio.gather(*extra))
    more = tuple(finding for group in found for finding in group)
    return replace(report, findings=report.findings + more)


async def _sampled(
    name: str,
    sampler: Sampler,
    config: Config,
    spacing: float,
    shell: Shell | None,
    labels: Sequence[str],
) -> HostReport:
    history = SampleHistory(size=4)
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT + spacing):
            history.add(await sampler.sample())
            await asyncio.sleep(spacing)
            history.add(await sampler.sample())
    except TimeoutError:
        return HostReport(name, False, error=f"{name}: sampling timed out")
    except SampleGarbage as error:  # reachable, but what it says cannot be read
        return HostReport(name, True, (Finding("host.sample", Status.UNKNOWN, name, str(error)),))
    except Exception as error:  # the report says why, and the exit status is UNKNOWN
        return HostReport(name, False, error=str(error) or type(error).__name__)
    findings = await run_checks(CheckContext(name, history, config.thresholds), CHECKS)
    if shell is not None:
        findings += await _storage(name, history, config, shell, labels)
    return HostReport(name, True, tuple(findings))


async def database_findings(
    name: str,
    targets: Sequence[PgTarget | None],
    config: Config,
    ssh: asyncssh.SSHClientConnection | None = None,
) -> list[Finding]:
    """The database checks of each target on host `name`, all at once: a target that cannot
    be reached is its own db.reachable CRIT, and nothing one target does stops the others."""
    from fleetdeck.checks.database.checks import check_database

    async def one(target: PgTarget | None) -> list[Finding]:
        try:
            return await check_database(target, name, config.database, ssh=ssh)
        except Exception as error:  # a bug or an odd server: that target's UNKNOWN, no crash
            label = target.label if target is not None else "postgres"
            said = f"database checks stopped: {type(error).__name__}: {error}"
            return [Finding("db.reachable", Status.UNKNOWN, label, said)]

    results = await asyncio.gather(*(one(t) for t in targets))
    return [finding for result in results for finding in result]


async def container_findings(
    name: str,
    config: Config,
    endpoint: DockerEndpoint | None = None,
    ssh: asyncssh.SSHClientConnection | None = None,
) -> list[Finding]:
    """The container checks of host `name`'s Docker engine, through `ssh` for a remote host.
    A host with no Docker is one OK finding saying so (see `checks.containers.checks`), so
    Docker's absence never makes a healthy host's exit status worse."""
    from fleetdeck.checks.containers.checks import ENGINE, ENGINE_ID
    from fleetdeck.checks.containers.wizard import container_findings as run_steps
    from fleetdeck.hosts.docker.link import DockerLink

    async def connection() -> asyncssh.SSHClientConnection:
        assert ssh is not None
        return ssh

    link = DockerLink(name, endpoint, ssh=connection if ssh is not None else None)
    ctx = CheckContext(name, SampleHistory(size=2), config.thresholds, docker=link)
    try:
        return await run_steps(ctx)
    except Exception as error:  # a bug or an odd engine: that host's UNKNOWN, no crash
        said = f"container checks stopped: {type(error).__name__}: {error}"
        return [Finding(ENGINE_ID, Status.UNKNOWN, ENGINE, said)]
    finally:
        await link.close()


async def _storage(
    name: str, history: SampleHistory, config: Config, shell: Shell, labels: Sequence[str]
) -> list[Finding]:
    from fleetdeck.checks.catalog import configured_params
    from fleetdeck.checks.storage.wizard import STORAGE_WIZARD, storage_findings

    try:
        params = configured_params(STORAGE_WIZARD, config, name, labels)
    except ValueError as error:
        return [Finding("storage.settings", Status.UNKNOWN, name, str(error))]
    ctx = CheckContext(name, history, config.thresholds, shell, None, params)
    return await storage_findings(ctx)


FLEET_CONCURRENCY = 32  # connection attempts at once: OpenSSH's MaxStartups starts at 10:30


async def check_fleet(
    inventory: Inventory,
    hosts: Sequence[HostSpec],
    options: SSHOptions,
    config: Config,
    spacing: float,
    storage: bool = True,
    containers: bool = True,
) -> Report:
    """Every host at once (bounded), each through one SSH connection and one stream; one
    host's failure is that host's entry, never the others'. The PostgreSQL targets a host
    lists, and its Docker engine (with `storage` and `containers`), are checked through the
    same connection (a forward)."""
    gate = asyncio.Semaphore(FLEET_CONCURRENCY)

    async def one(spec: HostSpec) -> HostReport:
        async with gate:
            try:
                connection = await connect_host(spec, options, inventory)
            except ConnectError as error:
                return HostReport(spec.name, False, error=str(error))
        try:
            sampler = ProcSampler(StreamScripts(spec.name, connection))
            shell = SSHShell(spec.name, connection) if storage else None
            return await check_host(
                spec.name,
                sampler,
                config,
                spacing,
                shell,
                spec.labels,
                databases=spec.postgres,
                ssh=connection,
                containers=storage and containers,
                docker=spec.docker,
            )
        finally:
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
