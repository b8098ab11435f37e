"""One long-lived remote sh per host that runs fleetdeck's scripts on request.

Every new SSH channel costs the remote sshd a fork and a login, which is most of the time a
sample takes; so each host gets one `sh` on one channel, kept open, that reads a request
word per line (`sample`, `processes`, `describe`) and answers with the script's output
and an end marker. The remote side needs POSIX sh and /proc, nothing installed.
"""

from __future__ import annotations

import asyncio
import shlex

import asyncssh

from hosts.proc_sampler import MARKER, SCRIPTS
from hosts.samplers import SampleError

DONE = f"\n{MARKER}@done\n"


def _program() -> str:
    """The remote loop: each script becomes a shell function; requests pick one by name."""
    functions = "\n".join(f"fd_{name}() {{\n{body}\n}}" for name, body in SCRIPTS.items())
    cases = "\n".join(f"    {name}) fd_{name} ;;" for name in SCRIPTS)
    return f"""{functions}
while IFS= read -r request; do
  case "$request" in
{cases}
    *) printf '\\n{MARKER}error\\nunknown request\\n' ;;
  esac
  printf '\\n{MARKER}@done\\n'
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
        async with self._lock:  # one request at a time: answers come back in order
            try:
                async with asyncio.timeout(timeout):
                    process = await self._ensure()
                    process.stdin.write(name + "\n")
                    text = await process.stdout.readuntil(DONE)
            except TimeoutError:
                self.close()  # a half-read answer would poison the next one
                raise SampleError(
                    f"{self._host}: no answer to {name!r} within {timeout:g} s"
                ) from None
            except (OSError, asyncssh.Error, asyncio.IncompleteReadError) as error:
                self.close()
                reason = getattr(error, "reason", None) or str(error) or type(error).__name__
                raise SampleError(f"{self._host}: the sampling stream broke: {reason}") from None
        return text[: -len(DONE)]

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
