"""Space to win back (runbook S1): logs past their keeping time, listed with the space they
hold, then removed through the gate, pinned on exactly that list."""

from __future__ import annotations

import shlex

from checks.hostcheck import ShellCheck, StepFailed, free_bytes
from checks.hostcheck import run as _run
from checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from hosts.shell import Shell
from hosts.units import human_bytes

DOMAIN = "storage"

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
    free = await free_bytes(shell, directory)
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
        frees=total,
        frees_on=directory,
        impact=f"frees {human_bytes(total)} by deleting {count} for good (listed in the evidence)",
    )
    return [Finding("disk.old_logs", Status.WARN, target, summary, evidence, (fix,))]


OLD_LOGS = ShellCheck("disk.old_logs", "Old logs", _check_old_logs, DOMAIN)
