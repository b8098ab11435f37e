"""Runbook R06: the error lines of the last minutes, grouped and counted; and a unit's log,
followed, for a logs view.

`services.logs` reads `journalctl -p err --since -Nmin -o json` (at most MAX_ENTRIES, the
newest), groups the lines by unit and by kind (`hosts.linux.journal.fold`: numbers, ids and
addresses folded), and lists the groups newest first with their counts and one real line
each, as evidence. No error line is OK: a healthy host is quiet. A host without a journal
(no journalctl, or no systemd) reads the files the settings name (`log_files`): their last
FILE_BYTES, the lines that look like errors; with neither, it says so and is OK.

`UnitLog` follows one unit's journal for a logs view without holding a channel open: every
poll asks for the entries after the last cursor (`journalctl -u UNIT --after-cursor`), at
most POLL_ENTRIES at a time, and keeps the last `keep` lines in a bounded buffer, counting
what it dropped. It works over any `Shell` (each read has its own timeout), so a dropped SSH
connection is a failed poll, said as such, and the next one resumes from the cursor.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, host_time, run, why
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status, printable
from fleetdeck.checks.services.config import (
    DEFAULT_LOG_CRIT,
    DEFAULT_LOG_MINUTES,
    DEFAULT_LOG_WARN,
)
from fleetdeck.checks.services.units import DOMAIN, has_systemd
from fleetdeck.hosts.linux.journal import Entry, fold, parse_json_lines
from fleetdeck.hosts.linux.systemd import parse_unit_name
from fleetdeck.hosts.shell import Shell, ShellError
from fleetdeck.hosts.units import human_duration

LOGS_ID = "services.logs"
MAX_ENTRIES = 5000
"""Newest error entries read per run: a flood costs no more than this."""
GROUPS_SHOWN = 12
FILE_BYTES = 256 * 1024
"""What is read from the end of each log file when there is no journal."""
FILE_ERRORS = re.compile(r"\b(error|err|crit|critical|fatal|emerg|alert|panic)\b", re.I)
JOURNAL_TIMEOUT = 20.0


@dataclass(slots=True)
class Group:
    """Lines of one source and one kind: how many, the newest time, one line as it was."""

    source: str
    kind: str
    count: int = 0
    newest: float | None = None
    example: str = ""


def group(entries: Sequence[Entry]) -> list[Group]:
    """Entries grouped by source and kind, the group with the newest line first (a group
    without times last), then the largest."""
    groups: dict[tuple[str, str], Group] = {}
    for entry in entries:
        key = (entry.source, fold(entry.message))
        found = groups.setdefault(key, Group(*key))
        found.count += 1
        if entry.at is not None and (found.newest is None or entry.at >= found.newest):
            found.newest, found.example = entry.at, entry.message
        elif not found.example:
            found.example = entry.message
    return sorted(groups.values(), key=lambda g: (-(g.newest or 0.0), -g.count, g.source))


def describe(groups: Sequence[Group], now: float, limit: int = GROUPS_SHOWN) -> str:
    """The groups as evidence lines: count, age of the newest, source, one line (escaped)."""
    lines = []
    for g in groups[:limit]:
        age = f"{human_duration(now - g.newest)} ago" if g.newest is not None else "?"
        example = printable(g.example, one_line=True)[:300]
        lines.append(f"{g.count:>6}  {age:>9}  {printable(g.source, one_line=True)}: {example}")
    if len(groups) > limit:
        lines.append(f"… {len(groups) - limit} more kinds")
    return "\n".join(lines)


def _grade(count: int, warn: int, crit: int) -> Status:
    return Status.CRIT if count >= crit else Status.WARN if count >= warn else Status.OK


async def _check_logs(ctx: CheckContext, shell: Shell) -> list[Finding]:
    try:
        minutes = float(ctx.params.get("log_minutes") or DEFAULT_LOG_MINUTES)
        warn = int(ctx.params.get("log_warn") or DEFAULT_LOG_WARN)
        crit = int(ctx.params.get("log_crit") or DEFAULT_LOG_CRIT)
    except ValueError as error:
        raise StepFailed(f"bad parameter: {error}") from None
    files = [p for p in ctx.params.get("log_files", "").splitlines() if p]
    if await has_systemd(shell):
        return [await _journal(ctx.host, shell, minutes, warn, crit)]
    if files:
        return [await _files(ctx.host, shell, files, minutes, warn, crit)]
    said = "no journal on this host (no systemd) and no log_files in the settings"
    return [Finding(LOGS_ID, Status.OK, ctx.host, said)]


async def _journal(host: str, shell: Shell, minutes: float, warn: int, crit: int) -> Finding:
    argv = (
        "journalctl", "--no-pager", "-q", "-p", "err", f"--since=-{minutes:g}min",
        "-o", "json", "-n", str(MAX_ENTRIES),
    )  # fmt: skip
    result = await run(shell, argv, JOURNAL_TIMEOUT)
    if not result.ok:
        raise StepFailed(f"{result.command}: {why(result)}")
    parsed = parse_json_lines(result.stdout)
    now = await host_time(shell)
    groups = group(parsed.entries)
    count = len(parsed.entries)
    status = _grade(count, warn, crit)
    window = f"the last {minutes:g} min"
    if not count:
        summary = f"no error lines in {window}"
    else:
        most = max(groups, key=lambda g: g.count)
        capped = " (the newest; there are more)" if count >= MAX_ENTRIES else ""
        summary = (
            f"{count} error lines{capped} in {window}: {len(groups)} kinds from "
            f"{len({g.source for g in groups})} sources; most from "
            f"{printable(most.source, one_line=True)} ({most.count})"
        )
    if parsed.unreadable:
        summary += f"; {parsed.unreadable} lines could not be read"
        status = max(status, Status.UNKNOWN, key=lambda s: s.rank)
    proof = (Evidence(result.command, describe(groups, now) or "(none)"),)
    return Finding(LOGS_ID, status, host, summary, proof)


async def _files(
    host: str, shell: Shell, files: Sequence[str], minutes: float, warn: int, crit: int
) -> Finding:
    """Error-looking lines at the end of each file modified within the window."""
    now = await host_time(shell)
    entries: list[Entry] = []
    proof: list[Evidence] = []
    unread: list[str] = []
    for path in files:
        stat = await run(shell, ("stat", "-c", "%Y", "--", path))
        if not stat.ok or not stat.stdout.strip().isdecimal():
            unread.append(f"{path}: {why(stat)}")
            continue
        modified = float(stat.stdout.strip())
        if now - modified > minutes * 60:
            continue  # nothing written within the window
        tail = await run(shell, ("tail", "-c", str(FILE_BYTES), "--", path))
        if not tail.ok:
            unread.append(f"{path}: {why(tail)}")
            continue
        found = [line for line in tail.stdout.splitlines() if FILE_ERRORS.search(line)]
        entries += [Entry(modified, path, None, line, "") for line in found]
    groups = group(entries)
    if groups:
        proof.append(Evidence(f"tail -c {FILE_BYTES} " + " ".join(files), describe(groups, now)))
    status = _grade(len(entries), warn, crit)
    summary = (
        f"{len(entries)} error lines at the end of {len(files)} log files written in the last "
        f"{minutes:g} min (no journal on this host)"
        if entries
        else f"no error lines in {len(files)} log files (no journal on this host)"
    )
    if unread:
        summary += "; could not read " + "; ".join(printable(u, one_line=True) for u in unread)
        status = max(status, Status.UNKNOWN, key=lambda s: s.rank)
    return Finding(LOGS_ID, status, host, summary, tuple(proof))


LOGS = ShellCheck(LOGS_ID, "Error lines in the journal, grouped", _check_logs, DOMAIN)


# -- a unit's log, followed -----------------------------------------------------------------

TAIL = 500
KEEP = 5000
POLL_ENTRIES = 2000
FOLLOW_EVERY = 1.0
"""Seconds between two polls while following."""


@dataclass(slots=True)
class UnitLog:
    """One unit's journal for a logs view: `poll()` reads what is new since the last poll.

    Lines are raw bytes in the form a view's buffer takes (`Entry.line`: an RFC 3339 time,
    a space, the message); they are host text, escaped by whoever shows them."""

    shell: Shell
    unit: str
    tail: int = TAIL
    keep: int = KEEP
    lines: deque[bytes] = field(init=False)
    dropped: int = 0
    cursor: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        self.unit = parse_unit_name(self.unit)
        self.lines = deque(maxlen=self.keep)

    async def poll(self) -> list[bytes]:
        """The new lines (also kept in `lines`); [] with `error` set when the read failed."""
        where = ("--after-cursor", self.cursor) if self.cursor else ("-n", str(self.tail))
        argv: tuple[str, ...] = (
            "journalctl", "--no-pager", "-q", "-u", self.unit, "-o", "json", *where,
        )  # fmt: skip
        if self.cursor:  # the newest POLL_ENTRIES after it: a flood never comes in whole
            argv = (*argv, "-n", str(POLL_ENTRIES))
        try:
            result = await self.shell.run(argv, timeout=JOURNAL_TIMEOUT)
        except ShellError as error:  # a dropped connection is a failed poll, said as such
            self.error = str(error)
            return []
        if not result.ok:
            self.error = f"{result.command}: {why(result)}"
            return []
        self.error = None
        entries = parse_json_lines(result.stdout).entries
        if entries and entries[-1].cursor:
            self.cursor = entries[-1].cursor
        new = [entry.line() for entry in entries]
        overflow = len(self.lines) + len(new) - self.keep
        self.dropped += max(overflow, 0)
        self.lines.extend(new)
        return new

    async def follow(self, interval: float = FOLLOW_EVERY) -> AsyncIterator[bytes]:
        """Every line from the tail on, as `async for line in log.follow()`, the way a
        container's `LogStream` is read: a poll each `interval` seconds, for as long as the
        reader reads; a failed poll leaves `error` set and the next one tries again."""
        while True:
            for line in await self.poll():
                yield line
            await asyncio.sleep(interval)
