"""What one look at a host sees: plain, immutable data with raw cumulative counters.

Counters stay raw here (CPU seconds, bytes, I/O counts since boot) so that every sampler,
local or remote, produces the same thing; rates come from two samples in `hosts.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative CPU time in seconds, as /proc/stat and psutil count it."""

    user: float = 0.0
    nice: float = 0.0
    system: float = 0.0
    idle: float = 0.0
    iowait: float = 0.0
    irq: float = 0.0
    softirq: float = 0.0
    steal: float = 0.0

    @property
    def total(self) -> float:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )


@dataclass(frozen=True, slots=True)
class Memory:
    """Memory and swap in bytes; `available` is MemAvailable, what can be had without swapping."""

    total: int
    available: int
    swap_total: int = 0
    swap_free: int = 0

    @property
    def used(self) -> int:
        return max(self.total - self.available, 0)

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0

    @property
    def swap_used(self) -> int:
        return max(self.swap_total - self.swap_free, 0)

    @property
    def swap_percent(self) -> float:
        return 100.0 * self.swap_used / self.swap_total if self.swap_total else 0.0


@dataclass(frozen=True, slots=True)
class LoadAvg:
    """Run-queue load averages over 1, 5 and 15 minutes."""

    one: float
    five: float
    fifteen: float


@dataclass(frozen=True, slots=True)
class NetCounters:
    """Cumulative counters of one network interface."""

    name: str
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_drops: int = 0
    tx_drops: int = 0


@dataclass(frozen=True, slots=True)
class DiskCounters:
    """Cumulative I/O counters of one block device."""

    name: str
    reads: int = 0
    writes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    busy_ms: int = 0


@dataclass(frozen=True, slots=True)
class Mount:
    """Space and inodes of one mounted filesystem, or why they could not be read."""

    mountpoint: str
    device: str = ""
    fstype: str = ""
    total: int = 0
    used: int = 0
    free: int = 0
    inodes_total: int | None = None
    inodes_used: int | None = None
    error: str | None = None
    disk: str = ""
    """The kernel's name for the block device (`dm-0` for `/dev/mapper/vg-root`), where
    known: what /proc/diskstats calls it, for the mount's read and write rates."""

    @property
    def percent(self) -> float:
        """Used share as df shows it: used over what non-root users can have."""
        usable = self.used + self.free
        return 100.0 * self.used / usable if usable else 0.0

    @property
    def inodes_percent(self) -> float | None:
        """Used share of the inodes; None where there is no inode limit to measure against
        (a total of 0 or less, as btrfs and erofs report)."""
        total, used = self.inodes_total, self.inodes_used
        if total is None or total <= 0 or used is None or not 0 <= used <= total:
            return None
        return 100.0 * used / total


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process: identity (pid plus start time), owner, command and cumulative CPU time.

    `started` tells two processes with the same PID apart; its unit depends on the sampler
    (seconds since the epoch from psutil, since boot from /proc), so compare it only with
    samples from the same sampler.
    """

    pid: int
    user: str
    name: str
    command: str
    cpu_seconds: float
    rss: int
    started: float


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What the header says about a host: name, OS, kernel and when it booted."""

    hostname: str
    os: str
    kernel: str
    boot_time: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at one host at wall-clock time `at` (seconds since the epoch)."""

    at: float
    cpu: CpuTimes
    cores: tuple[CpuTimes, ...]
    memory: Memory
    load: LoadAvg
    nets: tuple[NetCounters, ...] = ()
    disks: tuple[DiskCounters, ...] = ()
    mounts: tuple[Mount, ...] = ()
    processes: tuple[ProcessInfo, ...] | None = None

    @property
    def core_count(self) -> int:
        return max(len(self.cores), 1)
