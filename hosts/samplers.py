"""Samplers: where a `Sample` comes from.

`PsutilSampler` reads this machine through psutil. `ProcSampler` (in `hosts.proc_sampler`)
reads any Linux host from the text of /proc and `df`, locally or over SSH, into the same
`Sample`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from fleetdeck.hosts.linux import procfs
from fleetdeck.hosts.sample import (
    CpuTimes,
    DiskCounters,
    HostInfo,
    LoadAvg,
    Memory,
    Mount,
    NetCounters,
    ProcessInfo,
    Sample,
)

# Filesystems that are views of the kernel (or a container's root) rather than space to fill.
PSEUDO_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "sysfs",
        "tracefs",
        "overlay",
    }
)
READ_ONLY_IMAGES = frozenset({"squashfs", "erofs", "iso9660", "cramfs", "romfs"})
"""Filesystems that are made whole and mounted read-only, always full: there is no space in
them to run out of, so they are not sampled (as node_exporter leaves them out too);
`disk.readonly` names them, OK by design."""
NOT_SAMPLED = PSEUDO_FSTYPES | READ_ONLY_IMAGES
STAT_TIMEOUT = 2.0


class SampleError(Exception):
    """A host could not be sampled; the message names the host and the cause."""


class SampleGarbage(SampleError):
    """The host answered, but not with anything fleetdeck can read: its state is UNKNOWN,
    and the connection is fine (no reconnecting)."""


class Sampler(Protocol):
    """Produces samples of one host."""

    processes: bool
    """Whether samples include the process list (costly: only when someone looks at it)."""

    async def sample(self) -> Sample: ...

    async def describe(self) -> HostInfo: ...


class _DaemonPool:
    """Daemon threads for blocking calls, kept for the next call: asyncio's default executor
    joins its threads at exit, which would make a hung NFS mount hang `fleetdeck check` and
    `q` forever, and a new thread per call (a statvfs per mount, every second) cost the
    console more than the calls. A call finds an idle thread or starts one, so a hung call
    holds one thread and never delays another; a thread idle for `linger` s ends."""

    def __init__(self, name: str, linger: float = 30.0) -> None:
        self.name = name
        self.linger = linger
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        """One token per thread waiting for a call."""

    def submit(self, call: Callable[[], None]) -> None:
        if not self._idle.acquire(blocking=False):
            threading.Thread(target=self._serve, name=self.name, daemon=True).start()
        self._calls.put(call)

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self.linger)
            except queue.Empty:
                if self._idle.acquire(blocking=False):
                    return  # took back its own token: nobody counts on this thread
                continue  # a caller took the token: its call is on the way
            call()
            self._idle.release()


_STAT_THREADS = _DaemonPool("statvfs")


def _in_daemon_thread(
    call: Callable[[str], os.statvfs_result], path: str
) -> asyncio.Future[os.statvfs_result]:
    """Run a blocking call on one of the daemon threads of `_STAT_THREADS`."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[os.statvfs_result] = loop.create_future()

    def deliver(result: os.statvfs_result | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = call(path), None
        except BaseException as caught:  # handed to the waiting coroutine
            result, error = None, caught
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    _STAT_THREADS.submit(work)
    return future


def kernel_disk_name(device: str) -> str:
    """`/dev/mapper/vg-root` -> `dm-0`: the name /proc/diskstats uses, by following the
    device's symlinks on this machine; not a /dev path, nothing."""
    if not device.startswith("/dev/"):
        return ""
    return os.path.basename(os.path.realpath(device))


def keep_mount(mount: Mount) -> bool:
    """Whether a mount is worth showing: real storage, or one that failed to answer."""
    return mount.error is not None or (mount.fstype not in NOT_SAMPLED and mount.total > 0)


def inode_counts(result: os.statvfs_result) -> tuple[int | None, int | None]:
    """Inode total and use where the filesystem has an inode limit. One without (erofs says
    -1, btrfs 0) has no inode figures: never a negative count or share."""
    total, free = result.f_files, result.f_ffree
    if total <= 0 or not 0 <= free <= total:
        return None, None
    return total, total - free


class PsutilSampler:
    """Samples this machine with psutil; statvfs of a hung mount never blocks the loop."""

    def __init__(
        self,
        processes: bool = False,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    ) -> None:
        self.processes = processes
        self._stat = statvfs
        self._hung: dict[str, asyncio.Future[os.statvfs_result]] = {}
        self._static: dict[tuple[int, float], tuple[str, str, str]] = {}

    async def describe(self) -> HostInfo:
        try:
            os_name = procfs.parse_os_release(
                await asyncio.to_thread(Path("/etc/os-release").read_text, encoding="utf-8")
            )
        except OSError:
            os_name = f"{platform.system()} {platform.release()}"
        return HostInfo(
            hostname=socket.gethostname(),
            os=os_name,
            kernel=platform.release(),
            boot_time=psutil.boot_time(),
        )

    async def sample(self) -> Sample:
        at = time.time()
        cpu = _cpu(psutil.cpu_times())
        cores = tuple(_cpu(c) for c in psutil.cpu_times(percpu=True))
        vm, sw = psutil.virtual_memory(), psutil.swap_memory()
        load = LoadAvg(*psutil.getloadavg())
        nets = tuple(
            NetCounters(
                name=name,
                rx_bytes=c.bytes_recv,
                tx_bytes=c.bytes_sent,
                rx_packets=c.packets_recv,
                tx_packets=c.packets_sent,
                rx_errors=c.errin,
                tx_errors=c.errout,
                rx_drops=c.dropin,
                tx_drops=c.dropout,
            )
            for name, c in psutil.net_io_counters(pernic=True).items()
        )
        disks = tuple(
            DiskCounters(
                name=name,
                reads=c.read_count,
                writes=c.write_count,
                read_bytes=c.read_bytes,
                write_bytes=c.write_bytes,
                busy_ms=getattr(c, "busy_time", 0),
            )
            for name, c in (psutil.disk_io_counters(perdisk=True, nowrap=False) or {}).items()
        )
        mounts = await self._mounts()
        processes = await asyncio.to_thread(self._processes) if self.processes else None
        return Sample(
            at=at,
            cpu=cpu,
            cores=cores,
            memory=Memory(vm.total, vm.available, sw.total, sw.free),
            load=load,
            nets=nets,
            disks=disks,
            mounts=mounts,
            processes=processes,
        )

    async def _mounts(self) -> tuple[Mount, ...]:
        seen: set[str] = set()
        parts = []
        for part in psutil.disk_partitions(all=True):
            # A block device mounted twice is a bind mount (containers, `ip netns`): df
            # shows it once, at its first mount point, and so do we.
            device = part.device if part.device.startswith("/dev/") else None
            if part.fstype in NOT_SAMPLED or part.mountpoint in seen or device in seen:
                continue
            seen.add(part.mountpoint)
            if device:
                seen.add(device)
            parts.append(part)
        found = await asyncio.gather(*(self._statvfs(p.mountpoint) for p in parts))
        mounts = []
        for part, result in zip(parts, found, strict=True):
            if isinstance(result, str):
                mounts.append(Mount(part.mountpoint, part.device, part.fstype, error=result))
                continue
            total = result.f_blocks * result.f_frsize
            if total <= 0:
                continue
            free = result.f_bavail * result.f_frsize
            used = (result.f_blocks - result.f_bfree) * result.f_frsize
            inodes_total, inodes_used = inode_counts(result)
            mounts.append(
                Mount(
                    mountpoint=part.mountpoint,
                    device=part.device,
                    fstype=part.fstype,
                    total=total,
                    used=used,
                    free=free,
                    disk=kernel_disk_name(part.device),
                    inodes_total=inodes_total,
                    inodes_used=inodes_used,
                )
            )
        return tuple(mounts)

    async def _statvfs(self, path: str) -> os.statvfs_result | str:
        """statvfs with a timeout. A mount that hung stays marked until it answers, so a
        stale NFS mount costs one stuck thread, not one per refresh; and that thread is a
        daemon, so neither `check` nor quitting the console waits for it."""
        pending = self._hung.get(path)
        if pending is not None and not pending.done():
            return f"statvfs has not answered for over {STAT_TIMEOUT:g} s (hung mount?)"
        self._hung.pop(path, None)
        future = _in_daemon_thread(self._stat, path)
        try:
            return await asyncio.wait_for(asyncio.shield(future), STAT_TIMEOUT)
        except TimeoutError:
            self._hung[path] = future
            return f"statvfs did not answer within {STAT_TIMEOUT:g} s (hung mount?)"
        except OSError as error:
            return error.strerror or str(error)

    def _processes(self) -> tuple[ProcessInfo, ...]:
        """The process list. Owner, name and command line never change for a process, so
        they are read once per (PID, start time); each sample reads only CPU and memory."""
        found = []
        seen: set[tuple[int, float]] = set()
        for proc in psutil.process_iter(["cpu_times", "memory_info", "create_time"]):
            info = proc.info
            times, mem = info.get("cpu_times"), info.get("memory_info")
            if times is None or mem is None:
                continue  # gone, or a zombie: nothing to show
            key = (proc.pid, info.get("create_time") or 0.0)
            seen.add(key)
            static = self._static.get(key)
            if static is None:
                static = self._static[key] = _identity(proc)
            user, name, command = static
            found.append(
                ProcessInfo(
                    pid=proc.pid,
                    user=user,
                    name=name,
                    command=command,
                    cpu_seconds=times.user + times.system,
                    rss=mem.rss,
                    started=key[1],
                )
            )
        self._static = {k: v for k, v in self._static.items() if k in seen}
        return tuple(found)


def _identity(proc: psutil.Process) -> tuple[str, str, str]:
    """(user, name, command line) of a process; what cannot be read shows as '?'."""
    with proc.oneshot():
        try:
            user = proc.username()
        except (psutil.Error, KeyError):  # KeyError: a UID with no passwd entry
            user = "?"
        try:
            name = proc.name()
            command = " ".join(proc.cmdline()) or f"[{name}]"
        except psutil.Error:
            name, command = "?", "?"
    return user, name, command


def _cpu(t: object) -> CpuTimes:
    return CpuTimes(
        **{
            name: float(getattr(t, name, 0.0))
            for name in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
        }
    )
