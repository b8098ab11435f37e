"""Space to win back (runbook S1): logs past their keeping time, listed with the space they
hold, then removed, or compressed, through the gate, each fix pinned on exactly its list.

Two checks over the same directory, because the two fixes are verified differently: after a
removal no old file is left (`disk.old_logs` is OK), after compression the old files are still
there as .gz files, and only old files not yet compressed are gone (`disk.uncompressed_logs`
is OK). An operator who compresses sees the old .gz files still offered for removal.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

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


def parse_size(text: str) -> str:
    """A size such as `500M`, `2G`, `1.5GiB` (binary multiples) or a number of bytes: the
    bytes, as a string."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError("a size such as 500M or 2G")
    number, prefix = match.groups()
    return str(round(float(number) * 1024 ** " kmgt".index(prefix.lower() or " ")))


def _old_files(directory: str, days: int, *tests: str) -> tuple[str, ...]:
    """`find` for the regular files under `directory` (this filesystem only) older than
    `days`, narrowed by `tests`; the caller adds the action."""
    return ("find", directory, "-xdev", "-type", "f", "-mmin", f"+{days * 1440}", *tests)


async def _listing(shell: Shell, argv: Sequence[str], directory: str) -> str:
    listing = await _run(shell, argv, timeout=60)
    if not listing.ok:
        why = (listing.stderr.strip().splitlines() or [f"exit {listing.exit_status}"])[-1]
        raise StepFailed(f"cannot list {directory}: {why}")
    return listing.stdout


SHOWN_LINES = 200
"""Evidence lists at most this many files; the pin covers every one of them."""


def _shown(argv: Sequence[str], stdout: str) -> Evidence:
    lines = stdout.strip().splitlines()
    text = "\n".join(lines[:SHOWN_LINES]) or "(none)"
    if len(lines) > SHOWN_LINES:
        text += f"\n… and {len(lines) - SHOWN_LINES:,} more (the fix's pin covers them all)"
    return Evidence(shlex.join(argv), text)


def _digest(argv: Sequence[str]) -> tuple[str, ...]:
    """The listing's checksum, read on the host: a pin that stays one line however many
    files it covers (a 200,000-file tree lists megabytes)."""
    return ("sh", "-c", '"$@" | sha256sum', "sh", *argv)


async def _pin_value(shell: Shell, argv: Sequence[str], directory: str) -> str:
    """Taken after the listing: a file that changed in between aborts the fix (safe)."""
    return (await _listing(shell, _digest(argv), directory)).strip()


def _count(files: Sequence[object]) -> str:
    return f"{len(files)} file{'s' if len(files) != 1 else ''}"


async def _check_old_logs(ctx: CheckContext, shell: Shell) -> list[Finding]:
    directory = ctx.params["logs"]
    days = int(ctx.params.get("older") or LOG_DAYS)
    # One listing, with inode and size, is both the evidence and the pin: the fix runs only
    # if exactly these files are still the ones it would remove.
    listing_argv = _old_files(directory, days, "-printf", "%i %s %p\\n")
    stdout = await _listing(shell, listing_argv, directory)
    files = [line.split(" ", 2) for line in stdout.splitlines()]
    files = [f for f in files if len(f) == 3 and f[1].isdigit()]
    total = sum(int(f[1]) for f in files)
    free = await free_bytes(shell, directory)
    room = f"; {human_bytes(free)} free there" if free is not None else ""
    evidence = (_shown(listing_argv, stdout),)
    target = f"{directory} (older than {days} d)"
    if not files:
        summary = f"no files older than {days} days under {directory}{room}"
        return [Finding("disk.old_logs", Status.OK, target, summary, evidence)]
    count = _count(files)
    summary = f"{count} older than {days} days, {human_bytes(total)}{room}"
    fix = Fix(
        id="disk.old_logs.remove",
        title=f"remove {count} older than {days} days under {directory}",
        risk=Risk.DESTRUCTIVE,
        commands=(_old_files(directory, days, "-delete"),),
        target=target,
        pin=Pin(
            f"the list of files older than {days} days (sha256 of inode, size, path)",
            _digest(listing_argv),
            await _pin_value(shell, listing_argv, directory),
        ),
        verify="disk.old_logs",
        frees=total,
        frees_on=directory,
        impact=f"frees {human_bytes(total)} by deleting {count} for good (listed in the evidence)",
    )
    return [Finding("disk.old_logs", Status.WARN, target, summary, evidence, (fix,))]


OLD_LOGS = ShellCheck("disk.old_logs", "Old logs", _check_old_logs, DOMAIN)

# -- old logs not yet compressed, with a fix that gzips them -----------------------------------

_ARCHIVES = ("gz", "tgz", "z", "xz", "txz", "zst", "bz2", "tbz2", "lz4", "lz", "lzma", "zip", "7z")
COMPRESSED = tuple(f"*.{ext}" for ext in _ARCHIVES)
"""Names gzip would refuse or gain nothing on (matched without regard to case)."""
SAMPLE_BYTES = 1 << 20
"""How much of the largest file is compressed up front to estimate the ratio."""
BLOCK = 4096


def _not_compressed() -> tuple[str, ...]:
    # Empty files would grow; gzip refuses files with other hard links: both are left alone.
    skip = tuple(arg for pattern in COMPRESSED for arg in ("!", "-iname", pattern))
    return (*skip, "!", "-empty", "-links", "1")


@dataclass(frozen=True, slots=True)
class LogFile:
    inode: int
    size: int
    usage: int
    """Bytes allocated on disk (find's %b, 512-byte blocks)."""
    path: str


def parse_log_listing(text: str) -> list[LogFile]:
    """`find -printf '%i %s %b %p\\n'` lines; a path may hold spaces (not newlines)."""
    files = []
    for line in text.splitlines():
        fields = line.split(" ", 3)
        if len(fields) == 4 and all(f.isdigit() for f in fields[:3]):
            inode, size, blocks = (int(f) for f in fields[:3])
            files.append(LogFile(inode, size, blocks * 512, fields[3]))
    return files


def estimate_saving(files: Sequence[LogFile], ratio: float) -> int:
    """Bytes compression frees if every file shrinks to `ratio` of its size: what each one
    holds on disk less its .gz rounded up to whole blocks (a small file frees little)."""
    saved = 0
    for f in files:
        gz = -(-int(f.size * ratio + 64) // BLOCK) * BLOCK  # header and trailer, whole blocks
        saved += max(f.usage - gz, 0)
    return saved


async def _sample_ratio(shell: Shell, largest: LogFile) -> tuple[float, Evidence] | None:
    """Compress the first MiB of the largest file (nothing written): its real ratio."""
    script = 'head -c "$2" -- "$1" | gzip -6 -c | wc -c'
    sample = min(largest.size, SAMPLE_BYTES)
    argv = ("sh", "-c", script, "sh", largest.path, str(sample))
    result = await _run(shell, argv, timeout=30)
    if not result.ok or not result.stdout.strip().isdigit() or sample <= 0:
        return None
    ratio = int(result.stdout.strip()) / sample
    said = f"{human_bytes(sample)} of {largest.path} compresses to {ratio:.1%}"
    return ratio, Evidence(shlex.join(argv), said)


async def _check_uncompressed(ctx: CheckContext, shell: Shell) -> list[Finding]:
    directory = ctx.params["logs"]
    days = int(ctx.params.get("older") or LOG_DAYS)
    listing_argv = _old_files(directory, days, *_not_compressed(), "-printf", "%i %s %b %p\\n")
    stdout = await _listing(shell, listing_argv, directory)
    files = parse_log_listing(stdout)
    evidence: tuple[Evidence, ...] = (_shown(listing_argv, stdout),)
    target = f"{directory} (uncompressed, older than {days} d)"
    if not files:
        summary = f"no uncompressed files older than {days} days under {directory}"
        return [Finding("disk.uncompressed_logs", Status.OK, target, summary, evidence)]
    count, total = _count(files), sum(f.usage for f in files)
    sampled = await _sample_ratio(shell, max(files, key=lambda f: f.size))
    if sampled is None:  # unreadable sample: promise nothing rather than a guess
        ratio, how = 1.0, "the sample could not be compressed, so no figure is promised"
    else:
        ratio, how = sampled[0], f"gzip shrank a sample to {sampled[0]:.1%}"
        evidence += (sampled[1],)
    saving = estimate_saving(files, ratio)
    summary = (
        f"{count} older than {days} days not yet compressed, {human_bytes(total)}; "
        f"gzip would free about {human_bytes(saving)}"
    )
    fix = Fix(
        id="disk.uncompressed_logs.compress",
        title=f"gzip {count} older than {days} days under {directory}",
        risk=Risk.DISRUPTIVE,
        commands=(
            _old_files(directory, days, *_not_compressed(), "-exec", "gzip", "--", "{}", "+"),
        ),
        target=target,
        pin=Pin(
            f"the uncompressed files older than {days} days (sha256 of inode, size, blocks, path)",
            _digest(listing_argv),
            await _pin_value(shell, listing_argv, directory),
        ),
        verify="disk.uncompressed_logs",
        frees=saving,
        frees_on=directory,
        timeout=600.0,
        impact=(
            f"replaces {count} ({human_bytes(total)}) with .gz files; frees about "
            f"{human_bytes(saving)}, an estimate ({how}; the gate measures the real figure). "
            "A process still writing to one of these files keeps writing to the deleted "
            "original: those lines are lost and its space comes back only when the process "
            "reopens its log. gzip needs room for each .gz beside its original while it runs."
        ),
    )
    return [Finding("disk.uncompressed_logs", Status.WARN, target, summary, evidence, (fix,))]


UNCOMPRESSED_LOGS = ShellCheck(
    "disk.uncompressed_logs", "Old logs not yet compressed", _check_uncompressed, DOMAIN
)
