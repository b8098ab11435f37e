"""I/O per device (runbook S3): await, utilisation and queue depth, as `iostat -x` shows them,
from two readings of /proc/diskstats taken on the host `io_seconds` apart (1 s by default).

Which devices get a finding: every whole disk, busy or idle; loop, device-mapper, zram and
nbd devices only when they did I/O in the interval (a host has dozens of idle ones); never
ram disks, and never partitions, whose I/O is already counted in their disk's line.

When it warns: a device busy (utilisation) at or above `UTIL_WARN` %, or whose I/Os took over
`AWAIT_WARN_MS` on average while it did at least `AWAIT_MIN_IOPS` per second (a handful of
slow I/Os on an idle disk is not a problem). Utilisation only says the device always had
something in flight: an SSD or NVMe disk serves many requests at once, so near 100 % there is
not saturation by itself, and the summary says so and shows await and queue depth beside it.
"""

from __future__ import annotations

import asyncio

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.hosts.linux.diskstats import (
    DiskRates,
    DiskStat,
    Reading,
    io_rates,
    parse_reading,
    partition_parent,
)
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.units import human_rate

DOMAIN = "storage"
DEFAULT_SECONDS = 1.0
UTIL_WARN = 90.0
AWAIT_WARN_MS = 100.0
AWAIT_MIN_IOPS = 5.0
SHOWN_WHEN_BUSY = ("loop", "dm-", "zram", "nbd")
NEVER_SHOWN = ("ram",)
READ_ARGV = ("cat", "/proc/uptime", "/proc/diskstats")
SSD_NOTE = (
    "on an SSD or NVMe disk, which serves many requests at once, near 100 % busy is not "
    "saturation by itself: judge by await and queue"
)


def parse_io_seconds(text: str) -> str:
    """The wizard parameter `io_seconds`: seconds between the two readings, 0.2 to 20."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("seconds between readings, from 0.2 to 20") from None
    if not 0.2 <= value <= 20:
        raise ValueError("seconds between readings, from 0.2 to 20")
    return f"{value:g}"


def shown(rates: DiskRates, names: set[str]) -> bool:
    """Whether a device gets a finding (see the module's docstring)."""
    if rates.name.startswith(NEVER_SHOWN) or partition_parent(rates.name, names):
        return False
    return not (rates.name.startswith(SHOWN_WHEN_BUSY) and (rates.idle or rates.reset))


def _figure(value: float) -> str:
    """One decimal under 10, none above: '0.4', '45'."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{_figure(value)} ms"


def describe(rates: DiskRates) -> str:
    """'sda: 97 % busy, await 45 ms, queue 3.2, 12.0 MiB/s read (310/s), 1.1 MiB/s written
    (20/s)'."""
    if rates.reset:
        return (
            f"{rates.name}: its counters went back between the readings (device reset or "
            "re-attached): no figures this time"
        )
    if rates.idle:
        return f"{rates.name}: idle (no I/O in {rates.seconds:.1f} s)"
    return (
        f"{rates.name}: {_figure(rates.util_percent)} % busy, await {_ms(rates.await_ms)}, "
        f"queue {rates.queue_depth:.{2 if rates.queue_depth < 1 else 1}f}, "
        f"{human_rate(rates.read_bytes_per_s)} read ({rates.reads_per_s:.0f}/s), "
        f"{human_rate(rates.write_bytes_per_s)} written ({rates.writes_per_s:.0f}/s)"
    )


def grade(rates: DiskRates) -> tuple[Status, str]:
    """The status of one device and the summary that explains it."""
    summary, notes = describe(rates), []
    if rates.util_percent >= UTIL_WARN:
        notes.append(f"busy {UTIL_WARN:.0f} % or more of the time; {SSD_NOTE}")
    iops = rates.reads_per_s + rates.writes_per_s
    if rates.await_ms is not None and rates.await_ms > AWAIT_WARN_MS and iops >= AWAIT_MIN_IOPS:
        notes.append(f"I/Os take over {AWAIT_WARN_MS:.0f} ms on average: requests wait")
    return (Status.WARN if notes else Status.OK), "; ".join([summary, *notes])


def device_findings(host: str, before: Reading, after: Reading, seconds: float) -> list[Finding]:
    """One finding per device shown, with its two raw lines as evidence."""
    first: dict[str, DiskStat] = {d.name: d for d in before.disks}
    last: dict[str, DiskStat] = {d.name: d for d in after.disks}
    names = set(last)
    source = f"/proc/diskstats on {host}, two readings {seconds:.2f} s apart"
    findings = []
    for rates in io_rates(before.disks, after.disks, seconds):
        if not shown(rates, names):
            continue
        status, summary = grade(rates)
        lines = f"{first[rates.name].raw}\n{last[rates.name].raw}"
        findings.append(Finding("disk.io", status, rates.name, summary, (Evidence(source, lines),)))
    return findings or [Finding("disk.io", Status.OK, host, "no block devices to show")]


async def _read(shell: Shell) -> Reading:
    result = await _run(shell, READ_ARGV)
    if not result.ok:
        why = (result.stderr.strip().splitlines() or [f"exit status {result.exit_status}"])[-1]
        raise StepFailed(f"cannot read /proc/diskstats on {shell.host}: {why}")
    return parse_reading(result.stdout)


async def _check_io(ctx: CheckContext, shell: Shell) -> list[Finding]:
    try:
        wanted = float(parse_io_seconds(ctx.params.get("io_seconds") or str(DEFAULT_SECONDS)))
    except ValueError as error:
        raise StepFailed(f"io_seconds: {error}") from None
    before = await _read(shell)
    await asyncio.sleep(wanted)
    after = await _read(shell)
    # The host's own uptime times the interval: an SSH round trip does not stretch it.
    measured = (
        after.uptime - before.uptime
        if after.uptime is not None and before.uptime is not None
        else 0.0
    )
    return device_findings(ctx.host, before, after, measured if measured > 0 else wanted)


DISK_IO = ShellCheck("disk.io", "I/O per device", _check_io, DOMAIN)
