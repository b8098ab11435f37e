"""Resource checks over a host's samples: CPU, memory, swap, load, disk space, inodes (R01, R04).

Each check is a small object with an id, a domain and `run(ctx)`; the table `RESOURCE_CHECKS`
is the whole list. They read only the sample history, so they run the same on any host.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.config import Level
from checks.model import CheckContext, Evidence, Finding, Status
from hosts.sample import Sample
from hosts.units import human_bytes


def grade(value: float, level: Level) -> Status:
    """OK, WARN or CRIT for a figure against a warning and a critical threshold."""
    if value >= level.crit:
        return Status.CRIT
    if value >= level.warn:
        return Status.WARN
    return Status.OK


def _latest(ctx: CheckContext, check: str, target: str) -> Sample | Finding:
    sample = ctx.history.latest
    if sample is None:
        return Finding(check, Status.UNKNOWN, target, "no sample of this host yet")
    return sample


@dataclass(frozen=True, slots=True)
class CpuCheck:
    id: str = "cpu.usage"
    domain: str = "resources"
    title: str = "CPU busy, sustained"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        window = ctx.thresholds.cpu_window
        over = ctx.history.cpu_over(window)
        if over is None:
            return [Finding(self.id, Status.UNKNOWN, "cpu", "needs two samples to measure CPU")]
        mean, span = over
        status = grade(mean, ctx.thresholds.cpu)
        level = ctx.thresholds.cpu
        summary = f"CPU {mean:.0f}% busy on average over the last {span:.0f} s"
        if span < window * 0.9:
            summary += f" (window {window:.0f} s not yet filled)"
        evidence = Evidence(
            "CPU time counters (/proc/stat)",
            f"mean busy {mean:.1f}% over {span:.1f} s; warn at {level.warn:g}%, "
            f"crit at {level.crit:g}%",
        )
        return [Finding(self.id, status, "cpu", summary, (evidence,))]


@dataclass(frozen=True, slots=True)
class MemoryCheck:
    id: str = "mem.usage"
    domain: str = "resources"
    title: str = "Memory in use"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        sample = _latest(ctx, self.id, "memory")
        if isinstance(sample, Finding):
            return [sample]
        mem = sample.memory
        status = grade(mem.percent, ctx.thresholds.memory)
        summary = (
            f"memory {mem.percent:.0f}% used, {human_bytes(mem.available)} available "
            f"of {human_bytes(mem.total)}"
        )
        evidence = Evidence(
            "/proc/meminfo",
            f"MemTotal {mem.total} B, MemAvailable {mem.available} B",
        )
        return [Finding(self.id, status, "memory", summary, (evidence,))]


@dataclass(frozen=True, slots=True)
class SwapCheck:
    id: str = "mem.swap"
    domain: str = "resources"
    title: str = "Swap in use"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        sample = _latest(ctx, self.id, "swap")
        if isinstance(sample, Finding):
            return [sample]
        mem = sample.memory
        if not mem.swap_total:
            return [Finding(self.id, Status.OK, "swap", "no swap configured")]
        status = grade(mem.swap_percent, ctx.thresholds.swap)
        summary = (
            f"swap {mem.swap_percent:.0f}% in use "
            f"({human_bytes(mem.swap_used)} of {human_bytes(mem.swap_total)})"
        )
        evidence = Evidence(
            "/proc/meminfo", f"SwapTotal {mem.swap_total} B, SwapFree {mem.swap_free} B"
        )
        return [Finding(self.id, status, "swap", summary, (evidence,))]


@dataclass(frozen=True, slots=True)
class LoadCheck:
    id: str = "load.per_core"
    domain: str = "resources"
    title: str = "Load per core"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        sample = _latest(ctx, self.id, "load")
        if isinstance(sample, Finding):
            return [sample]
        load, cores = sample.load, sample.core_count
        # The 5-minute figure: a burst of one minute is not yet a loaded host.
        per_core = load.five / cores
        status = grade(per_core, ctx.thresholds.load)
        summary = (
            f"load {per_core:.2f} per core over 5 min "
            f"({load.one:.2f} {load.five:.2f} {load.fifteen:.2f} on {cores} cores)"
        )
        evidence = Evidence("/proc/loadavg", f"{load.one} {load.five} {load.fifteen}")
        return [Finding(self.id, status, "load", summary, (evidence,))]


@dataclass(frozen=True, slots=True)
class DiskSpaceCheck:
    id: str = "disk.space"
    domain: str = "storage"
    title: str = "Disk space per mount"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        sample = _latest(ctx, self.id, "mounts")
        if isinstance(sample, Finding):
            return [sample]
        found = []
        for mount in sample.mounts:
            target = mount.mountpoint
            if mount.error is not None:
                found.append(
                    Finding(self.id, Status.UNKNOWN, target, f"cannot stat {target}: {mount.error}")
                )
                continue
            status = grade(mount.percent, ctx.thresholds.disk)
            summary = (
                f"{target} {mount.percent:.0f}% used, {human_bytes(mount.free)} free "
                f"of {human_bytes(mount.total)}"
            )
            evidence = Evidence(
                f"statfs {target}",
                f"{mount.device} {mount.fstype} size {mount.total} used {mount.used} "
                f"avail {mount.free}",
            )
            found.append(Finding(self.id, status, target, summary, (evidence,)))
        return found


@dataclass(frozen=True, slots=True)
class InodeCheck:
    id: str = "disk.inodes"
    domain: str = "storage"
    title: str = "Inodes per mount"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        sample = _latest(ctx, self.id, "mounts")
        if isinstance(sample, Finding):
            return [sample]
        found = []
        for mount in sample.mounts:
            pct = mount.inodes_percent
            if mount.error is not None or pct is None:
                continue  # disk.space already says why it can't be read; some fs have no inodes
            status = grade(pct, ctx.thresholds.inodes)
            summary = (
                f"{mount.mountpoint} {pct:.0f}% of inodes used "
                f"({mount.inodes_used:,} of {mount.inodes_total:,})"
            )
            evidence = Evidence(
                f"statfs {mount.mountpoint}",
                f"inodes {mount.inodes_total} used {mount.inodes_used}",
            )
            found.append(Finding(self.id, status, mount.mountpoint, summary, (evidence,)))
        return found


RESOURCE_CHECKS = (
    CpuCheck(),
    MemoryCheck(),
    SwapCheck(),
    LoadCheck(),
    DiskSpaceCheck(),
    InodeCheck(),
)
