"""Rates from two samples: counters that wrap or reset never give a negative or absurd rate."""

from __future__ import annotations

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
