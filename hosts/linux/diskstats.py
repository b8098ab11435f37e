"""Block device I/O from /proc/diskstats: the counters of one reading, and the figures
`iostat -x` shows (IOPS, throughput, await, utilisation, queue depth) between two readings.

Pure functions, like those in `hosts.linux.procfs`: text in, data out. The kernel has printed four
layouts (Documentation/admin-guide/iostats.rst); counting the major, minor and name columns:

    7 fields   partitions before 2.6.25: reads, sectors read, writes, sectors written
    14 fields  reads, merged, sectors, ms; writes, merged, sectors, ms; in flight, io ms,
               weighted io ms
    18 fields  4.18+: the 14, then discards, merged, sectors, ms
    20 fields  5.5+: the 18, then flushes, flush ms

Sectors are 512 bytes whatever the device's own sector size. The millisecond fields are
printed as 32-bit numbers and wrap after about 49 days of busy time, and every counter
restarts from zero when a device is re-created (a loop device re-attached): `io_rates` takes a
small step past 2**32 as a wrap and anything else that went down as a reset, so no figure is
ever negative or absurd.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields

from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.sample import DiskCounters

__all__ = [
    "DiskRates",
    "DiskStat",
    "Reading",
    "counter_step",
    "device_rates",
    "disk_counters",
    "io_rates",
    "parse_diskstats",
    "parse_reading",
    "partition_parent",
]

SECTOR_BYTES = 512
WRAP = 2**32
"""Where the kernel's 32-bit fields (the ms ones everywhere, all of them on 32-bit) wrap."""

_OLD_PARTITION = ("reads", "sectors_read", "writes", "sectors_written")
_UPTIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+\d+(?:\.\d+)?\s*$")


@dataclass(frozen=True, slots=True)
class DiskStat:
    """One line of /proc/diskstats; counters an older layout lacks are 0. `raw` is the line."""

    major: int
    minor: int
    name: str
    reads: int = 0
    reads_merged: int = 0
    sectors_read: int = 0
    read_ms: int = 0
    writes: int = 0
    writes_merged: int = 0
    sectors_written: int = 0
    write_ms: int = 0
    in_flight: int = 0
    io_ms: int = 0
    queue_ms: int = 0
    discards: int = 0
    discards_merged: int = 0
    sectors_discarded: int = 0
    discard_ms: int = 0
    flushes: int = 0
    flush_ms: int = 0
    raw: str = ""


_COUNTERS = tuple(f.name for f in fields(DiskStat))[3:-1]  # reads .. flush_ms


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading: the host's uptime (seconds, None if not given) and every device."""

    uptime: float | None
    disks: tuple[DiskStat, ...]


def _parse_line(line: str) -> DiskStat | None:
    words = line.split()
    if len(words) != 7 and len(words) < 14:
        return None
    numbers = [int(w) for w in words[:2] + words[3:] if w.isascii() and w.isdigit()]
    if len(numbers) != len(words) - 1:
        return None  # a sign, a letter, a float: not a line the kernel printed
    names = _OLD_PARTITION if len(words) == 7 else _COUNTERS
    counters = dict(zip(names, numbers[2:], strict=False))  # later kernels may add fields
    return DiskStat(numbers[0], numbers[1], words[2], raw=line.strip(), **counters)


def parse_diskstats(text: str) -> tuple[DiskStat, ...]:
    """Every device in /proc/diskstats text. Lines it cannot read are skipped; a text with no
    device line at all raises `ParseError`."""
    disks = tuple(d for line in text.splitlines() if (d := _parse_line(line)) is not None)
    if not disks:
        raise ParseError("/proc/diskstats: no device lines")
    return disks


def disk_counters(text: str) -> tuple[DiskCounters, ...]:
    """The cumulative counters a `Sample` keeps per device, from /proc/diskstats text read
    by the same rules as `parse_diskstats`. A text with no device line gives no devices
    rather than an error: the rest of the host's sample is still good."""
    return tuple(
        DiskCounters(
            name=d.name,
            reads=d.reads,
            writes=d.writes,
            read_bytes=d.sectors_read * SECTOR_BYTES,
            write_bytes=d.sectors_written * SECTOR_BYTES,
            busy_ms=d.io_ms,
        )
        for line in text.splitlines()
        if (d := _parse_line(line)) is not None
    )


def parse_reading(text: str) -> Reading:
    """`cat /proc/uptime /proc/diskstats`: the uptime line (if first), then the devices."""
    first, _, rest = text.lstrip("\n").partition("\n")
    match = _UPTIME.match(first)
    if match is None:
        return Reading(None, parse_diskstats(text))
    return Reading(float(match[1]), parse_diskstats(rest))


def partition_parent(name: str, names: Collection[str]) -> str | None:
    """The whole disk a partition belongs to, by the kernel's naming rule (sda -> sda1, and
    a 'p' after a disk name ending in a digit: nvme0n1 -> nvme0n1p1), if that disk is listed."""
    base = name.rstrip("0123456789")
    if base == name or not base:
        return None
    if base.endswith("p") and base[:-1][-1:].isdigit():
        base = base[:-1]
    elif base[-1].isdigit():
        return None
    return base if base in names and base != name else None


@dataclass(frozen=True, slots=True)
class DiskRates:
    """What one device did between two readings, as `iostat -x` shows it.

    `await_ms` is the mean time an I/O took, queue included (reads, writes and discards, as
    sysstat 12 counts it); None when no I/O completed. `util_percent` is the share of the
    interval the device had any I/O in flight, capped at 100; `queue_depth` is the mean number
    in flight (aqu-sz). `reset` says a counter went back (device re-created): the figures
    are then all 0, not a measurement."""

    name: str
    seconds: float
    reads_per_s: float = 0.0
    writes_per_s: float = 0.0
    read_bytes_per_s: float = 0.0
    write_bytes_per_s: float = 0.0
    read_await_ms: float | None = None
    write_await_ms: float | None = None
    await_ms: float | None = None
    util_percent: float = 0.0
    queue_depth: float = 0.0
    ios: int = 0
    reset: bool = False

    @property
    def idle(self) -> bool:
        """Nothing completed and nothing was in flight during the interval."""
        quiet = self.read_bytes_per_s == 0 and self.write_bytes_per_s == 0
        return self.ios == 0 and quiet and self.util_percent == 0 and not self.reset


def counter_step(before: int, after: int) -> int | None:
    """How far a counter moved; a short step past 2**32 is a wrap, any other fall a reset
    (None)."""
    if after >= before:
        return after - before
    if before < WRAP and (wrapped := after + WRAP - before) < WRAP // 2:
        return wrapped
    return None


def _await(ms: int, ios: int) -> float | None:
    return ms / ios if ios else None


def device_rates(before: DiskStat, after: DiskStat, seconds: float) -> DiskRates:
    """The figures of one device over `seconds` (> 0) between its two readings."""
    steps = {name: counter_step(getattr(before, name), getattr(after, name)) for name in _COUNTERS}
    steps.pop("in_flight")  # a gauge, not a counter
    if (before.major, before.minor) != (after.major, after.minor) or None in steps.values():
        return DiskRates(after.name, seconds, reset=True)
    d = {name: step or 0 for name, step in steps.items()}
    ios = d["reads"] + d["writes"] + d["discards"]
    elapsed_ms = seconds * 1000
    return DiskRates(
        name=after.name,
        seconds=seconds,
        reads_per_s=d["reads"] / seconds,
        writes_per_s=d["writes"] / seconds,
        read_bytes_per_s=d["sectors_read"] * SECTOR_BYTES / seconds,
        write_bytes_per_s=d["sectors_written"] * SECTOR_BYTES / seconds,
        read_await_ms=_await(d["read_ms"], d["reads"]),
        write_await_ms=_await(d["write_ms"], d["writes"]),
        await_ms=_await(d["read_ms"] + d["write_ms"] + d["discard_ms"], ios),
        util_percent=min(100.0, 100.0 * d["io_ms"] / elapsed_ms),
        queue_depth=d["queue_ms"] / elapsed_ms,
        ios=ios,
    )


def io_rates(
    before: Sequence[DiskStat], after: Sequence[DiskStat], seconds: float
) -> tuple[DiskRates, ...]:
    """Per-device figures between two readings `seconds` apart, in the second reading's
    order; a device in only one of them (attached or removed meanwhile) is left out."""
    if not seconds > 0:
        raise ValueError(f"readings must be apart in time, not {seconds!r} s")
    first = {disk.name: disk for disk in before}
    return tuple(
        device_rates(first[disk.name], disk, seconds) for disk in after if disk.name in first
    )
