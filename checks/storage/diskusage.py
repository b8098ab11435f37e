"""What uses the space (runbook S6): the largest directories and files under a path.

The path is the `usage` parameter (`--usage`, or `usage` in [storage]) or, without one, the
fullest local filesystem `df -l` shows (tmpfs, devtmpfs, overlay and squashfs left out; never
a network mount, which may hang). A path that is a symbolic link is followed (`du -H`,
`find -H`): its target is what is measured. Nothing is ever crawled without two bounds:
`du -x -d DEPTH` (2 levels) and the host's `timeout -s KILL SECONDS` (20 s; at most 25, since
the wizard gives a step 30 s; `usage_depth` and `usage_seconds` in the check's parameters
change them for tests, no setting or flag does). `du` and `find` (the files over 1 MiB) run
side by side under the same bound, through `stdbuf -o0` where the host has it, so whatever
they printed before a kill reaches us: the finding then shows that partial listing and says
which bound was hit; with nothing at all, it asks for a smaller directory below the path.

Both print NUL-terminated `SIZE<TAB>PATH` records, so names with spaces, tabs or newlines come
out whole; they are shown with control characters escaped (`\\n`). Directories `du` cannot
read are counted, not fatal. The finding is informative (OK), a warning when the path's
filesystem is at or above the disk warning threshold, UNKNOWN when the path is missing or
unreadable or nothing came back in time.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status, printable
from fleetdeck.hosts.shell import CommandTimeout, Shell
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"
DEFAULT_DEPTH = 2
DEFAULT_SECONDS = 20
MAX_SECONDS = 25
SHELL_GRACE = 3.0
"""Seconds our own wait on a command outlasts the host's `timeout`, so the host's kill (and
the partial output before it) is what we see."""
KILLED = (137, -9)
"""How a command killed by `timeout -s KILL` ends: timeout kills its own process group, itself
included, so a shell reports 128 + 9 and a direct parent (asyncio, sshd) signal 9."""
LARGE_FILE = "+1M"
SUMMARY_DIRS = 5
LISTED = 20
TOP_FILES = 10
LOCAL_DF = (
    "df",
    "-l",
    "-P",
    "-B1",
    "-x",
    "tmpfs",
    "-x",
    "devtmpfs",
    "-x",
    "overlay",
    "-x",
    "squashfs",
)

# -- parameters -----------------------------------------------------------------------------


def parse_usage_path(text: str) -> str:
    """The wizard parameter `usage`: an absolute path ('/' too: the bounds hold)."""
    path = text.strip()
    if not path.startswith("/") or "\n" in path:
        raise ValueError("give an absolute path")
    return path.rstrip("/") or "/"


def _bounded_int(text: str, low: int, high: int, what: str) -> str:
    if not text.strip().isdecimal() or not low <= int(text) <= high:
        raise ValueError(f"{what}, from {low} to {high}")
    return str(int(text))


def parse_depth(text: str) -> str:
    return _bounded_int(text, 1, 10, "directory levels to list")


def parse_seconds(text: str) -> str:
    return _bounded_int(text, 1, MAX_SECONDS, "seconds du and find may run")


# -- pure parsers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Space:
    """One `df -P -B1` row: bytes, and Capacity as df rounds it."""

    source: str
    size: int
    used: int
    available: int
    percent: int
    mountpoint: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A directory or file and its size in bytes."""

    size: int
    path: str


# The mount point is everything after the capacity column, spaces and all.
_DF_ROW = re.compile(
    r"^(?P<source>.+?)\s+(?P<size>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+(?P<pct>\d+)%\s+"
    r"(?P<mount>/.*)$",
    re.ASCII,
)


def parse_df(text: str) -> tuple[Space, ...]:
    """Rows of `df -P -B1`; the header and lines it cannot read are skipped."""
    rows = []
    for line in text.splitlines():
        if m := _DF_ROW.match(line):
            size, used, avail = int(m["size"]), int(m["used"]), int(m["avail"])
            rows.append(Space(m["source"], size, used, avail, int(m["pct"]), m["mount"]))
    return tuple(rows)


def fullest(rows: Sequence[Space]) -> Space | None:
    """The fullest filesystem with any size, the one using more bytes on a tie."""
    real = [row for row in rows if row.size > 0]
    return max(real, key=lambda row: (row.percent, row.used)) if real else None


def parse_sized_paths(text: str) -> tuple[Entry, ...]:
    """`du -0 -B1` and `find -printf '%s\\t%p\\0'` output: NUL-terminated `SIZE<TAB>PATH`.
    A last record without its NUL (the command was killed mid-write) is dropped."""
    entries = []
    for record in text.split("\0")[:-1]:
        size, tab, path = record.partition("\t")
        if tab and path and size.isascii() and size.isdecimal():
            entries.append(Entry(int(size), path))
    return tuple(entries)


def error_lines(stderr: str, tool: str) -> tuple[str, ...]:
    """The diagnostics a tool printed (`du: cannot read directory '…': Permission denied`)."""
    return tuple(line for line in stderr.splitlines() if line.startswith(f"{tool}: "))


def largest(entries: Sequence[Entry], count: int, leave_out: str = "") -> list[Entry]:
    ranked = sorted((e for e in entries if e.path != leave_out), key=lambda e: (-e.size, e.path))
    return ranked[:count]


def relative(path: str, root: str) -> str:
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


# -- bounded listings -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """What one bounded `du` or `find` gave back, whole or cut off by its time bound."""

    tool: str
    command: str
    entries: tuple[Entry, ...]
    errors: tuple[str, ...]
    exit_status: int
    stopped: bool
    seconds: int


def du_argv(path: str, depth: int) -> tuple[str, ...]:
    return ("du", "-H", "-x", "-0", "-d", str(depth), "-B1", path)


def find_argv(path: str) -> tuple[str, ...]:
    return ("find", "-H", path, "-xdev", "-type", "f", "-size", LARGE_FILE, "-printf", "%s\\t%p\\0")


async def bounded(shell: Shell, argv: Sequence[str], seconds: int) -> Listing:
    """Run argv under the host's `timeout -s KILL`, unbuffered where `stdbuf` exists."""
    bound = ("timeout", "-s", "KILL", str(seconds))
    try:
        result = await _run(shell, (*bound, "stdbuf", "-o0", *argv), seconds + SHELL_GRACE)
        if result.exit_status == 127:  # no stdbuf: output comes in blocks, the last one lost
            result = await _run(shell, (*bound, *argv), seconds + SHELL_GRACE)
    except CommandTimeout:  # the host went quiet past its own kill: nothing came back
        return Listing(argv[0], shlex.join(argv), (), (), -9, True, seconds)
    entries = parse_sized_paths(result.stdout)
    errors = error_lines(result.stderr, argv[0])
    if result.exit_status not in (0, 1, *KILLED) and not errors:
        errors = tuple(result.stderr.strip().splitlines()[-1:]) or (f"exit {result.exit_status}",)
    stopped = result.exit_status in KILLED
    return Listing(argv[0], result.command, entries, errors, result.exit_status, stopped, seconds)


# -- the finding ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Everything the finding is made from."""

    path: str
    space: Space | None
    du: Listing
    find: Listing
    depth: int
    chosen: bool = False


def _unknown_reason(usage: Usage) -> str | None:
    du, path = usage.du, printable(usage.path, one_line=True)
    if du.stopped and not du.entries:
        return (
            f"du printed nothing under {path} within {du.seconds} s (its time bound): ask "
            "for a smaller directory below it (--usage DIR, or `usage` in [storage])"
        )
    if not (du.stopped or du.exit_status in (0, 1)) or not du.entries:
        why = du.errors[-1] if du.errors else f"du exit status {du.exit_status}"
        return f"cannot list {path}: {why}"
    if du.errors and all(e.path == usage.path for e in du.entries):
        return f"cannot read {path}: {du.errors[-1]}"
    return None


def _partial(listing: Listing) -> str:
    return f" (partial: {listing.tool} stopped after {listing.seconds} s)"


def _head(usage: Usage) -> str:
    """'/srv (chosen: …): 1.2 GiB under it (partial: du stopped after 20 s)'."""
    head = printable(usage.path, one_line=True)
    if usage.chosen and usage.space is not None:
        head += f" (chosen: the fullest local filesystem, {usage.space.percent} % used)"
    total = next((e.size for e in usage.du.entries if e.path == usage.path), None)
    head += f": {human_bytes(total)} under it" if total is not None else ": total unknown"
    return head + (_partial(usage.du) if usage.du.stopped else "")


def _top_directories(usage: Usage) -> str:
    """The largest directly below the path (any depth if du was stopped before those)."""
    ranked = largest(usage.du.entries, len(usage.du.entries), usage.path)
    top = [e for e in ranked if "/" not in relative(e.path, usage.path)] or ranked
    named = (
        f"{printable(relative(e.path, usage.path), one_line=True)} {human_bytes(e.size)}"
        for e in top
    )
    return ", ".join(list(named)[:SUMMARY_DIRS])


def summarise(usage: Usage, warn: float) -> tuple[Status, str]:
    """The status and the one-line summary of a listing that has something in it."""
    parts = [_head(usage)]
    if top := _top_directories(usage):
        parts.append(f"largest: {top}")
    if files := largest(usage.find.entries, 1):
        found = f"largest file: {printable(relative(files[0].path, usage.path), one_line=True)} "
        found += human_bytes(files[0].size) + (_partial(usage.find) if usage.find.stopped else "")
        parts.append(found)
    if count := len(usage.du.errors):
        parts.append(f"du could not read {count} path{'s' if count > 1 else ''} (see the evidence)")
    if (space := usage.space) is None:
        return Status.OK, "; ".join(parts)
    full = space.percent >= warn
    parts.append(f"filesystem {space.percent} % full" + (f", warn at {warn:g} %" if full else ""))
    return (Status.WARN if full else Status.OK), "; ".join(parts)


def _listing_text(listing: Listing, entries: Sequence[Entry], what: str) -> str:
    lines = [f"{what}:"]
    if listing.stopped:
        cut = f"PARTIAL: killed after {listing.seconds} s (its time bound); this is what it"
        lines.insert(0, cut + " had printed by then")
    lines += [
        f"{human_bytes(e.size):>10}  {printable(e.path, one_line=True)}" for e in entries
    ] or ["(none)"]
    if listing.errors:
        lines += [f"{len(listing.errors)} errors, the first ones:"]
        lines += [printable(error, one_line=True) for error in listing.errors[:5]]
    return "\n".join(lines)


def usage_finding(usage: Usage, warn: float) -> Finding:
    """The finding for one path: status, summary and the top lists as evidence."""
    du, find = usage.du, usage.find
    if (reason := _unknown_reason(usage)) is not None:
        errors = "\n".join(printable(e, one_line=True) for e in du.errors[:5]) or "(no output)"
        evidence = (Evidence(du.command, errors),)
        return Finding("disk.usage", Status.UNKNOWN, usage.path, reason, evidence)
    status, summary = summarise(usage, warn)
    dirs = f"largest {LISTED} directories (to depth {usage.depth}, disk usage)"
    files = f"largest {TOP_FILES} files over 1 MiB (apparent size)"
    listed = [
        Evidence(du.command, _listing_text(du, largest(du.entries, LISTED, usage.path), dirs)),
        Evidence(find.command, _listing_text(find, largest(find.entries, TOP_FILES), files)),
    ]
    if (space := usage.space) is not None:
        row = f"{space.source}: {space.percent} % used, {human_bytes(space.available)} free, "
        listed.append(
            Evidence("df -P -B1", row + f"mounted on {printable(space.mountpoint, one_line=True)}")
        )
    return Finding("disk.usage", status, usage.path, summary, tuple(listed))


# -- the check ------------------------------------------------------------------------------


def _bounds(params: Mapping[str, str]) -> tuple[int, int]:
    try:
        depth = parse_depth(params.get("usage_depth") or str(DEFAULT_DEPTH))
        seconds = parse_seconds(params.get("usage_seconds") or str(DEFAULT_SECONDS))
    except ValueError as error:
        raise StepFailed(f"bad bound for disk usage: {error}") from None
    return int(depth), int(seconds)


async def _space(shell: Shell, argv: Sequence[str], path: str) -> tuple[Space, ...]:
    result = await _run(shell, argv)
    rows = parse_df(result.stdout)
    if not rows:
        why = result.stderr.strip().splitlines() or [f"df exit status {result.exit_status}"]
        raise StepFailed(f"cannot read {printable(path, one_line=True)}: {why[-1]}")
    return rows


async def _check_usage(ctx: CheckContext, shell: Shell) -> list[Finding]:
    depth, seconds = _bounds(ctx.params)
    if wanted := ctx.params.get("usage"):
        try:
            path = parse_usage_path(wanted)
        except ValueError as error:
            raise StepFailed(f"usage {wanted!r}: {error}") from None
        try:
            space: Space | None = (await _space(shell, ("df", "-P", "-B1", path), path))[-1]
        except StepFailed as error:  # a missing or unreadable path: the finding names it
            return [Finding("disk.usage", Status.UNKNOWN, path, str(error))]
    else:
        space = fullest(await _space(shell, LOCAL_DF, "the local filesystems"))
        if space is None:
            raise StepFailed(f"df shows no local filesystem with any size on {ctx.host}")
        path = space.mountpoint
    du, find = await asyncio.gather(
        bounded(shell, du_argv(path, depth), seconds), bounded(shell, find_argv(path), seconds)
    )
    usage = Usage(path, space, du, find, depth, chosen=not wanted)
    return [usage_finding(usage, ctx.thresholds.disk.warn)]


DISK_USAGE = ShellCheck("disk.usage", "What uses the space", _check_usage, DOMAIN)
