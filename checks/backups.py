"""Backups (runbook R08): per series, the newest file's age, its size against the one before,
and whether it can be read back (`gzip -t`, a tar or zip listing)."""

from __future__ import annotations

import contextlib
import re

from checks.hostcheck import ShellCheck, host_time
from checks.hostcheck import evidence as _evidence
from checks.hostcheck import run as _run
from checks.model import CheckContext, Finding, Status
from hosts.shell import Shell
from hosts.units import human_bytes

DOMAIN = "storage"

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
    """Each configured path (one per line in the `backups` parameter) on its own."""
    max_age = float(ctx.params.get("backup_age") or BACKUP_MAX_AGE_H)
    findings = []
    for given in ctx.params["backups"].splitlines():
        findings += await _check_path(shell, given, max_age)
    return findings


def parse_hours(text: str) -> str:
    try:
        hours = float(text)
    except ValueError:
        raise ValueError("a number of hours, such as 24 or 1.5") from None
    if not 0.01 <= hours <= 24 * 3650:
        raise ValueError("a number of hours from 0.01 to 87600")
    return f"{hours:g}"


async def _check_path(shell: Shell, given: str, max_age: float) -> list[Finding]:
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
    now = await host_time(shell)
    by_series: dict[str, list[tuple[float, int, str]]] = {}
    for entry in files:
        by_series.setdefault(_series(entry[2].rsplit("/", 1)[-1]), []).append(entry)
    findings = []
    for series, entries in sorted(by_series.items()):
        entries.sort(reverse=True)
        mtime, size, path = entries[0]
        age_h = (now - mtime) / 3600
        problems, status = [], Status.OK
        if age_h > max_age:
            problems.append(f"newest is {age_h:.0f} h old (over {max_age:g} h)")
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
        target = f"{directory.rstrip('/')}/{series}"
        findings.append(Finding("backup.files", status, target, summary, tuple(proof)))
    return findings


BACKUPS = ShellCheck("backup.files", "Backups: age, size, integrity", _check_backups, DOMAIN)
