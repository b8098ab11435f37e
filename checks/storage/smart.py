"""SMART health (runbook S4), asked only of disks that can have it.

Which disks those are is read from sysfs first (`hosts.linux.disks`): a host whose disks are all
emulated (virtio, Xen, VMware, Hyper-V, a cloud volume) or made by the kernel (loop, zram,
device-mapper and md over them) has no SMART to read, and that is OK, "not applicable",
whether or not smartctl is installed. Only a host with a real disk needs smartctl: without
it the check could not run and is UNKNOWN, saying what to install.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetdeck.checks.hostcheck import ShellCheck
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.hosts.linux.disks import (
    SYSFS_SCRIPT,
    BlockDevice,
    DiskKind,
    disk_kind,
    parse_block_devices,
)
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.shell import Shell

DOMAIN = "storage"
SYSFS_ARGV = ("sh", "-c", SYSFS_SCRIPT, "sh", "/sys")
INSTALL = "Debian: smartmontools"


async def read_disks(shell: Shell) -> tuple[tuple[BlockDevice, ...] | None, Evidence]:
    """The host's /sys/block entries, or None (with the reason as evidence) where sysfs
    could not be read."""
    listing = await _run(shell, SYSFS_ARGV)
    source = "/sys/block (sysfs: driver, vendor, model, transport, rotational, slaves)"
    if not listing.ok:
        return None, Evidence(source, f"could not be read: {_evidence(listing).output}")
    try:
        disks = parse_block_devices(listing.stdout)
    except ParseError as error:
        return None, Evidence(source, f"could not be read: {error}")
    made = [d.name for d in disks if disk_kind(d)[0] is DiskKind.KERNEL]
    lines = [d.describe() for d in disks if disk_kind(d)[0] is not DiskKind.KERNEL]
    lines += [f"{', '.join(made)}: made by the kernel"] if made else []
    stacked = [f"{d.name} over {', '.join(d.slaves)}" for d in disks if d.slaves]
    lines += [f"stacked: {'; '.join(stacked)}"] if stacked else []
    return disks, Evidence(source, "\n".join(lines) or "(no block devices)")


def not_applicable(disks: Sequence[BlockDevice]) -> str | None:
    """Why no disk here can report SMART ("virtual disks only (vda)"), or None when one can."""
    kinds = {d.name: disk_kind(d)[0] for d in disks}
    if DiskKind.PHYSICAL in kinds.values():
        return None
    virtual = [name for name, kind in kinds.items() if kind is DiskKind.VIRTUAL]
    cards = [name for name, kind in kinds.items() if kind is DiskKind.NO_SMART]
    if virtual and not cards:
        return f"not applicable: virtual disks only ({', '.join(virtual)})"
    if cards:
        named = [f"{n} (virtual)" for n in virtual] + [f"{n} (SD/eMMC)" for n in cards]
        return f"not applicable: no disk here reports SMART ({', '.join(named)})"
    made = ", ".join(kinds) or "none at all"
    return f"not applicable: no disks, only block devices the kernel makes ({made})"


def _scanned(scan_stdout: str, skip: set[str]) -> list[tuple[str, ...]]:
    """`smartctl --scan`'s devices with their -d type (`/dev/bus/0 -d megaraid,1 # ...`),
    less the ones sysfs showed to be virtual (a QEMU disk behind virtio-scsi)."""
    devices = [
        tuple(line.split("#", 1)[0].split())
        for line in scan_stdout.splitlines()
        if line.startswith("/dev/")
    ]
    return [argv for argv in devices if argv[0].removeprefix("/dev/") not in skip]


async def _health(shell: Shell, argv: tuple[str, ...]) -> Finding:
    device = " ".join(argv)
    # -n standby: a disk that sleeps is left asleep (the Host screen asks every 5 min).
    health = await _run(shell, ("smartctl", "-H", "-A", "-n", "standby", *argv), timeout=30)
    if health.exit_status == 2 and "STANDBY" in health.stdout.upper():
        return Finding("disk.smart", Status.OK, device, f"{device}: in standby, not woken")
    text = health.stdout
    if "PASSED" in text or "SMART Health Status: OK" in text:
        status, summary = Status.OK, f"{device}: health PASSED"
    elif "FAILED" in text:
        status, summary = Status.CRIT, f"{device}: SMART health FAILED"
    else:
        status, summary = Status.UNKNOWN, f"{device}: no health verdict"
    return Finding("disk.smart", status, device, summary, (_evidence(health),))


async def _check_smart(ctx: CheckContext, shell: Shell) -> list[Finding]:
    disks, seen = await read_disks(shell)
    if disks is not None and (why := not_applicable(disks)) is not None:
        return [Finding("disk.smart", Status.OK, ctx.host, why, (seen,))]
    real = [d.name for d in disks or () if disk_kind(d)[0] is DiskKind.PHYSICAL]
    scan = await _run(shell, ("smartctl", "--scan"))
    if scan.exit_status == 127:
        summary = f"smartctl is not installed on {ctx.host} ({INSTALL})"
        summary += f", so the SMART health of {', '.join(real)} is not known" if real else ""
        return [Finding("disk.smart", Status.UNKNOWN, ctx.host, summary, (seen,))]
    virtual = {d.name for d in disks or () if disk_kind(d)[0] is not DiskKind.PHYSICAL}
    devices = _scanned(scan.stdout, virtual)
    if not devices:
        evidence = (_evidence(scan), seen)
        return [Finding("disk.smart", Status.UNKNOWN, ctx.host, "no SMART devices found", evidence)]
    return [await _health(shell, argv) for argv in devices]


SMART = ShellCheck("disk.smart", "SMART health", _check_smart, DOMAIN)
