"""The vocabulary of diagnostics: statuses, findings, the evidence behind them, fixes."""

from __future__ import annotations

import asyncio
import enum
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fleetdeck.checks.settings import ResourceThresholds
    from fleetdeck.hosts.metrics import SampleHistory
    from fleetdeck.hosts.shell import Shell


class Status(enum.StrEnum):
    """How a check came out. The order is severity: the worst status wins."""

    OK = "OK"
    WARN = "WARN"
    CRIT = "CRIT"
    UNKNOWN = "UNKNOWN"

    @property
    def exit_code(self) -> int:
        """The Nagios plugin exit code: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN."""
        return _EXIT[self]

    @property
    def rank(self) -> int:
        """Severity order for sorting: OK < UNKNOWN < WARN < CRIT."""
        return _RANK[self]


_EXIT = {Status.OK: 0, Status.WARN: 1, Status.CRIT: 2, Status.UNKNOWN: 3}
_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.CRIT: 3}


_UNSAFE = (
    r"\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls: ESC, BEL, CSI (\x9b) ...
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks that reorder what follows
    r"\ud800-\udfff"  # bytes that were not UTF-8, kept as surrogates (hosts.shell.exact)
)
_CONTROL = re.compile(f"[{_UNSAFE}]")
_CONTROL_LINE = re.compile(f"[{_UNSAFE}\t\n]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str, *, one_line: bool = False) -> str:
    """Text from a host made safe to show on a terminal: control characters (escape
    sequences included), bidi overrides and bytes that were not UTF-8 become visible
    escapes such as \\x1b, \\u202e, \\xff. Newlines and tabs stay, unless `one_line`
    (a table cell, a name in a sentence), where they read \\n and \\t.

    The one function for every text an operator reads: screens, tables, the CLI's output
    and its error messages (`tui.cli` wraps stdout and stderr in it)."""
    return (_CONTROL_LINE if one_line else _CONTROL).sub(_escape, text)


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines of aligned columns for a terminal, the last column left free; each cell
    is made printable on one line first, so escapes count in the widths."""
    cells = [[printable(c, one_line=True) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]) - 1)] if cells else []
    return [
        ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]).rstrip()
        for row in cells
    ]


def bytes_escaped(text: str) -> str:
    """Text with the bytes that were not UTF-8 (kept as surrogates) written as \\xff, and
    nothing else changed: what a record stores, as UTF-8 cannot hold a surrogate."""
    return _SURROGATE.sub(_escape, text)


def worst_exit_code(statuses: Sequence[Status]) -> int:
    """The exit code a Nagios plugin gives for several results: CRIT over WARN over UNKNOWN."""
    codes = {s.exit_code for s in statuses}
    for code in (2, 1, 3):
        if code in codes:
            return code
    return 0


class Risk(enum.StrEnum):
    """What a fix can do to a running system."""

    SAFE = "safe"
    DISRUPTIVE = "disruptive"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What was looked at (a command, a file, a sample) and what came back."""

    source: str
    output: str


class PinMatch(enum.StrEnum):
    """How a pin's reading is compared with the value it had when the fix was proposed."""

    EXACT = "exact"  # the whole output, stripped, equals the value
    LINE = "line"  # the value is one of the output's lines (a firewall rule among others)


@dataclass(frozen=True, slots=True)
class DbStep:
    """One step of a database fix, run on the finding's database by the gate: a statement
    (`query` built with psycopg.sql, identifiers quoted by `Identifier`; values in
    `params`, never in the text), or a `pg_dump` of the database to the file `dump_to`.

    `shown` is the step as the operator reads it and the audit log keeps it. `must_match`:
    the statement selects the target and acts on it in one go (`SELECT pg_cancel_backend(pid)
    FROM pg_stat_activity WHERE pid = ... AND backend_start = ...`), and must return a row
    whose first value is true; no row means the target was gone, and the step failed."""

    shown: str
    query: object = None
    params: Mapping[str, object] | None = None
    must_match: bool = False
    dump_to: str = ""
    lock_timeout: float | None = None
    """How long the statement may wait for a lock; None: the gate's short default."""
    on_failure: str = ""
    """What the operator must know when the step fails (what it may have left behind)."""
    prompt: str = ""
    """The prompt the step is shown at; empty: `=#` (psql), or `$` for a dump."""

    @property
    def at_prompt(self) -> str:
        """The step as the operator reads it, behind the prompt of what runs it."""
        return f"{self.prompt or ('$' if self.dump_to else '=#')} {self.shown}"


@dataclass(frozen=True, slots=True)
class Pin:
    """The identity of a fix's target, read again just before the fix runs.

    `argv` prints the identity (an interface index, a rule, a unit's invocation id); `value`
    is what it printed when the fix was proposed. A command that fails reads as "gone".
    A database fix's pin is a `query` instead, whose first value (text) is the identity
    (a backend's start time, a table's oid); no row reads as "gone".
    `timeout` is how long the gate waits for the reading: a pin over a listing gets the
    listing's own time, since a cold directory tree is slow to walk a second time.
    """

    what: str
    argv: tuple[str, ...]
    value: str
    match: PinMatch = PinMatch.EXACT
    timeout: float = 10.0
    query: DbStep | None = None

    def holds(self, output: str) -> bool:
        """Whether a fresh reading still names the same target."""
        if self.match is PinMatch.LINE:
            return self.value.strip() in (line.strip() for line in output.splitlines())
        return output.strip() == self.value.strip()


@dataclass(frozen=True, slots=True)
class Fix:
    """A change a check proposes. It runs only through the action gate, never directly.

    `commands` are argv lists, shown to the operator exactly as they will run; a database
    fix has `statements` instead, run on the finding's database (see `DbStep`); `verify` is
    the id of the check whose finding on `target` must come out OK afterwards; `undo` holds
    the commands that put things back, kept in the audit record (a deleted firewall rule).
    """

    id: str
    title: str
    risk: Risk
    commands: tuple[tuple[str, ...], ...]
    target: str
    pin: Pin
    verify: str
    impact: str = ""
    undo: tuple[tuple[str, ...], ...] = ()
    timeout: float = 30.0
    frees: int | None = None
    """Bytes the fix promises to free on the filesystem holding `frees_on`: the gate measures
    free space there before and after and reports what was really freed."""
    frees_on: str = ""
    statements: tuple[DbStep, ...] = ()
    settle: float | None = None
    """Seconds the gate keeps re-running the verification, after commands that worked, until
    the check passes; None: the gate's VERIFY_SETTLE. A restarted container's healthcheck
    may take longer than that to pass its first probes."""

    @property
    def command_lines(self) -> tuple[str, ...]:
        """The commands as a person would type them, one per line (SQL as psql shows it)."""
        return tuple(shlex.join(argv) for argv in self.commands) + tuple(
            step.shown for step in self.statements
        )

    @property
    def prompt_lines(self) -> tuple[str, ...]:
        """The command lines behind the prompt they run at: `$` a shell, `=#` psql."""
        return tuple(f"$ {shlex.join(argv)}" for argv in self.commands) + tuple(
            step.at_prompt for step in self.statements
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of one check on one target (a mount, an interface, the whole host)."""

    check: str
    status: Status
    target: str
    summary: str
    evidence: tuple[Evidence, ...] = ()
    fixes: tuple[Fix, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str]:
        """What identifies this finding across runs: the check and its target."""
        return (self.check, self.target)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may look at: the host's name, its recent samples and the thresholds;
    for checks that ask the host themselves (wizard steps), its shell, its environment tier
    and the wizard's parameters (`target`, `resolve`, ...)."""

    host: str
    history: SampleHistory
    thresholds: ResourceThresholds
    """The resource checks' numbers; from the settings file, its `checks.config.Thresholds`,
    which also carries the container checks' table (`checks.containers.checks`)."""
    shell: Shell | None = None
    tier: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    database: object | None = None
    """For the database wizard: the `checks.database.link.DbLink` its steps ask through."""
    docker: object | None = None
    """For the container checks: the host's `hosts.docker.link.DockerLink`."""


class Check(Protocol):
    """A diagnostic: an id such as `disk.space`, a domain, a title, and `run`."""

    @property
    def id(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def title(self) -> str: ...

    async def run(self, ctx: CheckContext) -> list[Finding]: ...


CHECK_TIMEOUT = 30.0


async def run_checks(
    ctx: CheckContext, checks: Sequence[Check], timeout: float = CHECK_TIMEOUT
) -> list[Finding]:
    """Run checks; a check that fails or overruns becomes an UNKNOWN finding."""

    async def one(check: Check) -> list[Finding]:
        try:
            async with asyncio.timeout(timeout):
                return await check.run(ctx)
        except TimeoutError:
            reason = f"did not finish within {timeout:g} s"
        except Exception as error:  # a bug in one check must not hide the others
            reason = f"check failed: {type(error).__name__}: {error}"
        return [Finding(check.id, Status.UNKNOWN, ctx.host, reason)]

    # One after the other: today's checks read samples already taken and finish at once,
    # so a task each would cost more than the checks (500 hosts x 6 checks every 2 s).
    # Each still has its own timeout; checks that wait on I/O will want running side by side.
    return [finding for check in checks for finding in await one(check)]
