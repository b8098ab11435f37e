"""Resource checks grade samples with the R04 thresholds, and say why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetdeck.checks.config import Thresholds
from fleetdeck.checks.model import CheckContext, Finding, Status, run_checks, worst_exit_code
from fleetdeck.checks.registry import CHECKS
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.sample import CpuTimes, LoadAvg, Memory, Mount, Sample


def _sample(at: float, busy: float = 0.0, idle: float = 0.0, **changes: object) -> Sample:
    base = Sample(
        at=at,
        cpu=CpuTimes(user=busy, idle=idle),
        cores=(CpuTimes(), CpuTimes()),
        memory=Memory(total=100, available=50, swap_total=100, swap_free=100),
        load=LoadAvg(0.5, 0.5, 0.5),
        mounts=(
            Mount(
                "/",
                "/dev/vda1",
                "ext4",
                total=100,
                used=50,
                free=50,
                inodes_total=100,
                inodes_used=10,
            ),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def _run(
    *samples: Sample, thresholds: Thresholds | None = None
) -> dict[tuple[str, str], Finding]:
    history = SampleHistory()
    for sample in samples:
        history.add(sample)
    found = await run_checks(CheckContext("web-1", history, thresholds or Thresholds()), CHECKS)
    return {f.key: f for f in found}


async def test_a_quiet_host_is_all_ok() -> None:
    found = await _run(_sample(0), _sample(1, busy=0.1, idle=1.9))
    assert {f.status for f in found.values()} == {Status.OK}
    assert set(found) >= {("cpu.usage", "cpu"), ("mem.usage", "memory"), ("disk.space", "/")}


@pytest.mark.parametrize(
    ("busy", "status"), [(0.6, Status.OK), (0.75, Status.WARN), (0.95, Status.CRIT)]
)
async def test_cpu_is_graded_on_its_mean_over_the_window(busy: float, status: Status) -> None:
    samples = [_sample(float(t), busy=busy * t, idle=(1 - busy) * t) for t in range(61)]
    assert (await _run(*samples))[("cpu.usage", "cpu")].status is status


async def test_one_cpu_spike_in_a_calm_minute_is_not_an_alert() -> None:
    samples, busy, idle = [], 0.0, 0.0
    for t in range(61):
        samples.append(_sample(float(t), busy=busy, idle=idle))
        busy, idle = (busy + 1.0, idle) if t == 40 else (busy + 0.2, idle + 0.8)
    finding = (await _run(*samples))[("cpu.usage", "cpu")]
    assert finding.status is Status.OK
    assert "over the last 60 s" in finding.summary


async def test_one_sample_cannot_measure_cpu_and_says_so_without_an_alert() -> None:
    finding = (await _run(_sample(0)))[("cpu.usage", "cpu")]
    assert finding.status is Status.OK
    assert "measuring (needs two samples)" in finding.summary


async def test_a_busy_second_before_the_window_fills_is_reported_but_not_graded() -> None:
    found = await _run(_sample(0), _sample(4, busy=4.0, idle=0.0))
    finding = found[("cpu.usage", "cpu")]
    assert finding.status is Status.OK
    assert "CPU 100% busy" in finding.summary and "not graded until 60 s" in finding.summary


@pytest.mark.parametrize(
    ("available", "status"), [(25, Status.OK), (20, Status.WARN), (10, Status.CRIT)]
)
async def test_memory_80_and_90_percent(available: int, status: Status) -> None:
    sample = _sample(0, memory=Memory(total=100, available=available))
    assert (await _run(sample))[("mem.usage", "memory")].status is status


async def test_swap_in_use_warns_and_no_swap_is_fine() -> None:
    used = _sample(0, memory=Memory(100, 50, swap_total=100, swap_free=70))
    assert (await _run(used))[("mem.swap", "swap")].status is Status.WARN
    none = _sample(0, memory=Memory(100, 50))
    assert (await _run(none))[("mem.swap", "swap")].summary == "no swap configured"


async def test_load_is_graded_per_core_on_the_five_minute_figure() -> None:
    busy = _sample(0, load=LoadAvg(9.0, 2.5, 1.0))  # 1.25 per core on two cores
    finding = (await _run(busy))[("load.per_core", "load")]
    assert finding.status is Status.WARN
    assert "1.25 per core" in finding.summary


async def test_disk_space_and_inodes_per_mount() -> None:
    mounts = (
        Mount(
            "/", "/dev/vda1", "ext4", total=100, used=85, free=15, inodes_total=100, inodes_used=95
        ),
        Mount("/srv/backup disk", "/dev/vdc", "xfs", total=100, used=95, free=5),
        Mount("/mnt/nfs", error="Stale file handle"),
    )
    found = await _run(_sample(0, mounts=mounts))
    assert found[("disk.space", "/")].status is Status.WARN
    assert found[("disk.space", "/srv/backup disk")].status is Status.CRIT
    assert found[("disk.inodes", "/")].status is Status.CRIT
    unknown = found[("disk.space", "/mnt/nfs")]
    assert unknown.status is Status.UNKNOWN
    assert "Stale file handle" in unknown.summary
    assert ("disk.inodes", "/mnt/nfs") not in found


async def test_thresholds_from_the_config_change_the_grades() -> None:
    strict = replace(Thresholds(), disk=Limit(40, 45))
    assert (await _run(_sample(0), thresholds=strict))[("disk.space", "/")].status is Status.CRIT


async def test_a_check_that_breaks_becomes_unknown_and_the_others_still_run() -> None:
    class Broken:
        id, domain, title = "broken.check", "test", "Always raises"

        async def run(self, ctx: CheckContext) -> list[Finding]:
            raise RuntimeError("parser fell over")

    history = SampleHistory()
    history.add(_sample(0))
    found = await run_checks(CheckContext("web-1", history, Thresholds()), [Broken(), *CHECKS])
    broken = next(f for f in found if f.check == "broken.check")
    assert broken.status is Status.UNKNOWN
    assert "RuntimeError: parser fell over" in broken.summary
    assert any(f.check == "disk.space" and f.status is Status.OK for f in found)


def test_nagios_exit_codes_put_crit_over_warn_over_unknown() -> None:
    assert worst_exit_code([Status.OK, Status.UNKNOWN]) == 3
    assert worst_exit_code([Status.UNKNOWN, Status.WARN]) == 1
    assert worst_exit_code([Status.WARN, Status.CRIT, Status.UNKNOWN]) == 2
    assert worst_exit_code([]) == 0


def _filling(at: float, used_gib: float, inodes_used: int = 10) -> Sample:
    gib = 1 << 30
    mount = Mount(
        "/var",
        "/dev/vdb",
        "ext4",
        total=100 * gib,
        used=int(used_gib * gib),
        free=int((100 - used_gib) * gib),
        inodes_total=1_000_000,
        inodes_used=inodes_used,
    )
    return _sample(at, mounts=(mount,))


@pytest.mark.parametrize(
    ("gib_per_minute", "status", "words"),
    [
        (0.0, Status.OK, "not filling (steady)"),
        (-0.5, Status.OK, "not filling (shrinking)"),
        (0.02, Status.OK, "full in about 41.7 h"),  # 50 GiB left at 1.2 GiB/h
        (0.01, Status.OK, "full in about 3 days"),
        (0.1, Status.WARN, "full in about 8.3 h"),  # 6 GiB/h
        (0.5, Status.CRIT, "full in about 1.7 h"),  # 30 GiB/h
    ],
)
async def test_time_to_full_from_the_recent_rate(
    gib_per_minute: float, status: Status, words: str
) -> None:
    # Ten samples a minute apart, ending half full: the rate is the least-squares slope.
    samples = [_filling(60.0 * i, 50 - gib_per_minute * (9 - i)) for i in range(10)]
    finding = (await _run(*samples))[("disk.space", "/var")]
    assert finding.status is status, finding.summary
    assert words in finding.summary
    assert "least-squares rate" in finding.evidence[0].output


async def test_time_to_full_says_when_there_are_too_few_samples() -> None:
    found = await _run(_filling(0, 50), _filling(30, 70))  # fast, but only 2 over 30 s
    finding = found[("disk.space", "/var")]
    assert finding.status is Status.OK
    assert "fill rate: too few samples (2 over 30 s, needs 3 over 60 s)" in finding.summary


async def test_inodes_running_out_fast_are_critical_even_under_the_percent_threshold() -> None:
    # 100,000 more inodes a minute; 690,000 left at the end: full in 7 minutes.
    samples = [_filling(60.0 * i, 10, inodes_used=10_000 + 100_000 * i) for i in range(4)]
    finding = (await _run(*samples))[("disk.inodes", "/var")]
    assert finding.status is Status.CRIT, finding.summary
    assert "31% of inodes used" in finding.summary
    assert "filling at 6,000,000 inodes/h, full in about 7 min" in finding.summary


async def test_time_to_full_starts_again_when_another_filesystem_is_mounted_there() -> None:
    # Steady at 50 GiB for ten minutes, then a smaller, fuller filesystem on the same path:
    # its samples alone count, and three minutes of it are too few to predict.
    gib = 1 << 30
    before = [_filling(60.0 * i, 50) for i in range(10)]
    swapped = Mount("/var", "/dev/vdc", "ext4", total=10 * gib, used=9 * gib, free=gib)
    after = [_sample(600.0 + 20 * i, mounts=(swapped,)) for i in range(3)]
    finding = (await _run(*before, *after))[("disk.space", "/var")]
    assert "fill rate: too few samples (3 over 40 s" in finding.summary, finding.summary
