"""The action gate: the one path by which fleetdeck changes anything on a host.

`ActionGate.apply` takes a finding and one of its fixes and, in this order:

1. refuses in read-only mode;
2. asks for confirmation (a modal in the TUI, a prompt in the CLI) showing the host, its
   tier, the exact commands, the risk and the impact; a destructive fix, or any fix on a
   `prod` host, needs the host name typed;
3. re-reads the pin (within the pin's own timeout) and aborts if the target is no longer
   the one that was shown, or if it cannot be read in time;
4. writes a `started` audit record, runs the commands (a database fix: its statements, on
   the finding's database) with a timeout, stopping at the first that fails;
5. re-runs the verifying check and keeps the finding before and after; a fix that promised
   space is verified only if at least half of it was measured free afterwards;
6. writes the final audit record, fsynced, before it reports anything.

Every ending (refused, declined, aborted, failed, unverified, verified) is audited. The
screens and the CLI only supply the confirmation; read-only is enforced here, so no key
binding, palette entry or command line can get around it.
"""

from __future__ import annotations

import asyncio
import enum
import shlex
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fleetdeck.checks.audit import AuditError, AuditLog, Operator, excerpt, new_attempt_id
from fleetdeck.checks.hostcheck import free_blocks_bytes
from fleetdeck.checks.model import DbStep, Finding, Fix, Risk, Status, printable
from fleetdeck.hosts.shell import CommandResult, CommandTimeout, Shell, ShellError
from fleetdeck.hosts.units import human_bytes

VERIFY_TIMEOUT = 45.0
"""One re-run of the verifying check (longer than a wizard step's own 30 s)."""
VERIFY_SETTLE = 10.0
VERIFY_RETRY = 1.0
PROD_TIERS = frozenset({"prod", "production"})
SHORTFALL = 0.5
"""A fix that promised space and was measured to free less than this share of it is not
verified, whatever its check says (a deleted log a process still holds frees nothing)."""


class Outcome(enum.StrEnum):
    """How a fix attempt ended."""

    REFUSED = "refused"  # read-only mode, or the audit log cannot be written
    DECLINED = "declined"  # the operator said no, or typed the wrong host name
    ABORTED = "aborted"  # the pinned target changed or could not be read
    FAILED = "failed"  # a command failed, timed out or could not run
    UNVERIFIED = "unverified"  # the commands ran but the check still fails
    CANCELLED = "cancelled"  # the console quit or was interrupted mid-attempt
    VERIFIED = "verified"  # the commands ran and the check now passes


class Database(Protocol):
    """Where a database fix's steps run (a `checks.database.link.DbLink`): `read` gives a pin's
    value now (None: no such target any more) or raises `DatabaseError`; `execute` runs one
    step within `timeout` seconds and says how it went, never raising."""

    @property
    def where(self) -> str: ...

    async def read(self, step: DbStep, timeout: float) -> str | None: ...

    async def execute(self, step: DbStep, timeout: float) -> CommandRun: ...


class DatabaseError(Exception):
    """A pin's query could not be answered (the reason is the message, with no password)."""


@dataclass(frozen=True, slots=True)
class FixHost:
    """Where a fix runs: the host as the operator knows it, its tier, and its shell; for a
    database fix, also the database its statements run on."""

    name: str
    shell: Shell
    tier: str | None = None
    database: Database | None = None
    docker: object | None = None
    """The host's `hosts.docker.link.DockerLink`, for the container checks a fix re-runs."""

    @property
    def is_prod(self) -> bool:
        return (self.tier or "").lower() in PROD_TIERS


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    """Everything the operator must see before saying yes."""

    host: FixHost
    finding: Finding
    fix: Fix

    @property
    def needs_typed_name(self) -> bool:
        return self.fix.risk is Risk.DESTRUCTIVE or self.host.is_prod

    @property
    def question(self) -> str:
        return f"Apply {self.fix.title} on {self.host.name}?"

    def summary_lines(self) -> list[str]:
        """The confirmation's text, the same in the modal and at the CLI prompt."""
        lines = [
            f"host:    {self.host.name} (tier: {self.host.tier or 'unset'})",
            f"finding: {self.finding.status.value} {self.finding.check} on "
            f"{self.finding.target}: {self.finding.summary}",
            f"fix:     {self.fix.title}",
            f"risk:    {self.fix.risk.value}",
            f"impact:  {self.fix.impact or 'not stated'}",
            *(
                [f"frees:   {human_bytes(self.fix.frees)} on {self.fix.frees_on} (measured)"]
                if self.fix.frees is not None
                else []
            ),
            f"target:  {self.fix.target} (pinned: {self.fix.pin.what} = {self.fix.pin.value})",
            "runs:",
            *(f"  $ {shlex.join(argv)}" for argv in self.fix.commands),
        ]
        if self.fix.statements:
            where = self.host.database.where if self.host.database else "no database session"
            lines[-1] = f"runs on {where}:"
            lines += [f"  {step.at_prompt}" for step in self.fix.statements]
        if self.fix.undo:
            lines += ["undo (kept in the audit log):"]
            lines += [f"  $ {shlex.join(argv)}" for argv in self.fix.undo]
        return [printable(line) for line in lines]


@dataclass(frozen=True, slots=True)
class Decision:
    """The operator's answer; `typed` is the host name they typed, when one was asked for."""

    approved: bool
    typed: str = ""

    def names(self, host: str) -> bool:
        """Whether the typed name is the host's. White space around it is forgiven (a
        trailing space, the newline of a pasted line: `web-01 `); everything else must be
        exact, case and inner characters included, so a neighbour (`web-02`, `Web-01`) or a
        name half typed never confirms a fix on this host."""
        return self.typed.strip() == host


class Confirmer(Protocol):
    async def __call__(self, request: ConfirmRequest) -> Decision: ...


Verifier = Callable[[], Awaitable[Finding | None]]
"""Re-runs the fix's verifying check and returns its finding on the fix's target."""


@dataclass(frozen=True, slots=True)
class CommandRun:
    """One command of a fix as it ran."""

    command: str
    exit_status: int | None
    duration: float
    output: str
    error: str | None = None  # could not run, or timed out

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.exit_status is not None and self.exit_status < 0:
            return f"killed by signal {-self.exit_status} ({_signal_name(-self.exit_status)})"
        return f"exit status {self.exit_status}"

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "exit_status": self.exit_status,
            "result": self.describe(),
            "duration_s": round(self.duration, 3),
            "output": excerpt(self.output),
        }


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the gate did with one fix, and the finding before and after."""

    outcome: Outcome
    message: str
    host: str
    fix: Fix
    before: Finding
    after: Finding | None = None
    runs: tuple[CommandRun, ...] = field(default=())
    attempt: str = ""
    freed: int | None = None
    """For a fix that promised space: the bytes free after it, less the bytes free before."""

    @property
    def done(self) -> bool:
        return self.outcome is Outcome.VERIFIED


class ActionGate:
    """Confirm, pin, run, audit, verify. Built once per console with its read-only flag."""

    def __init__(
        self,
        *,
        audit: AuditLog,
        confirm: Confirmer,
        read_only: bool = False,
        operator: Operator | None = None,
    ) -> None:
        self.audit = audit
        self.read_only = read_only
        self._confirm = confirm
        self._operator = operator or Operator.current()

    async def apply(
        self, host: FixHost, finding: Finding, fix: Fix, verify: Verifier
    ) -> ActionResult:
        attempt = new_attempt_id()
        base = self._base(attempt, host, finding, fix)

        def end(outcome: Outcome, message: str, **extra: Any) -> ActionResult:
            result = ActionResult(outcome, message, host.name, fix, finding, attempt=attempt)
            return replace(result, **extra)

        if self.read_only:
            message = "read-only mode: fleetdeck changes nothing, so the fix was not run"
            return self._record_or_refuse(base, Outcome.REFUSED, message, end)

        request = ConfirmRequest(host, finding, fix)
        try:
            decision = await self._confirm(request)
        except asyncio.CancelledError:  # the console quit, or the worker was cancelled
            self._record_or_refuse(base, Outcome.CANCELLED, "cancelled while asking", end)
            raise
        if not decision.approved:
            return self._record_or_refuse(base, Outcome.DECLINED, "the operator said no", end)
        if request.needs_typed_name and not decision.names(host.name):
            why = "destructive fix" if fix.risk is Risk.DESTRUCTIVE else "production host"
            message = (
                f"{why}: the host name typed ({decision.typed.strip()!r}) is not {host.name!r}"
            )
            return self._record_or_refuse(base, Outcome.DECLINED, message, end)

        now, problem = await self._read_pin(host, fix)
        if problem is not None:
            return self._record_or_refuse({**base, "pin_now": now}, Outcome.ABORTED, problem, end)

        try:
            self.audit.append({**base, "event": "started"})
        except AuditError as error:
            return end(Outcome.REFUSED, f"not run: {error}")

        free_before = await self._free(host, fix)
        try:
            runs = await self._run(host, fix)
        except asyncio.CancelledError:
            message = "cancelled while the fix ran: its commands may have run in part"
            self._record_or_refuse({**base, "event": "finished"}, Outcome.CANCELLED, message, end)
            raise
        failed = next((run for run in runs if not run.ok), None)
        settle = (VERIFY_SETTLE if fix.settle is None else fix.settle) if failed is None else 0.0
        after, verify_error = await self._verify(verify, settle)
        if failed is not None:
            outcome = Outcome.FAILED
            message = f"failed: {failed.command}: {failed.describe()}"
            if failed.output.strip():
                message += f": {failed.output.strip().splitlines()[-1]}"
        elif after is not None and after.status is Status.OK:
            outcome, message = Outcome.VERIFIED, f"verified: {after.summary}"
        else:
            outcome = Outcome.UNVERIFIED
            state = (
                f"{after.status.value}: {after.summary}"
                if after
                else verify_error or "the check no longer reports this target"
            )
            message = f"ran, but the check does not pass yet: {state}"
        freed, space = await self._space(host, fix, free_before)
        if space is not None and outcome is Outcome.VERIFIED and space["short"]:
            outcome = Outcome.UNVERIFIED
            message = f"ran, but {space['said']}: {message.removeprefix('verified: ')}"
        elif space is not None:
            message += f"; {space['said']}"
        record = {
            **base,
            "event": "finished",
            "outcome": outcome.value,
            "message": message,
            "runs": [run.to_json() for run in runs],
            "duration_s": round(sum(run.duration for run in runs), 3),
            "verification": {
                "check": fix.verify,
                "before": _finding_json(finding),
                "after": _finding_json(after) if after else None,
                "error": verify_error,
            },
        }
        if space is not None:
            record["space"] = space
        try:
            self.audit.append(record)
        except AuditError as error:
            message += f" (and the audit record could not be written: {error})"
        return end(outcome, message, after=after, runs=tuple(runs), freed=freed)

    async def _free(self, host: FixHost, fix: Fix) -> int | None:
        if fix.frees is None or not fix.frees_on:
            return None
        try:
            return await free_blocks_bytes(host.shell, fix.frees_on)
        except ShellError:
            return None

    async def _space(
        self, host: FixHost, fix: Fix, before: int | None
    ) -> tuple[int | None, dict[str, Any] | None]:
        """Free space re-measured where the fix promised some: (bytes freed, audit entry).
        Free blocks are counted with root's reserve, so a full filesystem measures right."""
        if fix.frees is None or not fix.frees_on:
            return None, None
        after = await self._free(host, fix)
        promised = human_bytes(fix.frees)
        short = False
        if before is None or after is None:
            said = f"{promised} promised; free space on {fix.frees_on} could not be measured"
            freed = None
        else:
            freed = after - before
            short = fix.frees > 0 and freed < fix.frees * SHORTFALL
            said = (
                f"freed {'only ' if short else ''}{human_bytes(max(freed, 0))} of {promised} "
                f"promised on {fix.frees_on}"
            )
        entry = {
            "path": fix.frees_on,
            "promised": fix.frees,
            "free_before": before,
            "free_after": after,
            "freed": freed,
            "short": short,
            "said": said,
        }
        return freed, entry

    async def _verify(self, verify: Verifier, settle: float) -> tuple[Finding | None, str | None]:
        """Re-run the verifying check. A link needs a moment for carrier, a restarted
        service to bind: after commands that worked, ask again for up to `settle` seconds
        (the fix's own `settle`, else VERIFY_SETTLE)."""
        deadline = time.monotonic() + settle
        while True:
            after: Finding | None = None
            error: str | None = None
            try:
                after = await asyncio.wait_for(verify(), timeout=VERIFY_TIMEOUT)
            except Exception as failure:  # the outcome says the check could not re-run, and why
                error = f"{type(failure).__name__}: {failure}".rstrip(": ")
            if (after is not None and after.status is Status.OK) or time.monotonic() >= deadline:
                return after, error
            await asyncio.sleep(VERIFY_RETRY)

    def _base(self, attempt: str, host: FixHost, finding: Finding, fix: Fix) -> dict[str, Any]:
        return {
            "id": attempt,
            "operator": self._operator.to_json(),
            "host": host.name,
            "tier": host.tier,
            "check": finding.check,
            "fix": fix.id,
            "title": fix.title,
            "target": fix.target,
            "risk": fix.risk.value,
            "commands": list(fix.command_lines),
            "pin": {"what": fix.pin.what, "value": fix.pin.value},
            "undo": [shlex.join(argv) for argv in fix.undo],
            "read_only": self.read_only,
        }

    def _record_or_refuse(
        self,
        record: dict[str, Any],
        outcome: Outcome,
        message: str,
        end: Callable[[Outcome, str], ActionResult],
    ) -> ActionResult:
        try:
            self.audit.append(
                {**record, "event": outcome.value, "outcome": outcome.value, "message": message}
            )
        except AuditError as error:
            message += f" (and the audit record could not be written: {error})"
        return end(outcome, message)

    async def _read_pin(self, host: FixHost, fix: Fix) -> tuple[str, str | None]:
        """(what the pin reads now, why the fix must not run, or None if the pin holds)."""
        pin = fix.pin
        if pin.query is not None:
            return await self._read_db_pin(host, fix, pin.query)
        try:
            result = await host.shell.run(pin.argv, timeout=pin.timeout)
        except CommandTimeout:
            now = f"no reading in {pin.timeout:g} s"
            return now, (
                f"aborted: {pin.what} could not be read in {pin.timeout:g} s, so whether it "
                "is still the target that was shown is not known; nothing was run"
            )
        except ShellError as error:
            now = f"unreadable ({error.reason})"
        else:
            if result.ok:
                # Exact text: a pin on a name that is not UTF-8 (a deleted file's) was taken
                # from exact text too, and two such names must not read as the same one.
                now = result.exact_stdout.strip()
                if pin.holds(result.exact_stdout):
                    return now, None
            else:
                why = (result.stderr or result.stdout).strip().splitlines()
                now = f"gone ({why[-1] if why else f'exit status {result.exit_status}'})"
        return now, (
            f"aborted: {pin.what} changed since the fix was offered: "
            f"it was {pin.value!r}, it is now {now!r}"
        )

    async def _read_db_pin(self, host: FixHost, fix: Fix, query: DbStep) -> tuple[str, str | None]:
        pin = fix.pin
        if host.database is None:
            return "no database session", "aborted: no database session to read the pin on"
        try:
            value = await host.database.read(query, pin.timeout)
        except DatabaseError as error:
            now = f"unreadable ({error})"
            return now, (
                f"aborted: {pin.what} could not be read ({error}), so whether it is still "
                "the target that was shown is not known; nothing was run"
            )
        else:
            if value is not None and pin.holds(value):
                return value, None
            now = value if value is not None else "gone (no such target now)"
        return now, (
            f"aborted: {pin.what} changed since the fix was offered: "
            f"it was {pin.value!r}, it is now {now!r}; nothing was run"
        )

    async def _run(self, host: FixHost, fix: Fix) -> list[CommandRun]:
        """The fix's commands in order under one deadline; stop at the first that fails."""
        runs: list[CommandRun] = []
        deadline = time.monotonic() + fix.timeout
        if fix.statements:
            return await self._run_db(host, fix, deadline)
        for argv, command in zip(fix.commands, fix.command_lines, strict=True):
            started = time.monotonic()
            left = deadline - started
            error: str | None = None
            try:
                if left <= 0:
                    raise CommandTimeout(host.name, argv, fix.timeout)
                result: CommandResult = await host.shell.run(argv, timeout=left)
            except CommandTimeout as timeout:
                error = f"timed out after {fix.timeout:g} s: " + (
                    "killed" if timeout.killed else "it may still be running on the host"
                )
            except ShellError as failure:
                error = f"could not run: {failure.reason}"
            if error is not None:
                runs.append(CommandRun(command, None, time.monotonic() - started, "", error))
                break
            output = result.stdout + (("\n" if result.stdout else "") + result.stderr)
            runs.append(CommandRun(command, result.exit_status, result.duration, output))
            if not result.ok:
                break
        return runs

    async def _run_db(self, host: FixHost, fix: Fix, deadline: float) -> list[CommandRun]:
        """A database fix's steps in order under one deadline; stop at the first that fails."""
        runs: list[CommandRun] = []
        for step in fix.statements:
            left = deadline - time.monotonic()
            if host.database is None:
                runs.append(CommandRun(step.shown, None, 0.0, "", "no database session"))
            elif left <= 0:
                runs.append(
                    CommandRun(step.shown, None, 0.0, "", f"timed out after {fix.timeout:g} s")
                )
            else:
                runs.append(await host.database.execute(step, left))
            if not runs[-1].ok:
                break
        return runs


def _finding_json(finding: Finding) -> dict[str, str]:
    return {"status": finding.status.value, "target": finding.target, "summary": finding.summary}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
