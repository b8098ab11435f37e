"""Expected mounts (runbook S1): each mount point the host's settings (or `--mounts`) name
must be mounted; a missing one is critical, with what /etc/fstab says and where writes to
that path go now. No fix is offered: which device belongs there is the operator's call."""

from __future__ import annotations

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, why
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.hosts.linux.kernlog import Mount, normalise, parse_fstab, parse_mounts
from fleetdeck.hosts.shell import Shell

DOMAIN = "storage"
EXISTS_SCRIPT = r"""
for p; do
  if [ -d "$p" ]; then echo dir
  elif [ -e "$p" ] || [ -L "$p" ]; then echo other
  else echo missing
  fi
done
"""


def _noauto(entry: str) -> bool:
    fields = entry.split()
    return len(fields) > 3 and "noauto" in fields[3].split(",")


def _holder(mounts: dict[str, Mount], path: str) -> str:
    """The mount point of the filesystem that holds `path` now."""
    under = [m for m in mounts if m == "/" or path.startswith(m.rstrip("/") + "/")]
    return max(under, key=len, default="/")


async def _missing(shell: Shell, paths: list[str], mounts: dict[str, Mount]) -> dict[str, Finding]:
    fstab = await _run(shell, ("cat", "/etc/fstab"))
    entries = parse_fstab(fstab.stdout) if fstab.ok else {}
    kinds = (await _run(shell, ("sh", "-c", EXISTS_SCRIPT, "sh", *paths))).stdout.split()
    kinds += ["unknown"] * (len(paths) - len(kinds))
    found = {}
    for path, kind in zip(paths, kinds, strict=False):
        entry = entries.get(path)
        if not fstab.ok:
            table = f"/etc/fstab could not be read ({why(fstab)})"
        elif entry is None:
            table = "it is not in /etc/fstab, so nothing mounts it at boot"
        else:
            table = f"/etc/fstab has it, so `mount {path}` would mount it"
            table += " (it is noauto: not mounted at boot)" if _noauto(entry) else ""
        where = {
            "dir": "the directory exists, so what is written there now goes to the "
            f"filesystem on {_holder(mounts, path)}",
            "other": "the path exists but is not a directory",
            "missing": "the directory does not exist",
        }.get(kind, "whether the directory exists could not be told")
        summary = f"expected mount {path} is not mounted; {table}; {where}"
        table_said = entry or ("(no entry)" if fstab.ok else f"could not be read: {why(fstab)}")
        evidence = (Evidence("/etc/fstab", table_said), Evidence("test -d", kind))
        found[path] = Finding("disk.mounts", Status.CRIT, path, summary, evidence)
    return found


async def _check_expected(ctx: CheckContext, shell: Shell) -> list[Finding]:
    wanted = [line.strip() for line in ctx.params.get("mounts", "").splitlines() if line.strip()]
    if not wanted:
        summary = (
            "no expected mounts are configured: set mounts in the storage "
            "configuration or pass --mounts"
        )
        return [Finding("disk.mounts", Status.OK, ctx.host, summary)]
    result = await _run(shell, ("cat", "/proc/mounts"))
    if not result.ok:
        raise StepFailed(f"cannot read /proc/mounts: {result.stderr.strip()}")
    mounts = parse_mounts(result.stdout)
    findings: dict[str, Finding | None] = {}
    for entry in wanted:
        try:
            path = normalise(entry)
        except ValueError as error:
            findings[entry] = Finding(
                "disk.mounts", Status.UNKNOWN, entry, f"expected mount {entry!r}: {error}"
            )
            continue
        mount = mounts.get(path)
        if mount is None:
            findings.setdefault(path, None)
            continue
        state = "read-only" if mount.read_only else "read-write"
        summary = f"{path} is mounted: {mount.source} ({mount.fstype}, {state})"
        evidence = (Evidence("/proc/mounts", mount.line),)
        findings[path] = Finding("disk.mounts", Status.OK, path, summary, evidence)
    missing = [path for path, finding in findings.items() if finding is None]
    found = await _missing(shell, missing, mounts) if missing else {}
    return [finding or found[path] for path, finding in findings.items()]


MOUNTS = ShellCheck("disk.mounts", "Expected mounts present", _check_expected, DOMAIN)
