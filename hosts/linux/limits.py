"""Pure parsers of the kernel's limits on open files: /proc/sys/fs/file-nr, a process's
/proc/PID/limits, the per-process descriptor counts (`find /proc/*/fd | cut | uniq -c`), and
the `path:value` lines `grep -H . FILES` prints for sysctl files."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError


@dataclass(frozen=True, slots=True)
class FileNr:
    """System-wide file handles: allocated now, and the most the kernel gives (fs.file-max)."""

    allocated: int
    maximum: int


def parse_file_nr(text: str) -> FileNr:
    """`/proc/sys/fs/file-nr`: allocated, free (always 0 since 2.6), maximum."""
    fields = text.split()
    if len(fields) != 3 or not all(f.isdecimal() for f in fields):
        raise ParseError(f"file-nr: expected three numbers, got {text.strip()[:80]!r}")
    return FileNr(int(fields[0]), int(fields[2]))


_OPEN_FILES = re.compile(r"^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)\s+files", re.M)


def parse_open_files_limit(text: str) -> tuple[int | None, int | None]:
    """(soft, hard) "Max open files" from /proc/PID/limits; None is unlimited."""
    match = _OPEN_FILES.search(text)
    if match is None:
        raise ParseError("limits: no 'Max open files' line")
    soft, hard = (None if v == "unlimited" else int(v) for v in match.groups())
    return soft, hard


def parse_fd_counts(text: str) -> dict[int, int]:
    """PID to open descriptors from `uniq -c` lines (`  4000 123`: count, then PID)."""
    counts: dict[int, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdecimal() and fields[1].isdecimal():
            counts[int(fields[1])] = counts.get(int(fields[1]), 0) + int(fields[0])
    return counts


@dataclass(frozen=True, slots=True)
class ProcessLimit:
    """One process's name and open-files limits, from a `==> PID NAME` section."""

    pid: int
    name: str
    soft: int | None
    hard: int | None


def parse_process_limits(text: str) -> dict[int, ProcessLimit]:
    """Sections `==> PID COMM` followed by that process's /proc/PID/limits text; a section
    whose limits could not be read (the process ended) is left out."""
    found: dict[int, ProcessLimit] = {}
    for section in text.split("==> ")[1:]:
        head, _, body = section.partition("\n")
        pid, _, name = head.partition(" ")
        if not pid.isdecimal():
            continue
        try:
            soft, hard = parse_open_files_limit(body)
        except ParseError:
            continue
        found[int(pid)] = ProcessLimit(int(pid), name, soft, hard)
    return found


def parse_grep_values(text: str) -> dict[str, str]:
    """`path:value` lines (from `grep -H . FILES`) as path to value; others skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith("/"):
            values[path] = value.strip()
    return values
