"""Resource checks over a host's samples: CPU, memory, swap, load, disk space, inodes (R01, R04).

Each check is one row of `RESOURCE_CHECKS`: an id, the threshold pair it grades against, and
a reader that turns the host's sample history into figures, one per target. `SampleCheck`
does the grading, so a reader says only what it measured and how to put it in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fleetdeck.checks.config import Thresholds
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.metrics import TREND_MIN_SAMPLES, TREND_MIN_SPAN, SampleHistory, fill_trend
from fleetdeck.hosts.sample import Sample
from fleetdeck.hosts.units import human_bytes


@dataclass(frozen=True, slots=True)
class Reading:
    """One figure of one target. `value` None: it could not be measured (UNKNOWN).
    `graded` False: measured but not enough to judge (CPU before its window fills), which
    is OK with a summary that says so, so that starting up never raises an alert."""

    target: str
    value: float | None
    summary: str
    evidence: Evidence | None = None
    graded: bool = True
    also: Status = Status.OK
    """A status the reader found besides the grade (a disk filling fast): the worse wins."""


# A reader gets the whole history (CPU is a rate over a window) and its latest sample.
Reader = Callable[[SampleHistory, Sample, Thresholds], Iterator[Reading]]


@dataclass(frozen=True, slots=True)
class SampleCheck:
    """A check that grades figures read from a host's samples against one threshold pair."""

    id: str
    domain: str
    title: str
    level: Callable[[Thresholds], Limit]
    read: Reader

    async def run(self, ctx: CheckContext) -> list[Finding]:
        latest = ctx.history.latest
        if latest is None:
            return [Finding(self.id, Status.UNKNOWN, ctx.host, "no sample of this host yet")]
        level = self.level(ctx.thresholds)
        found = []
        for r in self.read(ctx.history, latest, ctx.thresholds):
            if r.value is None:
                status = Status.UNKNOWN
            else:
                status = level.grade(r.value) if r.graded else Status.OK
                status = max(status, r.also, key=lambda s: s.rank)
            evidence: tuple[Evidence, ...] = ()
            if r.evidence is not None:
                limits = f"; warn at {level.warn:g}, crit at {level.crit:g}"
                evidence = (Evidence(r.evidence.source, r.evidence.output + limits),)
            found.append(Finding(self.id, status, r.target, r.summary, evidence))
        return found


def _cpu(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
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


def _memory(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
    mem = sample.memory
    summary = (
        f"memory {mem.percent:.0f}% used, {human_bytes(mem.available)} available "
        f"of {human_bytes(mem.total)}"
    )
    output = f"MemTotal {mem.total} B, MemAvailable {mem.available} B"
    yield Reading("memory", mem.percent, summary, Evidence("/proc/meminfo", output))


def _swap(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
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


def _load(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
    load, cores = sample.load, sample.core_count
    # The 5-minute figure: a burst of one minute is not yet a loaded host.
    per_core = load.five / cores
    summary = (
        f"load {per_core:.2f} per core over 5 min "
        f"({load.one:.2f} {load.five:.2f} {load.fifteen:.2f} on {cores} cores)"
    )
    output = f"{load.one} {load.five} {load.fifteen}"
    yield Reading("load", per_core, summary, Evidence("/proc/loadavg", output))


def _disk_space(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
    for m in sample.mounts:
        if m.error is not None:
            yield Reading(m.mountpoint, None, f"cannot stat {m.mountpoint}: {m.error}")
            continue
        summary = (
            f"{m.mountpoint} {m.percent:.0f}% used, {human_bytes(m.free)} free "
            f"of {human_bytes(m.total)}"
        )
        output = f"{m.device} {m.fstype} size {m.total} used {m.used} avail {m.free}"
        trend, status, detail = time_to_full(
            history.mount_points(m.mountpoint), m.free, t.time_to_full, human_bytes
        )
        evidence = Evidence(f"statfs {m.mountpoint}", f"{output}\n{detail}")
        yield Reading(m.mountpoint, m.percent, f"{summary}; {trend}", evidence, also=status)


def _inodes(history: SampleHistory, sample: Sample, t: Thresholds) -> Iterator[Reading]:
    for m in sample.mounts:
        pct = m.inodes_percent
        if m.error is not None or pct is None:
            continue  # disk.space already says why it can't be read; some fs have no inodes
        summary = (
            f"{m.mountpoint} {pct:.0f}% of inodes used ({m.inodes_used:,} of {m.inodes_total:,})"
        )
        output = f"inodes {m.inodes_total} used {m.inodes_used}"
        left = (m.inodes_total or 0) - (m.inodes_used or 0)
        trend, status, detail = time_to_full(
            history.mount_points(m.mountpoint, inodes=True), left, t.time_to_full, _inodes_text
        )
        evidence = Evidence(f"statfs {m.mountpoint}", f"{output}\n{detail}")
        yield Reading(m.mountpoint, pct, f"{summary}; {trend}", evidence, also=status)


def _inodes_text(count: float) -> str:
    return f"{count:,.0f} inodes"


def time_to_full(
    points: list[tuple[float, float]], left: float, level: Limit, unit: Callable[[float], str]
) -> tuple[str, Status, str]:
    """(words for the summary, status, evidence line) for a filesystem's time to full at
    its recent rate: WARN under `level.warn` hours, CRIT under `level.crit` hours."""
    trend = fill_trend(points)
    if trend is None:
        span = points[-1][0] - points[0][0] if len(points) > 1 else 0.0
        words = (
            f"fill rate: too few samples ({len(points)} over {span:.0f} s, "
            f"needs {TREND_MIN_SAMPLES} over {TREND_MIN_SPAN:.0f} s)"
        )
        return words, Status.OK, words
    per_hour = trend.rate * 3600
    detail = f"least-squares rate {per_hour:.0f}/h over {trend.samples} samples, {trend.span:.0f} s"
    seconds = trend.seconds_to(left)
    if seconds is None:
        return f"not filling ({'shrinking' if per_hour < 0 else 'steady'})", Status.OK, detail
    hours = seconds / 3600
    words = f"filling at {unit(per_hour)}/h, full in about {_duration(hours)}"
    return words, level.grade(hours), detail


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.0f} days"


RESOURCE_CHECKS = (
    SampleCheck("cpu.usage", "resources", "CPU busy, sustained", lambda t: t.cpu, _cpu),
    SampleCheck("mem.usage", "resources", "Memory in use", lambda t: t.memory, _memory),
    SampleCheck("mem.swap", "resources", "Swap in use", lambda t: t.swap, _swap),
    SampleCheck("load.per_core", "resources", "Load per core", lambda t: t.load, _load),
    SampleCheck("disk.space", "storage", "Disk space per mount", lambda t: t.disk, _disk_space),
    SampleCheck("disk.inodes", "storage", "Inodes per mount", lambda t: t.inodes, _inodes),
)
