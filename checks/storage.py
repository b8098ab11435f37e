"""The storage wizard (runbooks S1-S6), first steps: software RAID, read-only mounts,
deleted files still held open (with a truncate fix), and SMART where smartctl is present.

Space and inodes with time to full, what uses the space, I/O per device and backups are
still to come (see the issue); the steps here ask the host through its shell like the
network wizard's, and their fixes go through the same gate.
"""

from __future__ import annotations

import contextlib
import re
import shlex

from checks.hostcheck import ShellCheck, StepFailed
from checks.hostcheck import evidence as _evidence
from checks.hostcheck import run as _run
from checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from checks.wizards import Param, Step, Wizard
from hosts.mdstat import parse_mdstat
from hosts.shell import Shell
from hosts.units import human_bytes

DOMAIN = "storage"
DELETED_MIN_BYTES = 1024 * 1024
"""Deleted files smaller than this are not worth a finding (every host has a few)."""

# -- S2 RAID --------------------------------------------------------------------------------


async def _check_raid(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _run(shell, ("cat", "/proc/mdstat"))
    if not result.ok:
        return [Finding("disk.raid", Status.OK, ctx.host, "no software RAID (no /proc/mdstat)")]
    arrays = parse_mdstat(result.stdout)
    evidence = (_evidence(result),)
    if not arrays:
        return [Finding("disk.raid", Status.OK, ctx.host, "no md arrays", evidence)]
    findings = []
    for array in arrays:
        shape = f"{array.level or '?'} [{array.devices_working}/{array.devices_expected}]"
        failed = ", ".join(m.name for m in array.failed_members)
        if array.state.startswith("inactive"):
            status, summary = Status.CRIT, f"{array.name} is inactive (not assembled)"
        elif array.degraded:
            status = Status.CRIT
            summary = f"{array.name} {shape} is degraded" + (f": failed {failed}" if failed else "")
        elif failed:
            status, summary = Status.WARN, f"{array.name} {shape}: failed member {failed}"
        else:
            status, summary = Status.OK, f"{array.name} {shape} clean"
        if array.operation:
            progress = f"{array.progress:.1f} %" if array.progress is not None else "waiting"
            left = f", about {array.finish_minutes:.0f} min left" if array.finish_minutes else ""
            summary += f"; {array.operation} {progress}{left}"
            if status is Status.OK:
                status = Status.WARN  # redundancy is not whole until it finishes
        findings.append(Finding("disk.raid", status, array.name, summary, evidence))
    return findings


# -- read-only mounts -----------------------------------------------------------------------

WRITABLE_KINDS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs"})


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field) >= i + 4:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


async def _check_readonly(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _run(shell, ("cat", "/proc/mounts"))
    if not result.ok:
        raise StepFailed(f"cannot read /proc/mounts: {result.stderr.strip()}")
    findings = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in WRITABLE_KINDS:
            continue
        mountpoint, options = _unescape(fields[1]), fields[3].split(",")
        if "ro" in options:
            summary = f"{mountpoint} ({fields[0]}, {fields[2]}) is mounted read-only"
            findings.append(
                Finding(
                    "disk.readonly",
                    Status.CRIT,
                    mountpoint,
                    summary,
                    (Evidence("/proc/mounts", line),),
                )
            )
        else:
            findings.append(Finding("disk.readonly", Status.OK, mountpoint, "read-write"))
    return findings or [Finding("disk.readonly", Status.OK, ctx.host, "no local filesystems")]


# -- deleted files still held open -----------------------------------------------------------

DELETED_SCRIPT = r"""
for fd in /proc/[0-9]*/fd/*; do
  target=$(readlink "$fd" 2>/dev/null) || continue
  case "$target" in
    *' (deleted)')
      size=$(stat -L -c %s "$fd" 2>/dev/null) || continue
      pid=${fd#/proc/}; pid=${pid%%/*}
      start=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
      comm=$(cat "/proc/$pid/comm" 2>/dev/null)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pid" "${fd##*/}" "$size" "$start" "$comm" "$target"
      ;;
  esac
done
"""
PIN_SCRIPT = r'readlink "/proc/$1/fd/$2" && sed "s/.*) //" "/proc/$1/stat" | cut -d" " -f20'


async def _check_deleted(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _run(shell, ("sh", "-c", DELETED_SCRIPT), timeout=30)
    rows = []
    for line in result.stdout.splitlines():
        parts = line.split("\t", 5)
        if len(parts) == 6 and parts[0].isdigit() and parts[1].isdigit() and parts[2].isdigit():
            rows.append(parts)
    total = sum(int(r[2]) for r in rows)
    rows.sort(key=lambda r: -int(r[2]))
    listed = "\n".join(
        f"pid {r[0]} ({r[4]}) fd {r[1]}: {human_bytes(int(r[2]))} {r[5]}" for r in rows
    )
    evidence = (Evidence("deleted files open in /proc/*/fd", listed or "(none)"),)
    # One finding per held file, small ones OK: a truncated file keeps its finding (now
    # OK), which is what the truncate fix's verification looks for.
    findings = [
        Finding(
            "disk.deleted_open",
            Status.OK,
            ctx.host,
            f"{len(rows)} deleted files held open, {human_bytes(total)} in all",
            evidence,
        )
    ]
    for pid, fd, size, start, comm, target in rows:
        nbytes, where = int(size), f"pid {pid} fd {fd}"
        path = target.removesuffix(" (deleted)")
        summary = f"{path} (deleted) holds {human_bytes(nbytes)}, open by {comm} (pid {pid})"
        if nbytes < DELETED_MIN_BYTES:
            findings.append(Finding("disk.deleted_open", Status.OK, where, summary))
            continue
        fix = Fix(
            id="disk.deleted_open.truncate",
            title=f"truncate the deleted {path} held by {comm} (pid {pid})",
            risk=Risk.DESTRUCTIVE,
            commands=(("truncate", "-s", "0", f"/proc/{pid}/fd/{fd}"),),
            target=where,
            pin=Pin(
                f"fd {fd} of pid {pid} (file, and process start time)",
                ("sh", "-c", PIN_SCRIPT, "sh", pid, fd),
                f"{target}\n{start}",
            ),
            verify="disk.deleted_open",
            impact=f"frees {human_bytes(nbytes)}; what {comm} wrote to it is gone for good, "
            "and it goes on writing to the now empty file",
        )
        findings.append(Finding("disk.deleted_open", Status.WARN, where, summary, (), (fix,)))
    return findings


# -- R08 backups ---------------------------------------------------------------------------

BACKUP_MAX_AGE_H = 24.0
BACKUP_SHRINK = 0.5
"""A newest backup under half the size of the one before it is a warning."""


def parse_backup_path(text: str) -> str:
    """An absolute directory, or an absolute directory and a file pattern (`/srv/db/*.gz`)."""
    path = text.strip()
    if not path.startswith("/") or "\n" in path:
        raise ValueError("give an absolute path, optionally ending in a pattern like *.gz")
    if any(c in path.rsplit("/", 1)[0] for c in "*?["):
        raise ValueError("only the last part of the path may be a pattern")
    return path


def _series(name: str) -> str:
    """Backups of one thing share their name but for the digits (dates, times, sequence)."""
    return re.sub(r"\d+", "#", name)


def _integrity_argv(path: str) -> tuple[str, ...] | None:
    if path.endswith((".tar.gz", ".tgz", ".tar", ".tar.xz", ".tar.bz2", ".tar.zst")):
        return ("tar", "-tf", path)
    if path.endswith(".gz"):
        return ("gzip", "-t", path)
    if path.endswith(".zip"):
        return ("unzip", "-tq", path)
    return None


async def _check_backups(ctx: CheckContext, shell: Shell) -> list[Finding]:
    given = ctx.params["backups"]
    directory, pattern = given, "*"
    if any(c in given.rsplit("/", 1)[-1] for c in "*?["):
        directory, pattern = given.rsplit("/", 1)
        directory = directory or "/"
    # find gets the directory and pattern as argv: nothing from config meets a shell.
    listing = await _run(
        shell,
        (
            "find",
            directory,
            "-maxdepth",
            "1",
            "-type",
            "f",
            "-name",
            pattern,
            "-printf",
            "%T@\\t%s\\t%p\\n",
        ),
        timeout=30,
    )
    evidence = (_evidence(listing),)
    if not listing.ok:
        why = (listing.stderr.strip().splitlines() or ["find failed"])[-1]
        return [
            Finding("backup.files", Status.CRIT, given, f"cannot list backups: {why}", evidence)
        ]
    files = []
    for line in listing.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            with contextlib.suppress(ValueError):
                files.append((float(parts[0]), int(parts[1]), parts[2]))
    if not files:
        return [Finding("backup.files", Status.CRIT, given, f"no backups match {given}", evidence)]
    now = await _host_time(shell)
    by_series: dict[str, list[tuple[float, int, str]]] = {}
    for entry in files:
        by_series.setdefault(_series(entry[2].rsplit("/", 1)[-1]), []).append(entry)
    findings = []
    for series, entries in sorted(by_series.items()):
        entries.sort(reverse=True)
        mtime, size, path = entries[0]
        age_h = (now - mtime) / 3600
        problems, status = [], Status.OK
        if age_h > BACKUP_MAX_AGE_H:
            problems.append(f"newest is {age_h:.0f} h old (over {BACKUP_MAX_AGE_H:g} h)")
            status = Status.WARN
        if len(entries) > 1 and size < entries[1][1] * BACKUP_SHRINK:
            problems.append(f"{human_bytes(size)}, down from {human_bytes(entries[1][1])}")
            status = Status.WARN
        checked = _integrity_argv(path)
        proof = list(evidence)
        if checked is not None:
            test = await _run(shell, checked, timeout=120)
            proof.append(_evidence(test))
            if not test.ok:
                why = (test.stderr.strip().splitlines() or [f"exit {test.exit_status}"])[-1]
                problems.append(f"fails {checked[0]}: {why}")
                status = Status.CRIT
        name = path.rsplit("/", 1)[-1]
        summary = f"{name}: {human_bytes(size)}, {age_h:.1f} h old"
        summary += ("; " + "; ".join(problems)) if problems else ", intact"
        findings.append(Finding("backup.files", status, series, summary, tuple(proof)))
    return findings


async def _host_time(shell: Shell) -> float:
    """The host's clock: file ages are measured against it, not against ours."""
    result = await _run(shell, ("date", "+%s"))
    try:
        return float(result.stdout.strip())
    except ValueError:
        raise StepFailed(f"cannot read the host's clock: {result.stdout.strip()!r}") from None


# -- old logs, with a fix that removes them ---------------------------------------------------

LOG_DAYS = 7


def parse_directory(text: str) -> str:
    path = text.strip().rstrip("/") or "/"
    if not path.startswith("/") or "\n" in path or path == "/":
        raise ValueError("give an absolute directory other than /")
    return path


def parse_days(text: str) -> str:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise ValueError("a number of days from 1 to 3650")
    return str(int(text))


async def _check_old_logs(ctx: CheckContext, shell: Shell) -> list[Finding]:
    directory = ctx.params["logs"]
    days = int(ctx.params.get("older") or LOG_DAYS)
    # One listing, with inode and size, is both the evidence and the pin: the fix runs only
    # if exactly these files are still the ones it would remove.
    listing_argv = (
        "find",
        directory,
        "-xdev",
        "-type",
        "f",
        "-mmin",
        f"+{days * 1440}",
        "-printf",
        "%i %s %p\\n",
    )
    listing = await _run(shell, listing_argv, timeout=60)
    if not listing.ok:
        why = (listing.stderr.strip().splitlines() or [f"exit {listing.exit_status}"])[-1]
        raise StepFailed(f"cannot list {directory}: {why}")
    files = [line.split(" ", 2) for line in listing.stdout.splitlines()]
    files = [f for f in files if len(f) == 3 and f[1].isdigit()]
    total = sum(int(f[1]) for f in files)
    free = await _free_bytes(shell, directory)
    room = f"; {human_bytes(free)} free there" if free is not None else ""
    evidence = (Evidence(shlex.join(listing_argv), listing.stdout.strip() or "(none)"),)
    target = f"{directory} (older than {days} d)"
    if not files:
        summary = f"no files older than {days} days under {directory}{room}"
        return [Finding("disk.old_logs", Status.OK, target, summary, evidence)]
    count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    summary = f"{count} older than {days} days, {human_bytes(total)}{room}"
    fix = Fix(
        id="disk.old_logs.remove",
        title=f"remove {count} older than {days} days under {directory}",
        risk=Risk.DESTRUCTIVE,
        commands=(
            ("find", directory, "-xdev", "-type", "f", "-mmin", f"+{days * 1440}", "-delete"),
        ),
        target=target,
        pin=Pin(
            f"the list of files older than {days} days (inode, size, path)",
            listing_argv,
            listing.stdout.strip(),
        ),
        verify="disk.old_logs",
        impact=f"frees {human_bytes(total)} by deleting {count} for good (listed in the evidence)",
    )
    return [Finding("disk.old_logs", Status.WARN, target, summary, evidence, (fix,))]


async def _free_bytes(shell: Shell, path: str) -> int | None:
    result = await _run(shell, ("df", "-P", "-B1", path))
    lines = result.stdout.splitlines()
    if not result.ok or len(lines) < 2:
        return None
    fields = lines[-1].split()
    return int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None


# -- S4 SMART -------------------------------------------------------------------------------


async def _check_smart(ctx: CheckContext, shell: Shell) -> list[Finding]:
    scan = await _run(shell, ("smartctl", "--scan"))
    if scan.exit_status == 127:
        summary = f"smartctl is not installed on {ctx.host} (Debian: smartmontools)"
        return [Finding("disk.smart", Status.UNKNOWN, ctx.host, summary)]
    devices = [line.split()[0] for line in scan.stdout.splitlines() if line.startswith("/dev/")]
    if not devices:
        return [
            Finding(
                "disk.smart", Status.UNKNOWN, ctx.host, "no SMART devices found", (_evidence(scan),)
            )
        ]
    findings = []
    for device in devices:
        health = await _run(shell, ("smartctl", "-H", "-A", device), timeout=30)
        text = health.stdout
        if "PASSED" in text or "SMART Health Status: OK" in text:
            status, summary = Status.OK, f"{device}: health PASSED"
        elif "FAILED" in text:
            status, summary = Status.CRIT, f"{device}: SMART health FAILED"
        else:
            status, summary = Status.UNKNOWN, f"{device}: no health verdict"
        findings.append(Finding("disk.smart", status, device, summary, (_evidence(health),)))
    return findings


RAID = ShellCheck("disk.raid", "Software RAID (mdstat)", _check_raid, DOMAIN)
READONLY = ShellCheck("disk.readonly", "Read-only filesystems", _check_readonly, DOMAIN)
DELETED = ShellCheck("disk.deleted_open", "Deleted files still held open", _check_deleted, DOMAIN)
SMART = ShellCheck("disk.smart", "SMART health", _check_smart, DOMAIN)
OLD_LOGS = ShellCheck("disk.old_logs", "Old logs", _check_old_logs, DOMAIN)
BACKUPS = ShellCheck("backup.files", "Backups: age, size, integrity", _check_backups, DOMAIN)

STORAGE_WIZARD = Wizard(
    domain=DOMAIN,
    title="Storage: RAID, read-only mounts, space held by deleted files, SMART",
    steps=(
        Step(
            RAID,
            "A degraded array runs without redundancy: replace the failed member "
            "(mdadm --manage --add) before a second disk goes.",
        ),
        Step(
            READONLY,
            "The kernel remounts a filesystem read-only after I/O errors: read "
            "the kernel log for the device before anything else.",
        ),
        Step(
            DELETED,
            "Space that df counts but du cannot find is often a deleted log still "
            "open: restarting the process frees it, truncating frees it at once.",
        ),
        Step(SMART, "A failing SMART verdict means the disk should be replaced, not repaired."),
        Step(
            OLD_LOGS,
            "Logs past their keeping time are the usual space to win back; the list is shown "
            "before anything is removed.",
            requires=("logs",),
        ),
        Step(
            BACKUPS,
            "A backup that is old, suddenly small or unreadable is no backup: check "
            "the job's log before you need it.",
            requires=("backups",),
        ),
    ),
    params=(
        Param("logs", "a log directory whose old files may be removed", parse_directory),
        Param("older", f"days a log is kept (default {LOG_DAYS})", parse_days),
        Param(
            "backups",
            "a backup directory, or directory/pattern (/srv/backup/*.gz)",
            parse_backup_path,
        ),
    ),
)
