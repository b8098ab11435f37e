"""The storage wizard (runbooks S1-S6, R08): its steps in order, and the checks that live
here (software RAID, deleted files still held open). The other steps' checks have a
module each (mounts, cleanup, backups); all ask the host through its shell like the
network wizard's, and their fixes go through the same gate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, why
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import (
    CheckContext,
    Evidence,
    Finding,
    Fix,
    Pin,
    Risk,
    Status,
    printable,
)
from fleetdeck.checks.sampled import DISK_INODES, DISK_SPACE
from fleetdeck.checks.storage.backups import BACKUP_MAX_AGE_H, BACKUPS
from fleetdeck.checks.storage.cleanup import LOG_DAYS, OLD_LOGS, UNCOMPRESSED_LOGS
from fleetdeck.checks.storage.config import (
    parse_backup_path,
    parse_days,
    parse_directory,
    parse_hours,
    parse_path,
)
from fleetdeck.checks.storage.diskio import DISK_IO
from fleetdeck.checks.storage.diskusage import DISK_USAGE
from fleetdeck.checks.storage.dockerspace import DOCKER_SPACE
from fleetdeck.checks.storage.expected_mounts import MOUNTS
from fleetdeck.checks.storage.journal import JOURNAL
from fleetdeck.checks.storage.mounts import READONLY
from fleetdeck.checks.storage.smart import SMART
from fleetdeck.checks.wizards import Param, Step, Wizard, WizardRun
from fleetdeck.hosts.linux.mdstat import parse_mdstat
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.samplers import SampleGarbage
from fleetdeck.hosts.shell import Shell, ShellError
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"
DELETED_MIN_BYTES = 1024 * 1024
"""Deleted files smaller than this are not worth a finding (every host has a few)."""

# -- S1 space and inodes, with time to full ------------------------------------------------


LONG_STEP = 150.0
"""Steps whose commands are bounded longer than a wizard step (a cold log tree is listed,
then listed again for the pin, 60 s each; `docker system df` on a busy daemon, 90 s)."""
SAMPLE_FRESH = 30.0
"""Seconds a console sample stays good enough for the space step; older, it samples now."""


async def _check_space(ctx: CheckContext, shell: Shell) -> list[Finding]:
    """The same findings as the Host screen's, from its samples when the console has them
    (time to full needs a few minutes of them), else from one sample taken now."""
    history = ctx.history
    latest = history.latest
    if latest is None or time.time() - latest.at > SAMPLE_FRESH:
        history = SampleHistory(size=2)
        try:
            history.add(await ProcSampler(shell).sample())
        except (SampleGarbage, ShellError) as error:
            raise StepFailed(f"cannot sample {ctx.host}: {error}") from None
    sampled = replace(ctx, history=history)
    found = []
    for check in (DISK_SPACE, DISK_INODES):
        found += await check.run(sampled)
    return found


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
        shape = (
            f"{array.level or '?'}, {array.devices_working} of {array.devices_expected} "
            "members working"
        )
        failed = ", ".join(m.name for m in array.failed_members)
        if array.state.startswith("inactive"):
            status, summary = Status.CRIT, f"{array.name} is inactive (not assembled)"
        elif array.degraded:
            status = Status.CRIT
            summary = f"{array.name} ({shape}) is degraded" + (
                f": failed {failed}" if failed else ""
            )
        elif failed:
            status, summary = Status.WARN, f"{array.name} ({shape}): failed member {failed}"
        else:
            status, summary = Status.OK, f"{array.name} ({shape}) clean"
        if array.operation:
            progress = f"{array.progress:.1f} %" if array.progress is not None else "waiting"
            left = f", about {array.finish_minutes:.0f} min left" if array.finish_minutes else ""
            summary += f"; {array.operation} {progress}{left}"
            # Redundancy is not whole until a resync or recovery finishes; a check is the
            # routine scrub (Debian's monthly checkarray) of a whole array.
            if status is Status.OK and array.operation != "check":
                status = Status.WARN
        findings.append(Finding("disk.raid", status, array.name, summary, evidence))
    return findings


# -- deleted files still held open -----------------------------------------------------------

DELETED_SCRIPT = r"""
find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname '*(deleted)' -print 2>/dev/null |
while IFS= read -r fd; do
  file=$(stat -L -c '%h %s %d:%i' "$fd" 2>/dev/null) || continue
  case $file in 0\ *) file=${file#0 } ;; *) continue ;; esac
  target=$(readlink "$fd") || continue
  pid=${fd#/proc/}; pid=${pid%%/*}
  start=$(tr '\n' ' ' < "/proc/$pid/stat" 2>/dev/null | sed 's/.*) //' | cut -d' ' -f20)
  comm=$(tr '\t\n' '  ' < "/proc/$pid/comm" 2>/dev/null); comm=${comm% }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\000' "$pid" "${fd##*/}" "${file% *}" "${file#* }" \
    "$start" "$comm" "$target"
done
grep -h ' (deleted)$' /proc/[0-9]*/maps 2>/dev/null | awk '{print "mapped\t" $5}' | sort -u |
  tr '\n' '\000'
"""
"""One `find` over every process's fds (no fork per fd), `stat` only for deleted-looking
ones; then the inodes of deleted files mapped into memory anywhere (truncating those crashes
whoever maps them). A process picks its own name and its files' names, so neither may bend
the output: records end in NUL, the name (which may hold tabs and newlines) last; a tab or
newline in a process name reads as a space; and a file counts as deleted by its link count
(0), not by a name that merely ends in " (deleted)"."""
PIN_SCRIPT = r"""t=$(readlink "/proc/$1/fd/$2") || exit 1
st=$(cat "/proc/$1/stat") || exit 1
set -- ${st##*) }
printf '%s start %s\n' "$t" "${20}"
"""
"""Prints `<fd target> start <process start time>` on one line: the truncate fix's pin."""


@dataclass(frozen=True, slots=True)
class HeldFile:
    """A deleted file still open: its size, and every (pid, fd, start, command) holding it."""

    path: str
    size: int
    holders: tuple[tuple[str, str, str, str], ...]
    inode: str = ""

    @property
    def who(self) -> str:
        pid, _fd, _start, comm = self.holders[0]
        more = len(self.holders) - 1
        others = f" and {more} more process" + ("es" if more > 1 else "") if more else ""
        return f"{printable(comm, one_line=True)} (pid {pid}){others}"

    @property
    def shown(self) -> str:
        """The path on one line, a byte that is not UTF-8 or a control character escaped."""
        return printable(self.path, one_line=True)


NOT_FILES = ("/memfd:", "/SYSV", "/dev/zero")
"""Deleted-looking fd targets that are shared memory, not files on a disk."""


def parse_held(text: str) -> tuple[list[HeldFile], set[str]]:
    """The deleted-file scan's lines grouped by file (device and inode): a log shared by a
    master and its workers is one file, held by all of them, counted once. Also the inodes
    of deleted files mapped into some process's memory."""
    files: dict[str, tuple[str, int, list[tuple[str, str, str, str]]]] = {}
    mapped: set[str] = set()
    for line in text.split("\0"):
        if line.startswith("mapped\t"):
            mapped.add(line.split("\t", 1)[1].strip())
            continue
        parts = line.split("\t", 6)
        if len(parts) != 7 or not (parts[0].isdecimal() and parts[1].isdecimal()):
            continue
        pid, fd, size, identity, start, comm, target = parts
        if not size.isdecimal() or not target.startswith("/") or target.startswith(NOT_FILES):
            continue
        entry = files.setdefault(identity, (target.removesuffix(" (deleted)"), int(size), []))
        entry[2].append((pid, fd, start, comm))
    held = [
        HeldFile(
            path,
            size,
            tuple(sorted(holders, key=lambda h: (int(h[0]), int(h[1])))),
            identity.rsplit(":", 1)[-1],
        )
        for identity, (path, size, holders) in files.items()
    ]
    return sorted(held, key=lambda f: (-f.size, f.path)), mapped


async def _check_deleted(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _run(shell, ("sh", "-c", DELETED_SCRIPT), timeout=30)
    if not result.ok:  # its last command is `sort`: anything else means the scan broke
        raise StepFailed(f"the scan of /proc/*/fd failed: {why(result)}")
    # Exact text: a deleted name that is not UTF-8 is shown escaped (printable), and its
    # pin compares against the exact reading the gate takes (see checks.actions).
    held, mapped = parse_held(result.exact_stdout)
    total = sum(f.size for f in held)
    listed = "\n".join(
        f"{human_bytes(f.size)} {f.shown} (deleted): "
        + ", ".join(
            f"pid {pid} ({printable(comm, one_line=True)}) fd {fd}"
            for pid, fd, _start, comm in f.holders
        )
        for f in held
    )
    evidence = (Evidence("deleted files open in /proc/*/fd", listed or "(none)"),)
    count = f"{len(held)} deleted file{'s' if len(held) != 1 else ''}"
    # One finding per held file, small ones OK: a truncated file keeps its finding (now
    # OK), which is what the truncate fix's verification looks for.
    findings = [
        Finding(
            "disk.deleted_open",
            Status.OK,
            ctx.host,
            f"{count} held open, {human_bytes(total)} in all",
            evidence,
        )
    ]
    for file in held:
        pid, fd, start, _comm = file.holders[0]
        where = f"pid {pid} fd {fd}"
        summary = f"{file.shown} (deleted) holds {human_bytes(file.size)}, open by {file.who}"
        if file.size < DELETED_MIN_BYTES:
            findings.append(Finding("disk.deleted_open", Status.OK, where, summary))
            continue
        if file.inode in mapped:
            summary += (
                "; it is mapped into memory, so truncating it would crash the process "
                "(SIGBUS): restart it to free the space"
            )
            findings.append(Finding("disk.deleted_open", Status.WARN, where, summary))
            continue
        fix = Fix(
            id="disk.deleted_open.truncate",
            title=f"truncate the deleted {file.shown} held by {file.who}",
            risk=Risk.DESTRUCTIVE,
            commands=(("truncate", "-s", "0", f"/proc/{pid}/fd/{fd}"),),
            target=where,
            pin=Pin(
                f"fd {fd} of pid {pid} (the file, and the process start time)",
                ("sh", "-c", PIN_SCRIPT, "sh", pid, fd),
                f"{file.path} (deleted) start {start}",
            ),
            verify="disk.deleted_open",
            frees=file.size,
            frees_on=f"/proc/{pid}/fd/{fd}",  # its own filesystem, even in a container
            impact=f"frees {human_bytes(file.size)}; what {file.who} wrote to it is gone for "
            "good, and they go on writing to the now empty file",
        )
        findings.append(Finding("disk.deleted_open", Status.WARN, where, summary, (), (fix,)))
    return findings


SPACE = ShellCheck("disk.space", "Space and inodes, time to full", _check_space, DOMAIN)
RAID = ShellCheck("disk.raid", "Software RAID (mdstat)", _check_raid, DOMAIN)
DELETED = ShellCheck("disk.deleted_open", "Deleted files still held open", _check_deleted, DOMAIN)


STORAGE_WIZARD = Wizard(
    domain=DOMAIN,
    title="Storage: space, mounts, disks, I/O, what fills them, backups",
    steps=(
        Step(
            SPACE,
            "A filesystem that fills within hours needs space now (old logs, the journal, "
            "Docker, deleted files still open); one that fills in days needs a plan.",
        ),
        Step(
            READONLY,
            "The kernel remounts a filesystem read-only after I/O errors: read "
            "the kernel log for the device before anything else.",
        ),
        Step(
            MOUNTS,
            "A filesystem that did not mount leaves its directory on the parent: data written "
            "there now is hidden once it mounts again, and the parent fills.",
        ),
        Step(
            RAID,
            "A degraded array runs without redundancy: replace the failed member "
            "(mdadm --manage --add) before a second disk goes.",
        ),
        Step(SMART, "A failing SMART verdict means the disk should be replaced, not repaired."),
        Step(
            DISK_IO,
            "A device busy near 100 % with a long await is the bottleneck (on SSD/NVMe look at "
            "the await and queue too); iotop or pidstat -d then names the process.",
        ),
        Step(
            DISK_USAGE,
            "Look in the largest directories first; space that df counts but du cannot "
            "find is usually a deleted file still open (next step).",
        ),
        Step(
            DELETED,
            "Space that df counts but du cannot find is often a deleted log still "
            "open: restarting the process frees it, truncating frees it at once.",
        ),
        Step(
            OLD_LOGS,
            "Logs past their keeping time are the usual space to win back; the list is shown "
            "before anything is removed.",
            requires=("logs",),
            timeout=LONG_STEP,
        ),
        Step(
            UNCOMPRESSED_LOGS,
            "Rotated logs that were never compressed usually shrink to a tenth with gzip; "
            "a process still writing to one is the hazard.",
            requires=("logs",),
            timeout=LONG_STEP,
        ),
        Step(
            JOURNAL,
            "The journal keeps up to 10 % of its filesystem by default; vacuuming old "
            "entries frees it at once (they are gone for good).",
        ),
        Step(
            DOCKER_SPACE,
            "Stopped containers, dangling images and build cache add up on build hosts; "
            "a plain prune leaves tagged images and volumes alone.",
            timeout=LONG_STEP,
        ),
        Step(
            BACKUPS,
            "A backup that is old, suddenly small or unreadable is no backup: check "
            "the job's log before you need it.",
            requires=("backups",),
        ),
    ),
    params=(
        Param("mounts", "mount points that must be there (/srv/data, /var)", parse_path, many=True),
        Param(
            "usage", "where to look for what uses the space (else the fullest mount)", parse_path
        ),
        Param("logs", "a log directory whose old files may be removed", parse_directory),
        Param("older", f"days a log is kept (default {LOG_DAYS})", parse_days),
        Param("journal_days", "days of journal to keep when vacuuming (default 14)", parse_days),
        Param(
            "backups",
            "backup directories, or directory/pattern (/srv/backup/*.gz)",
            parse_backup_path,
            many=True,
        ),
        Param(
            "backup_age",
            f"hours before a backup is stale (default {BACKUP_MAX_AGE_H:g})",
            parse_hours,
        ),
    ),
)


ON_DEMAND = frozenset({"disk.space"})
"""Steps a health check leaves out: disk.space is already graded from every sample. It
leaves out disk.usage (du) too unless the host's settings name a `usage` path: a health
check does not crawl directory trees unasked; the wizard does, on the fullest mount."""


async def storage_findings(ctx: CheckContext) -> list[Finding]:
    """The storage wizard's steps as health checks (for `fleetdeck check` and the Host
    screen): every step with what it needs, the findings without the fixes' prompts."""
    skip = ON_DEMAND if "usage" in ctx.params else ON_DEMAND | {"disk.usage"}
    steps = tuple(s for s in STORAGE_WIZARD.steps if s.id not in skip)
    run = WizardRun(replace(STORAGE_WIZARD, steps=steps), ctx)
    await run.run()
    return [
        finding
        for result in run.results
        for finding in result.findings
        # Each small deleted file held open is OK and only noise outside the wizard.
        if not (finding.check == "disk.deleted_open" and finding.target.startswith("pid "))
        or finding.status is not Status.OK
    ]
