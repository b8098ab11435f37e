"""Backups (runbook R08): per series, the newest file's age, its size against the one before,
and whether it can be read back (`gzip -t`, a tar or zip listing).

The cheap verdicts (age, size) come first, for every series of every configured path. The
read-back tests come after, newest series first, within `INTEGRITY_SECONDS` for them all: a
series whose turn comes too late says "integrity not verified: time ran out", and keeps its
age and size verdicts. A read-back verdict is kept for the life of the process per host,
path, size and modification time, so a health check that runs every few minutes does not
read an unchanged backup again; one that did not finish in the time it had is not retried
with no more time than that.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, host_time
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.checks.storage.config import parse_backup_path as parse_backup_path
from fleetdeck.checks.storage.config import parse_hours as parse_hours
from fleetdeck.hosts.shell import CommandTimeout, Shell
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"

BACKUP_MAX_AGE_H = 24.0
BACKUP_SHRINK = 0.5
"""A newest backup under half the size of the one before it is a warning."""
LIST_SECONDS = 10.0
INTEGRITY_SECONDS = 20.0
"""All read-back tests of one run share this; the wizard gives the whole step 30 s."""
NOT_UTF8 = "\ufffd"
"""What a name that is not UTF-8 holds once the shell has decoded it: such a name cannot be
handed back to the host as it was, so its file is not tested."""

# -- series ---------------------------------------------------------------------------------

# A date or a time, with what follows it joined by - _ . : T (2024-01-10T03:00, 20240110-2),
# or any run of 4 digits and more (dates, epoch seconds, long sequence numbers), or a number
# that is a whole dot-separated part (a rotation: db.sql.1.gz, db.sql.gz.2). A short number
# that is part of a name (shard1, db2, web-01) is left alone.
_DATE_LIKE = re.compile(r"(?:\d{4,}|\d{1,2}:\d{2})(?:[-_.:T]\d+)*|(?<=\.)\d{1,3}(?=\.|$)")


def series_of(name: str) -> str:
    """What backups of one thing share: their name with the date and time taken out."""
    return _DATE_LIKE.sub("#", name)


# -- read-back tests ------------------------------------------------------------------------


def _integrity_argv(path: str) -> tuple[str, ...] | None:
    if path.endswith((".tar.gz", ".tgz", ".tar", ".tar.xz", ".tar.bz2", ".tar.zst")):
        return ("tar", "-tf", path)
    if path.endswith(".gz"):
        return ("gzip", "-t", path)
    if path.endswith(".zip"):
        return ("unzip", "-tq", path)
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A series' read-back: the words for its summary ("" when the file read back whole),
    whether the file failed the test, the test's output, and for a test stopped by the time
    left, how many seconds it had."""

    said: str
    broken: bool = False
    evidence: Evidence | None = None
    cut_after: float | None = None


_VERDICTS: dict[tuple[str, str, int, float], Verdict] = {}
"""(host, path, size, modification time) -> the verdict on that file, for this process."""
_KEPT = 4096


def _remember(key: tuple[str, str, int, float], verdict: Verdict) -> None:
    _VERDICTS.pop(key, None)
    _VERDICTS[key] = verdict
    while len(_VERDICTS) > _KEPT:  # the oldest first: dicts keep insertion order
        del _VERDICTS[next(iter(_VERDICTS))]


async def _read_back(shell: Shell, argv: tuple[str, ...], left: float) -> tuple[Verdict, bool]:
    """One test within the time left, and whether its verdict is on the file (to keep): a
    test that cannot run here (no gzip) says nothing about the file."""
    try:
        test = await _run(shell, argv, timeout=left)
    except CommandTimeout:
        said = f"integrity not verified: {argv[0]} did not finish in the {left:.0f} s left"
        return Verdict(said, cut_after=left), True
    if test.exit_status == 127:
        return Verdict(f"integrity not verified: {argv[0]} is not installed"), False
    if test.ok:
        return Verdict("", evidence=_evidence(test)), True
    why = (test.stderr.strip().splitlines() or [f"exit {test.exit_status}"])[-1]
    return Verdict(f"fails {argv[0]}: {why}", True, _evidence(test)), True


async def _read_back_all(
    shell: Shell, every: Sequence[_Series], deadline: float
) -> dict[int, Verdict]:
    """The newest file of each series read back, newest series first, until the deadline:
    {index in `every`: verdict}."""
    verdicts = {}
    for index in sorted(range(len(every)), key=lambda i: -every[i].files[0][0]):
        mtime, size, path = every[index].files[0]
        argv = _integrity_argv(path)
        if argv is None:
            verdicts[index] = Verdict("no read-back test for this kind of file")
            continue
        if NOT_UTF8 in path:
            verdicts[index] = Verdict("name is not UTF-8: not tested")
            continue
        key = (shell.host, path, size, mtime)
        left = deadline - time.monotonic()
        known = _VERDICTS.get(key)
        if known is not None and (known.cut_after is None or left <= known.cut_after + 1):
            verdicts[index] = known
        elif left < 1:
            verdicts[index] = Verdict("integrity not verified: time ran out")
        else:
            verdicts[index], keep = await _read_back(shell, argv, left)
            if keep:
                _remember(key, verdicts[index])
    return verdicts


# -- the check ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Series:
    """One series: its files newest first, and the verdicts on age and size."""

    directory: str
    name: str
    files: tuple[tuple[float, int, str], ...]
    listing: Evidence
    problems: tuple[str, ...]

    def finding(self, now: float, read_back: Verdict | None) -> Finding:
        mtime, size, path = self.files[0]
        age_h = max(0.0, now - mtime) / 3600  # date +%s is whole seconds
        status = Status.WARN if self.problems else Status.OK
        problems = list(self.problems)
        proof = [self.listing]
        if read_back is not None:
            status = Status.CRIT if read_back.broken else status
            problems += [read_back.said] if read_back.said else []
            proof += [read_back.evidence] if read_back.evidence is not None else []
        summary = f"{path.rsplit('/', 1)[-1]}: {human_bytes(size)}, {age_h:.1f} h old"
        summary += ("; " + "; ".join(problems)) if problems else ", intact"
        target = f"{self.directory.rstrip('/')}/{self.name}"
        return Finding("backup.files", status, target, summary, tuple(proof))


async def _check_backups(ctx: CheckContext, shell: Shell) -> list[Finding]:
    """Each configured path (one per line in the `backups` parameter) on its own, then the
    read-back tests of them all within one time budget."""
    started = time.monotonic()
    max_age = float(ctx.params.get("backup_age") or BACKUP_MAX_AGE_H)
    now = await host_time(shell)
    listed = []
    for given in ctx.params["backups"].splitlines():
        if given.strip():
            left = started + INTEGRITY_SECONDS - time.monotonic()
            listed.append(await _list_path(shell, given.strip(), now, max_age, left))
    every = [series for found in listed if isinstance(found, list) for series in found]
    read_back = await _read_back_all(shell, every, started + INTEGRITY_SECONDS)
    findings, index = [], 0
    for found in listed:
        if isinstance(found, Finding):
            findings.append(found)
            continue
        for series in found:
            findings.append(series.finding(now, read_back.get(index)))
            index += 1
    return findings


async def _list_path(
    shell: Shell, given: str, now: float, max_age: float, left: float
) -> Finding | list[_Series]:
    """The series under one configured path with their age and size verdicts, or the one
    finding that says why there are none."""
    directory, pattern = given, "*"
    if any(c in given.rsplit("/", 1)[-1] for c in "*?["):
        directory, pattern = given.rsplit("/", 1)
        directory = directory or "/"
    seconds = max(1.0, min(LIST_SECONDS, left))
    # find gets the directory and pattern as argv: nothing from config meets a shell. -H
    # follows the directory itself when it is a symbolic link (/backup -> /mnt/nas/backup).
    argv = ("find", "-H", directory, "-maxdepth", "1", "-type", "f", "-name", pattern,
            "-printf", "%T@\\t%s\\t%p\\n")  # fmt: skip
    try:
        listing = await _run(shell, argv, timeout=seconds)
    except CommandTimeout:
        said = f"cannot list backups: find did not finish within {seconds:.0f} s (a hung mount?)"
        return Finding("backup.files", Status.UNKNOWN, given, said)
    evidence = _evidence(listing)
    if not listing.ok:
        why = (listing.stderr.strip().splitlines() or ["find failed"])[-1]
        said = f"cannot list backups: {why}"
        return Finding("backup.files", Status.CRIT, given, said, (evidence,))
    files = []
    for line in listing.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            with contextlib.suppress(ValueError):
                files.append((float(parts[0]), int(parts[1]), parts[2]))
    if not files:
        return Finding("backup.files", Status.CRIT, given, f"no backups match {given}", (evidence,))
    by_series: dict[str, list[tuple[float, int, str]]] = {}
    for entry in files:
        by_series.setdefault(series_of(entry[2].rsplit("/", 1)[-1]), []).append(entry)
    found = []
    for name, entries in sorted(by_series.items()):
        entries.sort(reverse=True)
        (mtime, size, _), problems = entries[0], []
        age_h = max(0.0, now - mtime) / 3600  # date +%s is whole seconds
        if age_h > max_age:
            problems.append(f"newest is {age_h:.0f} h old (over {max_age:g} h)")
        if len(entries) > 1 and size < entries[1][1] * BACKUP_SHRINK:
            problems.append(f"{human_bytes(size)}, down from {human_bytes(entries[1][1])}")
        found.append(_Series(directory, name, tuple(entries), evidence, tuple(problems)))
    return found


BACKUPS = ShellCheck("backup.files", "Backups: age, size, integrity", _check_backups, DOMAIN)
