"""Resource checks over a host's samples: CPU, memory, swap, load, disk space, inodes (R01, R04).

Each check is one row of `RESOURCE_CHECKS`: an id, the threshold pair it grades against, and
a reader that turns the host's sample history into figures, one per target. `SampleCheck`
has them graded (`checks.sampled.sample_findings`), so a reader says only what it measured
and how to put it in words. Disk space and inodes are the core's (`checks.sampled`), since
the storage wizard runs them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fleetdeck.checks.model import Check, CheckContext, Evidence, Finding
from fleetdeck.checks.sampled import DISK_INODES, DISK_SPACE, Reading, sample_findings
from fleetdeck.checks.settings import Limit, ResourceThresholds
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.sample import Sample
from fleetdeck.hosts.units import human_bytes

# A reader gets the whole history (CPU is a rate over a window) and its latest sample.
Reader = Callable[[SampleHistory, Sample, ResourceThresholds], Iterator[Reading]]


@dataclass(frozen=True, slots=True)
class SampleCheck:
    """A check that grades figures read from a host's samples against one threshold pair."""

    id: str
    domain: str
    title: str
    level: Callable[[ResourceThresholds], Limit]
    read: Reader

    async def run(self, ctx: CheckContext) -> list[Finding]:
        t = ctx.thresholds
        return sample_findings(
            self.id, ctx, self.level(t), lambda history, s: self.read(history, s, t)
        )


def _cpu(history: SampleHistory, sample: Sample, t: ResourceThresholds) -> Iterator[Reading]:
    over = history.cpu_over(t.cpu_window)
    if over is None:
        yield Reading("cpu", 0.0, "CPU: measuring (needs two samples)", graded=False)
        return
    mean, span = over
    summary = f"CPU {mean:.0f}% busy on average over the last {span:.0f} s"
    # A spike is not a busy host: grade only once the window is (nearly) covered.
    filled = span >= t.cpu_window * 0.9
    if not filled:
        summary += f"; not graded until {t.cpu_window:.0f} s are covered"
    source = "CPU time counters (/proc/stat)"
    evidence = Evidence(source, f"busy {mean:.1f}% over {span:.1f} s")
    yield Reading("cpu", mean, summary, evidence, graded=filled)


def _memory(history: SampleHistory, sample: Sample, t: ResourceThresholds) -> Iterator[Reading]:
    mem = sample.memory
    summary = (
        f"memory {mem.percent:.0f}% used, {human_bytes(mem.available)} available "
        f"of {human_bytes(mem.total)}"
    )
    output = f"MemTotal {mem.total} B, MemAvailable {mem.available} B"
    yield Reading("memory", mem.percent, summary, Evidence("/proc/meminfo", output))


def _swap(history: SampleHistory, sample: Sample, t: ResourceThresholds) -> Iterator[Reading]:
    mem = sample.memory
    if not mem.swap_total:
        yield Reading("swap", 0.0, "no swap configured")
        return
    summary = (
        f"swap {mem.swap_percent:.0f}% in use "
        f"({human_bytes(mem.swap_used)} of {human_bytes(mem.swap_total)})"
    )
    output = f"SwapTotal {mem.swap_total} B, SwapFree {mem.swap_free} B"
    yield Reading("swap", mem.swap_percent, summary, Evidence("/proc/meminfo", output))


def _load(history: SampleHistory, sample: Sample, t: ResourceThresholds) -> Iterator[Reading]:
    load, cores = sample.load, sample.core_count
    # The 5-minute figure: a burst of one minute is not yet a loaded host.
    per_core = load.five / cores
    summary = (
        f"load {per_core:.2f} per core over 5 min "
        f"({load.one:.2f} {load.five:.2f} {load.fifteen:.2f} on {cores} cores)"
    )
    output = f"{load.one} {load.five} {load.fifteen}"
    yield Reading("load", per_core, summary, Evidence("/proc/loadavg", output))


RESOURCE_CHECKS: tuple[Check, ...] = (
    SampleCheck("cpu.usage", "resources", "CPU busy, sustained", lambda t: t.cpu, _cpu),
    SampleCheck("mem.usage", "resources", "Memory in use", lambda t: t.memory, _memory),
    SampleCheck("mem.swap", "resources", "Swap in use", lambda t: t.swap, _swap),
    SampleCheck("load.per_core", "resources", "Load per core", lambda t: t.load, _load),
    DISK_SPACE,
    DISK_INODES,
)
