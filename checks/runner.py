"""Headless checking: sample a host, run the checks once, report for people or machines.

This is what `fleetdeck check` runs. Its JSON shape and exit status (the Nagios plugin
convention) are a contract with cron jobs and monitoring, so they only ever grow.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from checks.config import Config
from checks.model import CheckContext, Finding, Status, worst_exit_code
from checks.registry import run_checks
from hosts.metrics import SampleHistory
from hosts.samplers import Sampler

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
        if not self.reachable:
            return Status.UNKNOWN.exit_code
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


async def check_host(name: str, sampler: Sampler, config: Config, spacing: float) -> HostReport:
    """Two samples `spacing` seconds apart (CPU is a rate), then every registered check."""
    history = SampleHistory(size=4)
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT + spacing):
            history.add(await sampler.sample())
            await asyncio.sleep(spacing)
            history.add(await sampler.sample())
    except TimeoutError:
        return HostReport(name, False, error=f"{name}: sampling timed out")
    except Exception as error:  # the report says why, and the exit status is UNKNOWN
        return HostReport(name, False, error=str(error) or type(error).__name__)
    findings = await run_checks(CheckContext(name, history, config.thresholds))
    return HostReport(name, True, tuple(findings))


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
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
