"""One long-lived remote sh per host that runs fleetdeck's scripts on request.

Every new SSH channel costs the remote sshd a fork and a login, which is most of the time a
sample takes; so each host gets one `sh` on one channel, kept open, that reads a request
per line (`sample`, `processes`, `describe`, or `run` followed by a command line) and
answers with the output and an end marker carrying the request's random nonce, so nothing
a command prints can end its answer early. The remote side needs POSIX sh and /proc.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import time
from collections.abc import Sequence

import asyncssh

from fleetdeck.hosts.proc_sampler import MARKER, SCRIPTS
from fleetdeck.hosts.samplers import SampleError
from fleetdeck.hosts.shell import CommandResult, ShellError

DONE = f"\n{MARKER}@done "
OUT, STATUS = f"\n{MARKER}@out\n", f"\n{MARKER}@status\n"


def _program() -> str:
    """The remote loop: each script becomes a shell function; requests pick one by name;
    `run` reads one more line, a command, and answers its output and exit status."""
    functions = "\n".join(f"fd_{name}() {{\n{body}\n}}" for name, body in SCRIPTS.items())
    # Each answer is gathered and written at once: section by section it went out in a
    # score of small SSH packets, each decrypted in Python on our side (half the cost of a
    # sample). The trailing "x" keeps $(...) from eating the answer's last newlines.
    cases = "\n".join(
        f'    {name}) fd_out=$(fd_{name}; echo x); printf %s "${{fd_out%x}}" ;;' for name in SCRIPTS
    )
    return f"""{functions}
while read -r request nonce; do
  case "$request" in
{cases}
    run) IFS= read -r fd_command
         printf '\\n{MARKER}@out\\n'
         sh -c "$fd_command" </dev/null 2>&1
         printf '\\n{MARKER}@status\\n%s\\n' "$?" ;;
    *) printf '\\n{MARKER}error\\nunknown request\\n' ;;
  esac
  printf '\\n{MARKER}@done %s\\n' "$nonce"
done
"""


PROGRAM = _program()


class StreamScripts:
    """A `ScriptRunner` on one persistent remote process, restarted if it dies."""

    def __init__(self, host: str, connection: asyncssh.SSHClientConnection) -> None:
        self._host = host
        self.connection = connection
        self._process: asyncssh.SSHClientProcess[str] | None = None
        self._lock = asyncio.Lock()

    @property
    def host(self) -> str:
        return self._host

    async def run_script(self, name: str, timeout: float) -> str:
        if name not in SCRIPTS:
            raise SampleError(f"{self._host}: no script called {name!r}")
        return await self._request(name, timeout)

    async def run_command(self, argv: Sequence[str], timeout: float = 10.0) -> CommandResult:
        """An ad-hoc command on the open stream: no new channel. Its stdout and stderr come
        back together (as `stdout`); a command line must fit on one line."""
        command = shlex.join(argv)
        if not argv or "\n" in command or "\r" in command:
            raise ShellError(self._host, argv, "a streamed command must be one line")
        started = time.monotonic()
        try:
            text = await self._request("run", timeout, command)
        except SampleError as error:
            raise ShellError(self._host, argv, str(error).removeprefix(f"{self._host}: ")) from None
        output, _, status = text.partition(STATUS)
        return CommandResult(
            argv=tuple(argv),
            exit_status=int(status.strip()) if status.strip().isdecimal() else -1,
            stdout=output.removeprefix(OUT),
            stderr="",
            duration=time.monotonic() - started,
        )

    async def _request(self, name: str, timeout: float, extra: str | None = None) -> str:
        nonce = secrets.token_hex(8)
        done = f"{DONE}{nonce}\n"
        async with self._lock:  # one request at a time: answers come back in order
            try:
                async with asyncio.timeout(timeout):
                    process = await self._ensure()
                    process.stdin.write(f"{name} {nonce}\n" + (f"{extra}\n" if extra else ""))
                    text = await process.stdout.readuntil(done)
            except TimeoutError:
                self.close()  # a half-read answer would poison the next one
                raise SampleError(
                    f"{self._host}: no answer to {name!r} within {timeout:g} s"
                ) from None
            except (OSError, asyncssh.Error, asyncio.IncompleteReadError) as error:
                self.close()
                reason = getattr(error, "reason", None) or str(error) or type(error).__name__
                raise SampleError(f"{self._host}: the sampling stream broke: {reason}") from None
        return text[: -len(done)]

    async def _ensure(self) -> asyncssh.SSHClientProcess[str]:
        if self._process is None or self._process.exit_status is not None:
            command = shlex.join(["sh", "-c", PROGRAM])
            self._process = await self.connection.create_process(
                command, encoding="utf-8", errors="replace"
            )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None
