"""Checks that ask a host through its shell: the `ShellCheck` wrapper that turns a failure to
gather evidence into an UNKNOWN finding, and the small helpers the wizards' steps share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.shell import CommandResult, CommandTimeout, OutputLost, Shell, ShellError

COMMAND_TIMEOUT = 10.0


class StepFailed(Exception):
    """A step could not gather its evidence; it becomes an UNKNOWN finding with this reason."""


@dataclass(frozen=True, slots=True)
class ShellCheck:
    """A check that asks the host through its shell."""

    id: str
    title: str
    body: Callable[[CheckContext, Shell], Awaitable[list[Finding]]]
    domain: str

    async def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.shell is None:
            return [Finding(self.id, Status.UNKNOWN, ctx.host, "no shell on this host")]
        try:
            return await self.body(ctx, ctx.shell)
        except StepFailed as error:
            return [Finding(self.id, Status.UNKNOWN, ctx.host, str(error))]
        except ShellError as error:
            return [Finding(self.id, Status.UNKNOWN, ctx.host, str(error))]
        except ParseError as error:
            return [Finding(self.id, Status.UNKNOWN, ctx.host, f"unexpected output: {error}")]


async def run(shell: Shell, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run a command; one that cannot start here (not installed) reads as exit status 127,
    as it does over SSH. A timeout or lost output still raises: the step becomes UNKNOWN,
    saying so, never a reading of empty output."""
    try:
        return await shell.run(argv, timeout=timeout)
    except (CommandTimeout, OutputLost):
        raise
    except ShellError as error:
        return CommandResult(tuple(argv), 127, "", f"{argv[0]}: {error.reason}", 0.0)


def evidence(result: CommandResult, limit: int = 4000) -> Evidence:
    text = result.stdout if result.ok else (result.stderr or result.stdout)
    if not result.ok:
        text = f"exit status {result.exit_status}\n{text}"
    text = text if len(text) <= limit else text[:limit] + f"\n… {len(text) - limit} more characters"
    return Evidence(result.command, text.rstrip())


def why(result: CommandResult) -> str:
    """A failed command's reason in a few words: its last line of output, or that it is
    not installed (exit 127)."""
    if result.exit_status == 127:
        return f"{result.argv[0]} is not installed"
    said = (result.stderr or result.stdout).strip().splitlines()
    return said[-1].removeprefix(f"{result.argv[0]}: ") if said else f"exit {result.exit_status}"


async def required(shell: Shell, argv: Sequence[str]) -> CommandResult:
    result = await run(shell, argv)
    if not result.ok:
        why = (result.stderr or result.stdout).strip().splitlines()
        raise StepFailed(f"{result.command}: {why[-1] if why else f'exit {result.exit_status}'}")
    return result


async def host_time(shell: Shell) -> float:
    """The host's clock: file ages are measured against it, not against ours."""
    result = await run(shell, ("date", "+%s"))
    try:
        return float(result.stdout.strip())
    except ValueError:
        raise StepFailed(f"cannot read the host's clock: {result.stdout.strip()!r}") from None


async def free_bytes(shell: Shell, path: str) -> int | None:
    """The bytes free for ordinary users on the filesystem holding `path` (df's Available):
    what a finding shows as free there."""
    result = await run(shell, ("df", "-P", "-B1", path))
    lines = result.stdout.splitlines()
    if not result.ok or len(lines) < 2:
        return None
    fields = lines[-1].split()
    return int(fields[3]) if len(fields) > 3 and fields[3].isdecimal() else None


async def free_blocks_bytes(shell: Shell, path: str) -> int | None:
    """Free bytes on the filesystem holding `path`, root's reserved blocks included (statfs
    f_bfree times the fragment size): the measure of what a fix frees, right even on a full
    filesystem, where df's Available stays 0 until the reserve is free again. `-L` follows
    `path`, so a `/proc/PID/fd/N` link measures the filesystem of a deleted file it holds."""
    result = await run(shell, ("stat", "-f", "-L", "-c", "%f %S", "--", path))
    fields = result.stdout.split()
    if not result.ok or len(fields) != 2 or not all(f.isdecimal() for f in fields):
        return None
    return int(fields[0]) * int(fields[1])
