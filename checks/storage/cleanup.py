"""Space to win back (runbook S1): logs past their keeping time, listed with the space they
hold, then removed, or compressed, through the gate, each fix pinned on exactly its list.

Two checks over the same directory, because the two fixes are verified differently: after a
removal no old file is left (`disk.old_logs` is OK), after compression the old files are still
there as .gz files, and only old files not yet compressed are gone (`disk.uncompressed_logs`
is OK). An operator who compresses sees the old .gz files still offered for removal.

A file some process still has open (a quiet daemon's active log, not written for days) is left
out of both fixes and named in the finding: removing it frees nothing while the process lives,
and gzip would leave the process writing to a deleted file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, free_bytes
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
from fleetdeck.checks.storage.config import parse_days
from fleetdeck.hosts.shell import CommandResult, Shell
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"
LOG_DAYS = 7
LISTING_TIMEOUT = 60.0
"""A cold tree of many files is slow to walk: the listing, and the pin that walks it again."""
FIELDS = "%i %s %b %p\\0"
"""One listing record: inode, size, 512-byte blocks, path; NUL-ended, as a name may hold a
newline (which would otherwise fake a record)."""


def parse_size(text: str) -> str:
    """A size such as `500M`, `2G`, `1.5GiB` (binary multiples) or a number of bytes: the
    bytes, as a string."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError("a size such as 500M or 2G")
    number, prefix = match.groups()
    return str(round(float(number) * 1024 ** " kmgt".index(prefix.lower() or " ")))


def param_days(ctx: CheckContext, name: str, default: int) -> int:
    """A number-of-days parameter, checked again: a caller may hand it over as typed."""
    text = ctx.params.get(name) or str(default)
    try:
        return int(parse_days(text.strip()))
    except ValueError as error:
        raise StepFailed(f"{name} {text!r}: {error}") from None


@dataclass(frozen=True, slots=True)
class LogFile:
    inode: int
    size: int
    usage: int
    """Bytes allocated on disk (find's %b, 512-byte blocks): what removing it frees."""
    path: str


def parse_log_listing(text: str) -> list[LogFile]:
    """`find -printf '%i %s %b %p\\0'` records; a path may hold spaces and newlines."""
    files = []
    for record in text.split("\0"):
        fields = record.split(" ", 3)
        if len(fields) == 4 and all(f.isdecimal() for f in fields[:3]) and fields[3]:
            inode, size, blocks = (int(f) for f in fields[:3])
            files.append(LogFile(inode, size, blocks * 512, fields[3]))
    return files


def _old_files(directory: str, days: int, *tests: str) -> tuple[str, ...]:
    """`find` for the regular files under `directory` (this filesystem only) older than
    `days`, narrowed by `tests`; the caller adds the action."""
    return ("find", directory, "-xdev", "-type", "f", "-mmin", f"+{days * 1440}", *tests)


async def _listing(shell: Shell, argv: Sequence[str], directory: str) -> str:
    listing = await _run(shell, argv, timeout=LISTING_TIMEOUT)
    if not listing.ok:
        why = (listing.stderr.strip().splitlines() or [f"exit {listing.exit_status}"])[-1]
        raise StepFailed(f"cannot list {directory}: {why}")
    return listing.exact_stdout  # a name that is not UTF-8 is kept, and shown escaped


SHOWN_LINES = 200
"""Evidence lists at most this many files; the pin covers every one of them."""


def _path(path: str) -> str:
    """A path to show on one line: a newline in it reads `\\n`."""
    return printable(path.replace("\n", "\\n"))


def _shown(argv: Sequence[str], files: Sequence[LogFile]) -> Evidence:
    """The listing as records, one a line, as find printed them (NUL-separated)."""
    lines = [f"{f.inode} {f.size} {f.usage // 512} {_path(f.path)}" for f in files[:SHOWN_LINES]]
    text = "\n".join(lines) or "(none)"
    if len(files) > SHOWN_LINES:
        text += f"\n… and {len(files) - SHOWN_LINES:,} more (the fix's pin covers them all)"
    return Evidence(shlex.join(argv), text)


def _digest(argv: Sequence[str]) -> tuple[str, ...]:
    """The listing's checksum, read on the host: a pin that stays one line however many
    files it covers (a 200,000-file tree lists megabytes)."""
    return ("sh", "-c", '"$@" | sha256sum', "sh", *argv)


async def _pin(shell: Shell, what: str, argv: Sequence[str], directory: str) -> Pin:
    """Taken after the listing, over the same `find` the fix narrows to its action."""
    value = (await _listing(shell, _digest(argv), directory)).strip()
    return Pin(what, _digest(argv), value, timeout=LISTING_TIMEOUT)


def _count(files: Sequence[object]) -> str:
    return f"{len(files)} file{'s' if len(files) != 1 else ''}"


def _usage(files: Sequence[LogFile]) -> int:
    """Space the files hold, a file with two names under the directory counted once."""
    return sum({f.inode: f.usage for f in files}.values())


# -- files a process still has open -----------------------------------------------------------

OPEN_SCRIPT = (
    'd=$(cd -P -- "$1" && pwd -P) || exit 1; '
    "printf '%s\\0' \"$d\"; "
    "p=$(printf '%s\\n' \"$d\" | sed 's/[][*?\\\\]/\\\\&/g'); "
    'exec find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname "$p/*" '
    "-printf '%h\\0%l\\0' 2>/dev/null"
)
"""Every process's open files under $1, in one walk of /proc/*/fd that reads links and never
touches the files (a hung mount cannot stall it): the directory as the links name it (its
symlinks resolved), then `/proc/PID/fd` and the file for each open one. Processes that end
meanwhile, or that this user may not see, are passed over."""


def parse_open_files(text: str, directory: str) -> dict[str, set[int]]:
    """OPEN_SCRIPT's output: {path as the listing names it under `directory`: pids}."""
    real, *records = text.split("\0")
    held: dict[str, set[int]] = {}
    for fd_dir, target in zip(records[0::2], records[1::2], strict=False):
        pid = fd_dir.removeprefix("/proc/").removesuffix("/fd")
        if pid.isdecimal() and target.startswith(real + "/"):
            held.setdefault(directory + target[len(real) :], set()).add(int(pid))
    return held


@dataclass(frozen=True, slots=True)
class StillOpen:
    """Listed files that a process has open: left out of the fix, named in the finding."""

    files: tuple[LogFile, ...] = ()
    said: str = ""
    evidence: tuple[Evidence, ...] = ()

    def left(self, files: Sequence[LogFile]) -> list[LogFile]:
        """The listed files a fix may act on: those no process has open."""
        return [f for f in files if f not in self.files]

    @property
    def words(self) -> str:
        """What the finding's summary adds about them ("" when none is open)."""
        return f"; {self.said}" if self.said else ""

    def exclude(self) -> tuple[str, ...]:
        """`find` tests that leave these files out (by inode: one filesystem, -xdev)."""
        return tuple(a for f in self.files for a in ("!", "-inum", str(f.inode)))


async def _still_open(shell: Shell, directory: str, files: Sequence[LogFile]) -> StillOpen:
    argv = ("sh", "-c", OPEN_SCRIPT, "sh", directory)
    scan = await _run(shell, argv, timeout=LISTING_TIMEOUT)
    if scan.exit_status not in (0, 1) or "\0" not in scan.stdout:
        return StillOpen(said=f"could not check which are still open ({_why(scan)})")
    held = parse_open_files(scan.exact_stdout, directory)  # matched with the exact listing
    open_files = tuple(f for f in files if f.path in held)
    if not open_files:
        return StillOpen()
    pids = sorted({pid for f in open_files for pid in held[f.path]})
    names = await _run(shell, ("grep", "-H", "", "--", *(f"/proc/{p}/comm" for p in pids)))
    comm = dict(
        (path.removeprefix("/proc/").removesuffix("/comm"), name)
        for path, _, name in (line.partition(":") for line in names.stdout.splitlines())
    )
    by = [f"{printable(comm.get(str(p), '?'))} (pid {p})" for p in pids[:3]]
    more = f" and {len(pids) - 3} more" if len(pids) > 3 else ""
    n = len(open_files)
    said = (
        f"{n} old file{'s are' if n != 1 else ' is'} still open by {', '.join(by)}{more}: left out"
    )
    shown = "\n".join(
        f"pid {', '.join(str(p) for p in sorted(held[f.path]))}: {_path(f.path)}"
        for f in open_files
    )
    return StillOpen(open_files, said, (Evidence(shlex.join(argv), shown),))


def _why(result: CommandResult) -> str:
    said = result.stderr.strip().splitlines()
    return said[-1] if said else f"exit status {result.exit_status}"


# -- old logs, with a fix that removes them ---------------------------------------------------


async def _check_old_logs(ctx: CheckContext, shell: Shell) -> list[Finding]:
    directory = ctx.params["logs"]
    days = param_days(ctx, "older", LOG_DAYS)
    # One listing, with inode and blocks, is both the evidence and the pin: the fix runs only
    # if exactly these files are still the ones it would remove.
    listing_argv = _old_files(directory, days, "-printf", FIELDS)
    files = parse_log_listing(await _listing(shell, listing_argv, directory))
    free = await free_bytes(shell, directory)
    room = f"; {human_bytes(free)} free there" if free is not None else ""
    evidence: tuple[Evidence, ...] = (_shown(listing_argv, files),)
    target = f"{directory} (older than {days} d)"
    if not files:
        summary = f"no files older than {days} days under {directory}{room}"
        return [Finding("disk.old_logs", Status.OK, target, summary, evidence)]
    still = await _still_open(shell, directory, files)
    files, evidence, held = still.left(files), evidence + still.evidence, still.words
    if not files:
        summary = f"no files older than {days} days to remove under {directory}{room}{held}"
        return [Finding("disk.old_logs", Status.OK, target, summary, evidence)]
    count, total = _count(files), _usage(files)
    summary = f"{count} older than {days} days, {human_bytes(total)}{room}{held}"
    what = f"the list of files older than {days} days (sha256 of inode, size, blocks, path)"
    fix = Fix(
        id="disk.old_logs.remove",
        title=f"remove {count} older than {days} days under {directory}",
        risk=Risk.DESTRUCTIVE,
        commands=(_old_files(directory, days, *still.exclude(), "-delete"),),
        target=target,
        pin=await _pin(
            shell, what, _old_files(directory, days, *still.exclude(), "-printf", FIELDS), directory
        ),
        verify="disk.old_logs",
        frees=total,
        frees_on=directory,
        impact=f"frees {human_bytes(total)} by deleting {count} for good (listed in the evidence)"
        + (f"; {still.said}, as deleting them would free nothing" if still.files else ""),
    )
    return [Finding("disk.old_logs", Status.WARN, target, summary, evidence, (fix,))]


OLD_LOGS = ShellCheck("disk.old_logs", "Old logs", _check_old_logs, DOMAIN)

# -- old logs not yet compressed, with a fix that gzips them -----------------------------------

_ARCHIVES = ("gz", "tgz", "z", "xz", "txz", "zst", "bz2", "tbz2", "lz4", "lz", "lzma", "zip", "7z")
COMPRESSED = tuple(f"*.{ext}" for ext in _ARCHIVES)
"""Names gzip would refuse or gain nothing on (matched without regard to case)."""
SAMPLE_BYTES = 1 << 20
"""How much of the largest file is compressed up front to estimate the ratio."""
SAMPLE_SCRIPT = '{ { head -c "$2" -- "$1"; echo "read $?" >&3; } | gzip -6 -c | wc -c; } 3>&1'
"""Prints the compressed size of the sample and `read STATUS`, head's own exit status (a
pipeline's status is only its last command's: an unreadable file compresses to 20 bytes)."""
BLOCK = 4096


def _not_compressed() -> tuple[str, ...]:
    # Empty files would grow; gzip refuses files with other hard links: both are left alone.
    skip = tuple(arg for pattern in COMPRESSED for arg in ("!", "-iname", pattern))
    return (*skip, "!", "-empty", "-links", "1")


def estimate_saving(files: Sequence[LogFile], ratio: float) -> int:
    """Bytes compression frees if every file shrinks to `ratio` of its size: what each one
    holds on disk less its .gz rounded up to whole blocks (a small file frees little)."""
    saved = 0
    for f in files:
        gz = -(-int(f.size * ratio + 64) // BLOCK) * BLOCK  # header and trailer, whole blocks
        saved += max(f.usage - gz, 0)
    return saved


def parse_sample(text: str) -> tuple[int, int] | None:
    """SAMPLE_SCRIPT's output, its two lines in either order: (head's exit status,
    compressed bytes), or None if garbled."""
    status: list[int] = []
    sizes: list[int] = []
    for line in text.splitlines():
        word = line.strip()
        if word.startswith("read ") and word[5:].isdecimal():
            status.append(int(word[5:]))
        elif word.isdecimal():
            sizes.append(int(word))
    return (status[0], sizes[0]) if len(status) == len(sizes) == 1 else None


async def _sample_ratio(shell: Shell, largest: LogFile) -> tuple[float, Evidence] | str:
    """Compress the first MiB of the largest file (nothing written): its real ratio, or why
    it could not be read."""
    sample = min(largest.size, SAMPLE_BYTES)
    argv = ("sh", "-c", SAMPLE_SCRIPT, "sh", largest.path, str(sample))
    result = await _run(shell, argv, timeout=30)
    parsed = parse_sample(result.stdout) if result.ok else None
    if parsed is None or parsed[0] != 0 or sample <= 0:
        return f"{printable(largest.path)} could not be read to sample it ({_why(result)})"
    ratio = parsed[1] / sample
    said = f"{human_bytes(sample)} of {printable(largest.path)} compresses to {ratio:.1%}"
    return ratio, Evidence(shlex.join(argv), said)


async def _check_uncompressed(ctx: CheckContext, shell: Shell) -> list[Finding]:
    directory = ctx.params["logs"]
    days = param_days(ctx, "older", LOG_DAYS)
    listing_argv = _old_files(directory, days, *_not_compressed(), "-printf", FIELDS)
    files = parse_log_listing(await _listing(shell, listing_argv, directory))
    evidence: tuple[Evidence, ...] = (_shown(listing_argv, files),)
    target = f"{directory} (uncompressed, older than {days} d)"
    none = f"no uncompressed files older than {days} days under {directory}"
    if not files:
        return [Finding("disk.uncompressed_logs", Status.OK, target, none, evidence)]
    still = await _still_open(shell, directory, files)
    files, evidence, held = still.left(files), evidence + still.evidence, still.words
    if not files:
        summary = f"no uncompressed files older than {days} days to gzip under {directory}{held}"
        return [Finding("disk.uncompressed_logs", Status.OK, target, summary, evidence)]
    count, total = _count(files), _usage(files)
    found = f"{count} older than {days} days not yet compressed, {human_bytes(total)}"
    sampled = await _sample_ratio(shell, max(files, key=lambda f: f.size))
    if isinstance(sampled, str):  # no estimate: promise nothing, offer nothing
        summary = f"{found}; what gzip would free is not known: {sampled}{held}"
        return [Finding("disk.uncompressed_logs", Status.UNKNOWN, target, summary, evidence)]
    ratio, evidence = sampled[0], (*evidence, sampled[1])
    saving = estimate_saving(files, ratio)
    if saving <= 0:
        summary = (
            f"{found}; gzip would free nothing (a sample compressed to {ratio:.0%}, and each "
            f".gz keeps whole {BLOCK // 1024} KiB blocks){held}"
        )
        return [Finding("disk.uncompressed_logs", Status.OK, target, summary, evidence)]
    summary = f"{found}; gzip would free about {human_bytes(saving)}{held}"
    what = f"the uncompressed files older than {days} days (sha256 of inode, size, blocks, path)"
    tests = (*_not_compressed(), *still.exclude())
    fix = Fix(
        id="disk.uncompressed_logs.compress",
        title=f"gzip {count} older than {days} days under {directory}",
        risk=Risk.DISRUPTIVE,
        # -execdir: gzip runs inside each directory find holds open, on ./NAME, so a directory
        # swapped for a symlink while the fix runs cannot lead it out of the tree.
        commands=(_old_files(directory, days, *tests, "-execdir", "gzip", "--", "{}", "+"),),
        target=target,
        pin=await _pin(
            shell, what, _old_files(directory, days, *tests, "-printf", FIELDS), directory
        ),
        verify="disk.uncompressed_logs",
        frees=saving,
        frees_on=directory,
        timeout=600.0,
        impact=(
            f"replaces {count} ({human_bytes(total)}) with .gz files; frees about "
            f"{human_bytes(saving)}, an estimate (gzip shrank a sample to {ratio:.1%}; the gate "
            "measures the real figure). Files a process has open are left out; a process "
            "still writing to one it opened after this check keeps writing to the deleted "
            "original, and its space comes back only when it reopens its log. gzip needs room "
            "for each .gz beside its original while it runs."
        ),
    )
    return [Finding("disk.uncompressed_logs", Status.WARN, target, summary, evidence, (fix,))]


UNCOMPRESSED_LOGS = ShellCheck(
    "disk.uncompressed_logs", "Old logs not yet compressed", _check_uncompressed, DOMAIN
)
