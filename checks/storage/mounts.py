"""Mounts (runbook S1): filesystems made read-only, with the kernel log and ext2/3/4's own
error record for their device (expected mounts that are missing: `expected_mounts`).

Read-only is judged by intent: an image filesystem (squashfs, erofs, ...) is read-only by
design, an `ro` fstab entry or a read-only bind mount (of a directory, or of a whole
filesystem that is itself read-write) is on purpose. A read-only mount nothing explains is
CRIT where /etc/fstab mounts it read-write, and a question (WARN) where fstab does not have
it, as after an operator's `mount -o ro`. A remount read-write is offered only for the
first, and only when neither the kernel log nor `dumpe2fs` shows an error for the device: a
filesystem the kernel stopped after an error needs fsck (or a new disk) first.

`/proc/mounts` escapes odd characters in its fields as octal (`\\040` for a space); every
mount point here is unescaped before it is shown or used, and escaped again only where it
is compared with /proc/mounts on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, why
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from fleetdeck.hosts.linux.kernlog import (
    BlockDevice,
    DeviceLog,
    Ext4Errors,
    Mount,
    MountView,
    device_log,
    escape,
    has_entries,
    mentions,
    message,
    parse_block_device,
    parse_dumpe2fs,
    parse_fstab,
    parse_mountinfo,
    parse_mounts,
)
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.samplers import READ_ONLY_IMAGES
from fleetdeck.hosts.shell import Shell

DOMAIN = "storage"
WRITABLE_KINDS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs"})
EXT_KINDS = frozenset({"ext2", "ext3", "ext4"})
LOG_LINES_SHOWN = 20
DMESG = ("dmesg",)
JOURNAL = ("journalctl", "-k", "-b", "--no-pager", "-o", "short-monotonic")
DUMPE2FS_FIELDS = (
    "Filesystem state",
    "Errors behavior",
    "FS Error count",
    "First error",
    "Last error",
    "Journal errno",
)

# The kernel's name for the device under a mount point (st_dev → /sys/dev/block), falling
# back to the mount source; then its device-mapper name and the disks underneath it.
RESOLVE_SCRIPT = r"""
sys=
if d=$(stat -c %d -- "$1"); then
  major=$(( (d >> 8 & 4095) | (d >> 32 & ~4095) )) minor=$(( (d & 255) | (d >> 12 & ~255) ))
  sys=$(readlink -f "/sys/dev/block/$major:$minor")
fi
if [ ! -f "$sys/dev" ] && dev=$(readlink -f -- "$2"); then
  sys=$(readlink -f "/sys/class/block/${dev##*/}")
fi
[ -f "$sys/dev" ] || { echo "no block device for $1 ($2)" >&2; exit 1; }
echo "device ${sys##*/}"
[ -e "$sys/partition" ] && { p=${sys%/*}; echo "disk ${p##*/}"; }
[ -r "$sys/dm/name" ] && echo "alias $(cat "$sys/dm/name")"
for s in "$sys"/slaves/*; do
  [ -e "$s" ] || continue
  t=$(readlink -f "$s"); echo "disk ${t##*/}"
  [ -e "$t/partition" ] && { p=${t%/*}; echo "disk ${p##*/}"; }
done
exit 0
"""
# Prints "SOURCE OPTIONS" of the top mount on $1 (escaped as in /proc/mounts).
PIN_SCRIPT = r"""
found=
while read -r src mp kind opts rest; do
  [ "$mp" = "$1" ] && found="$src $opts"
done < /proc/mounts
[ -n "$found" ] || { echo "nothing is mounted there" >&2; exit 1; }
printf '%s\n' "$found"
"""


# -- read-only mounts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelLog:
    text: str | None
    source: str = ""
    why: str = ""
    """Why it could not be read, or why the first way failed."""


async def _read_kernel_log(shell: Shell) -> KernelLog:
    dmesg = await _run(shell, DMESG, timeout=20)
    if dmesg.ok and dmesg.stdout.strip():
        return KernelLog(dmesg.stdout, "dmesg")
    first = f"dmesg: {why(dmesg) if not dmesg.ok else 'printed nothing'}"
    journal = await _run(shell, JOURNAL, timeout=20)
    if journal.ok and has_entries(journal.stdout):
        return KernelLog(journal.stdout, "journalctl -k -b", first)
    second = f"journalctl -k: {why(journal) if not journal.ok else 'no entries'}"
    return KernelLog(None, "", f"{first}; {second}")


async def _device(shell: Shell, mount: Mount) -> BlockDevice | None:
    argv = ("sh", "-c", RESOLVE_SCRIPT, "sh", mount.mountpoint, mount.source)
    result = await _run(shell, argv)
    try:
        return parse_block_device(result.stdout) if result.ok else None
    except ParseError:
        return None


def _named(found: DeviceLog) -> str:
    """The devices the error lines name: `sda1`, `sda` (the disk under it), or both."""
    names = (*found.device.own_names, *found.device.disks)
    named = [n for n in names if any(mentions(message(line), n) for line in found.errors)]
    return " and ".join(named) or found.device.name


def _log_evidence(log: KernelLog, found: DeviceLog) -> Evidence:
    names = "/".join((*found.device.own_names, *found.device.disks))
    count = len(found.lines)
    head = [f"{count} line{'s' * (count != 1)} about {names}, {len(found.errors)} of them errors"]
    if log.why:
        head.insert(0, f"read with {log.source}, because {log.why}")
    if found.since:
        head.append(f"counted after: {found.since.strip()}")
    if found.stale:
        head.append(
            f"{found.stale} older lines about {found.device.name} left out: before its "
            "last unmount or re-attach (another filesystem on the same device)"
        )
    shown = found.lines[-LOG_LINES_SHOWN:]
    if len(found.lines) > len(shown):
        head.append(f"… {len(found.lines) - len(shown)} earlier lines not shown")
    return Evidence(f"kernel log ({log.source}) about {names}", "\n".join((*head, *shown)))


async def _dumpe2fs(shell: Shell, path: str) -> tuple[Ext4Errors | None, Evidence]:
    result = await _run(shell, ("dumpe2fs", "-h", path), timeout=20)
    source = f"dumpe2fs -h {path}"
    if result.exit_status == 127:
        return None, Evidence(source, "dumpe2fs is not installed (e2fsprogs): no error record")
    try:
        errors = parse_dumpe2fs(result.stdout)
    except ParseError:
        return None, Evidence(source, f"could not read {path}: {why(result)}")
    kept = [line for line in result.stdout.splitlines() if line.startswith(DUMPE2FS_FIELDS)]
    return errors, Evidence(source, "\n".join(kept))


async def _readonly(
    shell: Shell, mount: Mount, log: KernelLog, fstab: str | None, unread: str = ""
) -> Finding:
    """A read-only mount nothing says was meant so: CRIT without a remount where the kernel
    log or ext4's record shows an error (or cannot be read); with no error, CRIT with the
    remount where /etc/fstab mounts it read-write, WARN (no remount) where fstab does not
    have it at all, as an operator's `mount -o ro` by hand is not, and UNKNOWN where
    /etc/fstab could not be read (`unread`: why), as which of the two is not known."""
    mp, what = mount.mountpoint, f"{mount.mountpoint} ({mount.source}, {mount.fstype})"
    evidence = [Evidence("/proc/mounts", mount.line)]
    device = await _device(shell, mount)
    blockers, unsure = [], []
    if mount.stopped_by_kernel:
        blockers.append(f"the kernel stopped writes after an error ({mount.stopped_by_kernel})")
    if device is None:
        unsure.append("its block device could not be found to read its kernel log lines")
    elif log.text is None:
        evidence.append(Evidence("kernel log", f"could not be read: {log.why}"))
        unsure.append(f"the kernel log could not be read ({log.why})")
    else:
        found = device_log(log.text, device)
        evidence.append(_log_evidence(log, found))
        if found.errors:
            kind = "I/O errors" if found.io_errors else "errors"
            last = message(found.errors[-1])
            last = last if len(last) <= 160 else last[:159] + "…"
            blockers.append(f"the kernel log shows {kind} on {_named(found)} (last: {last})")
    if mount.fstype in EXT_KINDS:
        errors, said = await _dumpe2fs(shell, f"/dev/{device.name}" if device else mount.source)
        evidence.append(said)
        if errors is not None and errors.has_errors:
            blockers.append(f"dumpe2fs: {errors.describe()}")
    if blockers:
        summary = (
            f"{what} is read-only and no remount is offered: {'; '.join(blockers)}. "
            "Run fsck (or replace the disk) first: remounting would put data at risk"
        )
        return Finding("disk.readonly", Status.CRIT, mp, summary, tuple(evidence))
    if unsure:
        summary = (
            f"{what} is read-only and no remount is offered: {'; '.join(unsure)}, so "
            "errors cannot be ruled out: read the kernel log for it as root first"
        )
        return Finding("disk.readonly", Status.CRIT, mp, summary, tuple(evidence))
    assert device is not None
    clean = f"the kernel log shows no errors for {device.name}" + (
        " and dumpe2fs records none" if mount.fstype in EXT_KINDS else ""
    )
    if fstab is None and unread:
        summary = (
            f"{what} is read-only and {clean}, but /etc/fstab could not be read ({unread}), "
            "so whether it should be writable is not known; no remount is offered"
        )
        return Finding("disk.readonly", Status.UNKNOWN, mp, summary, tuple(evidence))
    if fstab is None:
        summary = (
            f"{what} is read-only, not in fstab: intended? {clean[0].upper()}{clean[1:]}, and "
            "nothing says it should be writable, so no remount is offered"
        )
        return Finding("disk.readonly", Status.WARN, mp, summary, tuple(evidence))
    evidence.append(Evidence("/etc/fstab", fstab))
    summary = (
        f"{what} is mounted read-only, but /etc/fstab mounts it read-write; {clean}: "
        "someone or something remounted it, a remount read-write is offered"
    )
    return Finding("disk.readonly", Status.CRIT, mp, summary, tuple(evidence), (_remount(mount),))


def _remount(mount: Mount) -> Fix:
    mp = mount.mountpoint
    return Fix(
        id="disk.readonly.remount_rw",
        title=f"remount {mp} read-write",
        risk=Risk.DISRUPTIVE,
        commands=(("mount", "-o", "remount,rw", mp),),
        target=mp,
        pin=Pin(
            f"the mount on {mp} (device and options in /proc/mounts)",
            ("sh", "-c", PIN_SCRIPT, "sh", escape(mp)),
            mount.identity,
        ),
        verify="disk.readonly",
        impact=f"writes to {mp} start again at once, and programs that failed on it carry on. "
        "If it was made read-only on purpose (a migration, a backup, a failing disk someone "
        "noticed) that is undone; if the kernel did it after an error that has left the log, "
        "writing again can spread the damage",
        undo=(("mount", "-o", "remount,ro", mp),),
    )


async def _intended(shell: Shell) -> tuple[dict[str, str], dict[str, MountView], str]:
    """What says a read-only mount is meant to be one: /etc/fstab entries, mountinfo; and
    why /etc/fstab could not be read ("" when it was, or when there is none: no entries)."""
    fstab = await _run(shell, ("cat", "/etc/fstab"))
    info = await _run(shell, ("cat", "/proc/self/mountinfo"))
    absent = "No such file" in fstab.stderr
    return (
        parse_fstab(fstab.stdout) if fstab.ok else {},
        parse_mountinfo(info.stdout) if info.ok else {},
        "" if fstab.ok or absent else why(fstab),
    )


def _meant(mount: Mount, fstab: dict[str, str], views: dict[str, MountView]) -> str | None:
    if mount.stopped_by_kernel:
        return None
    entry = fstab.get(mount.mountpoint, "").split()
    if len(entry) > 3 and "ro" in entry[3].split(","):
        return "/etc/fstab mounts it read-only"
    view = views.get(mount.mountpoint)
    if view is not None and view.root != "/":
        return f"a read-only bind mount of {view.root} (as a container's :ro volume is)"
    if view is not None and view.mount_ro and not view.super_ro:
        return "a read-only bind mount of the whole filesystem, which is itself read-write"
    return None


def _by_design(mount: Mount) -> Finding:
    """An image filesystem (squashfs, erofs, ...): read-only and full, as it was made."""
    summary = (
        f"read-only by design ({mount.fstype} image of {mount.source}): full by design, "
        "so no space or inode verdict"
    )
    evidence = (Evidence("/proc/mounts", mount.line),)
    return Finding("disk.readonly", Status.OK, mount.mountpoint, summary, evidence)


async def _check_readonly(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _run(shell, ("cat", "/proc/mounts"))
    if not result.ok:
        raise StepFailed(f"cannot read /proc/mounts: {result.stderr.strip()}")
    findings = []
    log: KernelLog | None = None
    intended: tuple[dict[str, str], dict[str, MountView], str] | None = None
    for mount in parse_mounts(result.stdout).values():
        if mount.fstype in READ_ONLY_IMAGES:
            findings.append(_by_design(mount))
            continue
        if mount.fstype not in WRITABLE_KINDS:
            continue
        if not mount.read_only:
            findings.append(Finding("disk.readonly", Status.OK, mount.mountpoint, "read-write"))
            continue
        intended = intended or await _intended(shell)
        if meant := _meant(mount, *intended[:2]):
            summary = f"read-only on purpose: {meant}"
            evidence = (Evidence("/proc/mounts", mount.line),)
            findings.append(
                Finding("disk.readonly", Status.OK, mount.mountpoint, summary, evidence)
            )
            continue
        log = log or await _read_kernel_log(shell)
        entry = intended[0].get(mount.mountpoint)
        findings.append(await _readonly(shell, mount, log, entry, intended[2]))
    return findings or [Finding("disk.readonly", Status.OK, ctx.host, "no local filesystems")]


READONLY = ShellCheck("disk.readonly", "Read-only filesystems", _check_readonly, DOMAIN)
