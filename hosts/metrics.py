"""Rates from two samples, and the bounded history each host keeps.

Counters are compared the way Prometheus' rate() does: a counter that goes down was reset
(reboot, driver reload, interface re-created) and counts from zero. CPU times are different:
the kernel lets iowait and idle step back a little, so each CPU field's change is clamped at
zero instead. No rate is ever negative or absurd.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from math import isnan, nan

from fleetdeck.hosts.sample import CpuTimes, ProcessInfo, Sample

_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def counter_delta(previous: int | float, current: int | float) -> float:
    """How far a cumulative counter moved; one that went down was reset and counts from 0."""
    if current >= previous:
        return float(current - previous)
    return float(max(current, 0))


def cpu_percent(previous: CpuTimes, current: CpuTimes) -> float:
    """Busy share of the time between two readings, 0-100."""
    moved = {f: max(getattr(current, f) - getattr(previous, f), 0.0) for f in _CPU_FIELDS}
    total = sum(moved.values())
    if total <= 0:
        return 0.0
    return 100.0 * (total - moved["idle"] - moved["iowait"]) / total


@dataclass(frozen=True, slots=True)
class NetRate:
    """Per-second traffic of one interface, and its error and drop counts."""

    name: str
    rx_bps: float
    tx_bps: float
    errors: int
    drops: int
    new_errors: int
    new_drops: int


@dataclass(frozen=True, slots=True)
class DiskRate:
    """Per-second I/O of one block device and how busy it was (0-100 %)."""

    name: str
    read_bps: float
    write_bps: float
    util: float


@dataclass(frozen=True, slots=True)
class ProcessRate:
    """One process with its CPU share over the interval and memory share of the host."""

    info: ProcessInfo
    cpu: float
    mem: float


@dataclass(frozen=True, slots=True)
class Rates:
    """What happened between two samples of one host."""

    seconds: float
    cpu: float
    cores: tuple[float, ...]
    nets: tuple[NetRate, ...]
    disks: tuple[DiskRate, ...]
    processes: tuple[ProcessRate, ...] | None

    def disk(self, device: str) -> DiskRate | None:
        """The I/O rates of the block device behind a mount's device path, if known."""
        name = device.rsplit("/", 1)[-1]
        return next((d for d in self.disks if d.name == name), None)


def rates(previous: Sample, current: Sample) -> Rates | None:
    """Rates between two samples, or None when they are not in time order."""
    seconds = current.at - previous.at
    if seconds <= 0:
        return None
    cores = tuple(cpu_percent(p, c) for p, c in zip(previous.cores, current.cores, strict=False))
    before_net = {n.name: n for n in previous.nets}
    nets = []
    for now in current.nets:
        was = before_net.get(now.name, now)
        errors = now.rx_errors + now.tx_errors
        drops = now.rx_drops + now.tx_drops
        nets.append(
            NetRate(
                name=now.name,
                rx_bps=counter_delta(was.rx_bytes, now.rx_bytes) / seconds,
                tx_bps=counter_delta(was.tx_bytes, now.tx_bytes) / seconds,
                errors=errors,
                drops=drops,
                new_errors=int(counter_delta(was.rx_errors + was.tx_errors, errors)),
                new_drops=int(counter_delta(was.rx_drops + was.tx_drops, drops)),
            )
        )
    before_disk = {d.name: d for d in previous.disks}
    disks = []
    for now_d in current.disks:
        was_d = before_disk.get(now_d.name, now_d)
        busy = counter_delta(was_d.busy_ms, now_d.busy_ms) / 1000.0
        disks.append(
            DiskRate(
                name=now_d.name,
                read_bps=counter_delta(was_d.read_bytes, now_d.read_bytes) / seconds,
                write_bps=counter_delta(was_d.write_bytes, now_d.write_bytes) / seconds,
                util=min(100.0, 100.0 * busy / seconds),
            )
        )
    return Rates(
        seconds=seconds,
        cpu=cpu_percent(previous.cpu, current.cpu),
        cores=cores,
        nets=tuple(nets),
        disks=tuple(disks),
        processes=_process_rates(previous, current, seconds),
    )


def _process_rates(
    previous: Sample, current: Sample, seconds: float
) -> tuple[ProcessRate, ...] | None:
    if current.processes is None:
        return None
    # A PID with another start time is another process: it started within the interval.
    before = {(p.pid, p.started): p for p in previous.processes or ()}
    total_mem = current.memory.total or 1
    found = []
    for proc in current.processes:
        was = before.get((proc.pid, proc.started))
        used = proc.cpu_seconds - was.cpu_seconds if was else 0.0
        found.append(
            ProcessRate(
                info=proc,
                cpu=max(0.0, 100.0 * used / seconds),
                mem=100.0 * proc.rss / total_mem,
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class FillTrend:
    """How fast something fills (bytes or inodes per second, least squares over the
    samples), and from how many samples over how long."""

    rate: float
    samples: int
    span: float

    def seconds_to(self, left: float) -> float | None:
        """Seconds until `left` more is used at this rate; None when it is not filling."""
        return left / self.rate if self.rate > 0 else None


TREND_MIN_SAMPLES = 3
TREND_MIN_SPAN = 60.0
"""A prediction needs at least this many samples over at least this many seconds."""


def fill_trend(points: list[tuple[float, float]]) -> FillTrend | None:
    """The slope of (time, used) points by least squares; None with too few to tell
    (fewer than TREND_MIN_SAMPLES, or spanning under TREND_MIN_SPAN seconds)."""
    if len(points) < TREND_MIN_SAMPLES:
        return None
    span = points[-1][0] - points[0][0]
    if span < TREND_MIN_SPAN:
        return None
    fitted = least_squares(points)
    return None if fitted is None else FillTrend(fitted[0], len(points), span)


def least_squares(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, R²) of the least-squares line through (time, value) points; None when the
    times do not differ. R² is 0 for values that do not change."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t <= 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    var_v = sum((v - mean_v) ** 2 for _, v in points)
    fit = (cov * cov) / (var_t * var_v) if var_v > 0 else 0.0
    return cov / var_t, min(fit, 1.0)


_MountId = tuple[str, str, int, int | None]
"""A mount as `mount_points` tells filesystems apart: mountpoint, device, size, inodes."""


@dataclass(frozen=True, slots=True)
class _Point:
    """What the long history keeps of one sample: its time, CPU counters and each mount's
    fill, as one array of floats (`at`, the 8 CPU fields, then used and inodes used per
    mount, NaN for none), beside the mounts it describes. A whole Sample (interfaces,
    disks, processes) is about 10 KiB; this is a few hundred bytes."""

    mounts: tuple[_MountId, ...]
    figures: array[float]

    @property
    def at(self) -> float:
        return self.figures[0]

    def cpu(self) -> CpuTimes:
        return CpuTimes(*self.figures[1 : 1 + len(_CPU_FIELDS)])


def _point(sample: Sample, before: _Point | None) -> _Point:
    """The compact record of `sample`. Only the first mount at each mountpoint counts, and
    not when it could not be read (as `mount_points` always read them). Each mount's
    identity, and the tuple of them, is the previous point's object when it did not
    change, so a window of points shares them rather than keeping 600 copies."""
    mounts: list[_MountId] = []
    figures = array("d", [sample.at, *(getattr(sample.cpu, f) for f in _CPU_FIELDS)])
    known = {m[0]: m for m in before.mounts} if before is not None else {}
    seen: set[str] = set()
    for m in sample.mounts:
        if m.mountpoint in seen:
            continue
        seen.add(m.mountpoint)
        if m.error is not None:
            continue
        identity = (m.mountpoint, m.device, m.total, m.inodes_total)
        was = known.get(m.mountpoint)
        mounts.append(was if was is not None and was == identity else identity)
        figures.append(float(m.used))
        figures.append(nan if m.inodes_used is None else float(m.inodes_used))
    kept = tuple(mounts)
    if before is not None and before.mounts == kept:
        kept = before.mounts
    return _Point(kept, figures)


class SampleHistory:
    """The last N samples of one host, oldest first, with rates between neighbours.

    Only the latest sample is kept whole (screens and checks read it; the next rates need
    it). For the rest of the window a compact `_Point` each: what `cpu_over` and
    `mount_points` read. So a host's history stays a few hundred KiB at 600 samples,
    instead of 6 MiB of whole samples (benchmarks/README.md, history_memory.py)."""

    def __init__(self, size: int = 600) -> None:
        self._latest: Sample | None = None
        self._points: deque[_Point] = deque(maxlen=size)
        self._cpu: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._points)

    def add(self, sample: Sample) -> Rates | None:
        """Keep a sample; return the rates since the one before it, if any."""
        found = rates(self._latest, sample) if self._latest is not None else None
        if self._latest is not None and found is None:
            return None  # out of order (clock stepped back): ignore rather than mislead
        self._points.append(_point(sample, self._points[-1] if self._points else None))
        self._latest = sample
        if found is not None:
            self._cpu.append(found.cpu)
        return found

    @property
    def latest(self) -> Sample | None:
        return self._latest

    def mount_points(
        self, mountpoint: str, inodes: bool = False, window: float = 3600.0
    ) -> list[tuple[float, float]]:
        """(time, used bytes or inodes) of one mount over the last `window` seconds, since
        the filesystem there last changed (another device or size: a remount, a resize),
        so a swapped filesystem never reads as one that filled in a minute."""
        newest = self._points[-1].at if self._points else 0.0
        found: list[tuple[float, float]] = []
        identity: _MountId | None = None
        column = 1 + len(_CPU_FIELDS) + (1 if inodes else 0)
        for point in reversed(self._points):
            if newest - point.at > window:
                break
            index = next((i for i, m in enumerate(point.mounts) if m[0] == mountpoint), None)
            if index is None:
                continue
            now = point.mounts[index]
            if identity is None:
                identity = now
            elif now != identity:
                break
            used = point.figures[column + 2 * index]
            if not isnan(used):
                found.append((point.at, used))
        found.reverse()
        return found

    def cpu_series(self) -> list[float]:
        """Total CPU % for each interval kept, oldest first."""
        return list(self._cpu)

    def cpu_over(self, seconds: float) -> tuple[float, float] | None:
        """(mean CPU %, seconds covered) over the most recent `seconds` of history."""
        if len(self._points) < 2:
            return None
        newest = self._points[-1]
        # Mean of busy share over a span = busy time over total time: sum the counters' deltas
        # from the oldest sample inside the window to the newest.
        oldest = newest
        for point in reversed(self._points):
            if newest.at - point.at > seconds:
                break
            oldest = point
        if oldest is newest:
            oldest = self._points[-2]
        return cpu_percent(oldest.cpu(), newest.cpu()), newest.at - oldest.at
