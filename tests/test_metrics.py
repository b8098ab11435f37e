"""Rates from two samples: counters that wrap or reset never give a negative or absurd rate;
a host's history stays the same size once full and keeps the figures its readers need."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import Counter
from dataclasses import replace

import pytest

from fleetdeck.hosts.metrics import SampleHistory, counter_delta, cpu_percent, rates
from fleetdeck.hosts.sample import (
    CpuTimes,
    DiskCounters,
    LoadAvg,
    Memory,
    NetCounters,
    ProcessInfo,
    Sample,
)

from recorded import START, recorded_sampler


def _sample(at: float, busy: float, idle: float, rx: int = 0, pid_cpu: float = 0.0) -> Sample:
    return Sample(
        at=at,
        cpu=CpuTimes(user=busy, idle=idle),
        cores=(CpuTimes(user=busy, idle=idle),),
        memory=Memory(total=1000, available=500),
        load=LoadAvg(0.1, 0.2, 0.3),
        nets=(NetCounters("eth0", rx_bytes=rx, rx_errors=1),),
        disks=(DiskCounters("vda", read_bytes=rx, busy_ms=int(at * 500)),),
        processes=(ProcessInfo(7, "root", "x", "x --y", pid_cpu, 100, 5.0),),
    )


def test_counter_delta_forward_and_reset() -> None:
    assert counter_delta(100, 250) == 150
    assert counter_delta(5_000, 10) == 10  # reset (reboot, driver reload): count from zero
    assert counter_delta(2**32 - 10, 5) == 5  # no guessing at 32-bit wraps: a reset too
    assert counter_delta(2**63, 3) == 3


def test_iowait_stepping_back_does_not_turn_a_busy_core_idle() -> None:
    before = CpuTimes(user=100.0, idle=50.0, iowait=10.0)
    after = CpuTimes(user=101.0, idle=50.0, iowait=9.99)  # proc(5): iowait may decrease
    assert cpu_percent(before, after) == pytest.approx(100)


def test_cpu_percent_is_busy_share_and_zero_for_no_time() -> None:
    assert cpu_percent(CpuTimes(user=10, idle=10), CpuTimes(user=13, idle=11)) == pytest.approx(75)
    assert cpu_percent(CpuTimes(user=1), CpuTimes(user=1)) == 0.0


def test_rates_per_second_for_interfaces_disks_and_processes() -> None:
    found = rates(_sample(10.0, 0, 0, rx=1000), _sample(12.0, 1, 1, rx=5000, pid_cpu=0.5))
    assert found is not None
    assert found.cpu == pytest.approx(50)
    assert found.nets[0].rx_bps == pytest.approx(2000)
    assert found.disk("/dev/vda") is not None
    assert found.disk("/dev/vda").util == pytest.approx(50)  # type: ignore[union-attr]
    assert found.processes is not None and found.processes[0].cpu == pytest.approx(25)


def test_samples_out_of_time_order_give_no_rates_and_are_not_kept() -> None:
    history = SampleHistory()
    history.add(_sample(10.0, 0, 0))
    assert history.add(_sample(9.0, 1, 1)) is None
    assert len(history) == 1


def test_cpu_over_a_window_averages_away_a_single_spike() -> None:
    history = SampleHistory()
    busy = idle = 0.0
    for second in range(61):
        history.add(_sample(float(second), busy, idle))
        spike = second == 30
        busy += 1.0 if spike else 0.1
        idle += 0.0 if spike else 0.9
    mean, span = history.cpu_over(60)  # type: ignore[misc]
    assert span == pytest.approx(60)
    assert mean < 15  # one second at 100 % in a minute at 10 %
    assert max(history.cpu_series()) == pytest.approx(100)


def _recorded_series(count: int) -> list[Sample]:
    """`count` samples 2 s apart built from the recorded host's sample (web-01: six mounts,
    one of them stale, 13 processes): / fills by 4 KiB and one inode a sample, /run cannot
    be read every 7th sample, /boot/efi is missing every 5th, and /var/lib/postgresql is
    remounted on another device at sample 2200."""
    base = asyncio.run(recorded_sampler().sample())
    found = []
    for i in range(count):
        mounts = []
        for m in base.mounts:
            if m.mountpoint == "/":
                m = replace(m, used=m.used + 4096 * i, inodes_used=(m.inodes_used or 0) + i)
            elif m.mountpoint == "/run" and i % 7 == 0:
                m = replace(m, error="Permission denied")
            elif m.mountpoint == "/boot/efi" and i % 5 == 0:
                continue
            elif m.mountpoint == "/var/lib/postgresql" and i >= 2200:
                m = replace(m, device="/dev/vdd", total=m.total * 2)
            mounts.append(m)
        found.append(replace(base, at=START + 2.0 * i, mounts=tuple(mounts)))
    return found


def _held(history: SampleHistory) -> tuple[Counter[str], int]:
    """What a history holds: instances of each class reachable from it, and their bytes."""
    kinds: Counter[str] = Counter()
    size, seen, todo = 0, set(), [history]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        kinds[type(obj).__name__] += 1
        size += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return kinds, size


def test_a_full_history_keeps_one_whole_sample_and_stays_the_same_size() -> None:
    series = _recorded_series(2200)
    history = SampleHistory(size=600)
    for sample in series[:1150]:
        history.add(sample)
    kinds, size = _held(history)
    for sample in series[1150:]:  # 1,050 more: the same pattern of missing mounts again
        history.add(sample)
    assert _held(history) == (kinds, size)
    assert len(history) == 600 and len(history.cpu_series()) == 600
    # The latest sample only is whole (its 13 processes, 6 mounts); the rest are figures.
    assert kinds["Sample"] == 1 and kinds["ProcessInfo"] == 13 and kinds["Mount"] == 6
    latest = SampleHistory(size=1)
    latest.add(series[-1])
    assert (size - _held(latest)[1]) / 599 < 1024  # bytes a sample beyond the latest


def test_mount_points_over_a_long_recorded_series() -> None:
    series = _recorded_series(2550)
    history = SampleHistory(size=600)
    for sample in series:
        history.add(sample)
    kept = range(1950, 2550)  # the last 600 samples: 1,200 s, inside the hour's window

    def at(i: int) -> float:
        return START + 2.0 * i

    root = next(m for m in series[0].mounts if m.mountpoint == "/")
    assert history.mount_points("/") == [(at(i), float(root.used + 4096 * i)) for i in kept]
    assert history.mount_points("/", inodes=True) == [
        (at(i), float((root.inodes_used or 0) + i)) for i in kept
    ]
    assert history.mount_points("/", window=100) == [
        (at(i), float(root.used + 4096 * i)) for i in range(2499, 2550)
    ]
    run = next(m for m in series[0].mounts if m.mountpoint == "/run")
    assert history.mount_points("/run") == [(at(i), float(run.used)) for i in kept if i % 7]
    efi = next(m for m in series[1].mounts if m.mountpoint == "/boot/efi")
    assert history.mount_points("/boot/efi") == [(at(i), float(efi.used)) for i in kept if i % 5]
    assert history.mount_points("/boot/efi", inodes=True) == []  # vfat: no inode figures
    pg = next(m for m in series[0].mounts if m.mountpoint == "/var/lib/postgresql")
    assert history.mount_points("/var/lib/postgresql") == [
        (at(i), float(pg.used)) for i in range(2200, 2550)
    ]  # since the remount only
    assert history.mount_points("/mnt/nfs-archive") == []  # stale in every sample
    assert history.mount_points("/nowhere") == []
