"""The systemd journal's size (runbook S1): how much space journald's files hold, how much of
it is archived files older than N days, and `journalctl --vacuum-time` to drop those.

journalctl decides what a vacuum removes from each archived file's name (the time of its
first entry, `system@SEQNUMID-SEQNUM-REALTIME.journal`, or `...@REALTIME-RANDOM.journal~` for
a file set aside as corrupt) or from its file times when they are older; active files are
never vacuumed. `parse_journal_files` reads the same facts from a `find -printf` listing, so
the space a vacuum frees can be stated before it runs.

Which directories a vacuum touches is journalctl's too: the files in each journal directory
and in its machine-ID subdirectories one level down; by default (no `--directory`) only this
machine's (/etc/machine-id), so a container's journal linked under /var/log/journal is neither
counted nor promised. `in_scope` says which listed files those are.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, host_time
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.storage.cleanup import param_days, parse_size
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"
SYSTEM_DIRS = ("/var/log/journal", "/run/log/journal")
JOURNAL_DAYS = 14
"""The age past which archived journal files are vacuumed (the `journal_days` parameter);
the old-logs age (`older`) is for the application's log directory, not for the journal."""
PIN_TIMEOUT = 30.0
JOURNAL_MAX = 1 << 30
JOURNAL_SHARE = 0.10
"""A journal over 1 GiB, or over 10 % of its filesystem (journald's own default cap for
SystemMaxUse=), is a warning: it is space that logs nobody reads may be holding. The
`journal_max` parameter (bytes) sets another level."""

_ARCHIVED = re.compile(r"@[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{16})\.journal$")
_DISPOSED = re.compile(r"@([0-9a-f]{16})-[0-9a-f]{16}\.journal~$")
_LISTING = ("-type", "f", "(", "-name", "*.journal", "-o", "-name", "*.journal~", ")")
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class JournalFile:
    path: str
    usage: int
    """Bytes on disk (512-byte blocks), as journalctl --disk-usage counts them."""
    oldest: float | None
    """For an archived file: when its first entry was written (seconds since the epoch), or
    its file times if older, as journalctl's vacuum reckons it. None for an active file."""

    @property
    def archived(self) -> bool:
        return self.oldest is not None


def parse_journal_files(text: str) -> list[JournalFile]:
    """`find -printf '%b %A@ %C@ %T@ %p\\n'` lines over journal files."""
    files = []
    for line in text.splitlines():
        fields = line.split(" ", 4)
        if len(fields) != 5 or not fields[0].isdecimal():
            continue
        try:
            times = [float(t) for t in fields[1:4]]
        except ValueError:
            continue
        path = fields[4]
        named = _ARCHIVED.search(path) or _DISPOSED.search(path)
        oldest = None
        if named is not None:
            first = int(named.group(1), 16) / 1e6
            oldest = min([first, *(t for t in times if t > 0)])
        files.append(JournalFile(path, int(fields[0]) * 512, oldest))
    return files


def _path(line: str) -> str:
    """The path of a `parse_journal_files` listing line."""
    fields = line.split(" ", 4)
    return fields[4] if len(fields) == 5 else ""


def vacuumable(files: Sequence[JournalFile], now: float, days: int) -> list[JournalFile]:
    """The archived files `journalctl --vacuum-time={days}d` removes at `now`."""
    limit = now - days * 86400
    return [f for f in files if f.oldest is not None and f.oldest < limit]


def in_scope(path: str, roots: Sequence[str], machine_id: str | None) -> bool:
    """Whether journalctl reads (and vacuums) `path`: a file in one of `roots`, or in a
    machine-ID subdirectory of one: `machine_id`'s only, or any when it is None."""
    parent, _, _ = path.rpartition("/")
    if parent in roots:
        return True
    root, _, sub = parent.rpartition("/")
    return root in roots and (sub == machine_id if machine_id else bool(_MACHINE_ID.fullmatch(sub)))


def _directories(ctx: CheckContext) -> tuple[str, ...]:
    given = ctx.params.get("journal_dir")
    return (given.rstrip("/") or "/",) if given else SYSTEM_DIRS


def _listing_argv(directories: Sequence[str]) -> tuple[str, ...]:
    """Two levels, as journalctl reads them: the directory and its machine-ID directories."""
    return ("find", *directories, "-maxdepth", "2", *_LISTING, "-printf", "%b %A@ %C@ %T@ %p\\n")


def _pin_argv(directories: Sequence[str]) -> tuple[str, ...]:
    """Archived files only, in exactly the directories the vacuum works on: active ones grow
    while journald writes, archived ones do not."""
    names = ("(", "-name", "*@*.journal", "-o", "-name", "*.journal~", ")")
    return ("find", *directories, "-maxdepth", "1", "-type", "f", *names, "-printf", "%b %p\\n")


async def _machine_id(shell: Shell) -> str | None:
    """This host's machine ID, which names its own journal directory; None if unreadable."""
    result = await _run(shell, ("cat", "/etc/machine-id"))
    text = result.stdout.strip()
    return text if result.ok and _MACHINE_ID.fullmatch(text) else None


async def _list(shell: Shell, directories: Sequence[str], given: bool) -> tuple[str, list[str]]:
    """The listing of every journal file, and the directories that exist."""
    text, found = "", []
    for directory in directories:
        argv = _listing_argv((directory,))
        result = await _run(shell, argv, timeout=30)
        missing = "No such file or directory" in result.stderr
        if not result.ok and missing and not given:
            continue  # journald keeps one of the two, or neither
        if not result.ok:
            why = (result.stderr.strip().splitlines() or [f"exit {result.exit_status}"])[-1]
            raise StepFailed(f"cannot list the journal in {directory}: {why}")
        text += result.stdout
        found.append(directory)
    return text, found


def _level(text: str) -> int:
    """The `journal_max` parameter, parsed again: a caller may hand it over as typed."""
    try:
        return int(parse_size(text))
    except ValueError as error:
        raise StepFailed(f"journal_max {text!r}: {error}") from None


async def _filesystem_size(shell: Shell, path: str) -> int | None:
    result = await _run(shell, ("df", "-P", "-B1", path))
    fields = result.stdout.splitlines()[-1].split() if result.ok and result.stdout else []
    return int(fields[1]) if len(fields) > 1 and fields[1].isdecimal() else None


async def _check_journal(ctx: CheckContext, shell: Shell) -> list[Finding]:
    given = ctx.params.get("journal_dir")
    directories = _directories(ctx)
    target = ", ".join(directories)
    where = (f"--directory={given}",) if given else ()
    usage = await _run(shell, ("journalctl", *where, "--disk-usage"), timeout=30)
    if usage.exit_status == 127:
        summary = f"no systemd journal on {ctx.host}: journalctl is not installed"
        return [Finding("disk.journal", Status.OK, target, summary, (_evidence(usage),))]
    if not usage.ok:
        why = (usage.stderr.strip().splitlines() or [f"exit {usage.exit_status}"])[-1]
        raise StepFailed(f"journalctl cannot read the journal in {target}: {why}")
    listing, found = await _list(shell, directories, bool(given))
    # Without --directory journalctl reads only this machine's subdirectory.
    machine = None if given else await _machine_id(shell)
    lines = [line for line in listing.splitlines() if in_scope(_path(line), found, machine)]
    files = parse_journal_files("\n".join(lines))
    text = "\n".join(lines) or "(none)"
    if skipped := len(listing.splitlines()) - len(lines):
        text += f"\n(and {skipped} files journalctl does not read here: other machines' or stray)"
    shown = Evidence(shlex.join(_listing_argv(found)), text)
    evidence = (_evidence(usage), shown)
    if not files:
        summary = f"no systemd journal on {ctx.host}: no journal files in {target}"
        return [Finding("disk.journal", Status.OK, target, summary, evidence)]

    days = param_days(ctx, "journal_days", JOURNAL_DAYS)
    old = vacuumable(files, await host_time(shell), days)
    total, reclaim = sum(f.usage for f in files), sum(f.usage for f in old)
    home = max(found, key=lambda d: sum(f.usage for f in files if f.path.startswith(d + "/")))
    size = await _filesystem_size(shell, home)
    limit = min(JOURNAL_MAX, int(size * JOURNAL_SHARE)) if size else JOURNAL_MAX
    why = "1 GiB" if limit == JOURNAL_MAX else f"{JOURNAL_SHARE:.0%} of its filesystem"
    if ctx.params.get("journal_max"):
        limit, why = _level(ctx.params["journal_max"]), "the level set for this run"
    summary = f"the journal in {target} takes {human_bytes(total)} ({len(files)} files)"
    older = f"{human_bytes(reclaim)} in {len(old)} archived files older than {days} days"
    if total <= limit:
        summary += f", under {human_bytes(limit)} ({why}); {older}"
        return [Finding("disk.journal", Status.OK, target, summary, evidence)]
    summary += f", over {human_bytes(limit)} ({why}); {older}"
    if not old:
        summary += ": lower SystemMaxUse= in journald.conf to keep less"
        return [Finding("disk.journal", Status.WARN, target, summary, evidence)]
    places = sorted({f.path.rpartition("/")[0] for f in files} | set(found))
    pinned = await _run(shell, _pin_argv(places), timeout=PIN_TIMEOUT)
    if not pinned.ok:
        raise StepFailed(f"cannot list the archived journal files in {target}")
    vacuum = ("journalctl", *where, f"--vacuum-time={days}d")
    fix = Fix(
        id="disk.journal.vacuum",
        title=f"vacuum journal entries older than {days} days in {target}",
        risk=Risk.DESTRUCTIVE,
        commands=(vacuum,),
        target=target,
        pin=Pin(
            "the archived journal files (blocks, path)",
            _pin_argv(places),
            pinned.stdout,
            timeout=PIN_TIMEOUT,
        ),
        verify="disk.journal",
        frees=reclaim,
        frees_on=home,
        timeout=300.0,
        impact=(
            f"deletes {len(old)} archived journal files for good, about {human_bytes(reclaim)}: "
            f"the entries they hold (everything journald wrote before {days} days ago, and "
            "whatever else shares a file with it) can no longer be read with journalctl. "
            "Active journal files are kept."
        ),
    )
    return [Finding("disk.journal", Status.WARN, target, summary, evidence, (fix,))]


JOURNAL = ShellCheck("disk.journal", "systemd journal size", _check_journal, DOMAIN)
