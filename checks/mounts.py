"""Mounts (runbook S1): filesystems the kernel has made read-only.

`/proc/mounts` escapes odd characters in its fields as octal (`\\040` for a space); every
mount point here is unescaped before it is shown or used.
"""

from __future__ import annotations

from checks.hostcheck import ShellCheck, StepFailed
from checks.hostcheck import run as _run
from checks.model import CheckContext, Evidence, Finding, Status
from hosts.shell import Shell

DOMAIN = "storage"

# -- read-only mounts -----------------------------------------------------------------------

WRITABLE_KINDS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs"})


def unescape(field: str) -> str:
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
        mountpoint, options = unescape(fields[1]), fields[3].split(",")
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


READONLY = ShellCheck("disk.readonly", "Read-only filesystems", _check_readonly, DOMAIN)
