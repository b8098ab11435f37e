"""Grading figures read from a host's samples, and the two such checks two domains share.

A reader turns a host's sample history into `Reading`s, one figure per target; `sample_findings`
grades them against one threshold pair, so a reader says only what it measured and how to put
it in words. The resource checks (`checks.resources.checks`) are built on it, and so are
`DISK_SPACE` and `DISK_INODES`: the Host screen grades them on every sample, and the storage
wizard's space step runs them again on a sample of its own, so they live here in the core,
where both domains may import them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.metrics import TREND_MIN_SAMPLES, TREND_MIN_SPAN, SampleHistory, fill_trend
from fleetdeck.hosts.sample import Sample
from fleetdeck.hosts.units import human_bytes

__all__ = ["DISK_INODES", "DISK_SPACE", "MountCheck", "Reading", "sample_findings", "time_to_full"]


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


def sample_findings(
    check_id: str,
    ctx: CheckContext,
    level: Limit,
    read: Callable[[SampleHistory, Sample], Iterator[Reading]],
) -> list[Finding]:
    """One finding per reading of the host's latest sample, graded against `level` (the
    limits are added to its evidence); UNKNOWN while the host has no sample yet."""
    latest = ctx.history.latest
    if latest is None:
        return [Finding(check_id, Status.UNKNOWN, ctx.host, "no sample of this host yet")]
    found = []
    for r in read(ctx.history, latest):
        if r.value is None:
            status = Status.UNKNOWN
        else:
            status = level.grade(r.value) if r.graded else Status.OK
            status = max(status, r.also, key=lambda s: s.rank)
        evidence: tuple[Evidence, ...] = ()
        if r.evidence is not None:
            limits = f"; warn at {level.warn:g}, crit at {level.crit:g}"
            evidence = (Evidence(r.evidence.source, r.evidence.output + limits),)
        found.append(Finding(check_id, status, r.target, r.summary, evidence))
    return found


@dataclass(frozen=True, slots=True)
class MountCheck:
    """A check of every mount in the latest sample, graded against the pair `level` picks
    from the settings, with the filesystem's time to full (`time_to_full`) beside it."""

    id: str
    domain: str
    title: str
    level: Callable[[CheckContext], Limit]
    read: Callable[[SampleHistory, Sample, Limit], Iterator[Reading]]

    async def run(self, ctx: CheckContext) -> list[Finding]:
        fill = ctx.thresholds.time_to_full
        return sample_findings(
            self.id, ctx, self.level(ctx), lambda history, s: self.read(history, s, fill)
        )


def _disk_space(history: SampleHistory, sample: Sample, fill: Limit) -> Iterator[Reading]:
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
            history.mount_points(m.mountpoint), m.free, fill, human_bytes
        )
        evidence = Evidence(f"statfs {m.mountpoint}", f"{output}\n{detail}")
        yield Reading(m.mountpoint, m.percent, f"{summary}; {trend}", evidence, also=status)


def _inodes(history: SampleHistory, sample: Sample, fill: Limit) -> Iterator[Reading]:
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
            history.mount_points(m.mountpoint, inodes=True), left, fill, _inodes_text
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


DISK_SPACE = MountCheck(
    "disk.space", "storage", "Disk space per mount", lambda ctx: ctx.thresholds.disk, _disk_space
)
DISK_INODES = MountCheck(
    "disk.inodes", "storage", "Inodes per mount", lambda ctx: ctx.thresholds.inodes, _inodes
)
