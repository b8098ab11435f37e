"""Running commands on a host: the `Shell` protocol and `LocalShell` for this machine.

A command is always an argv list, never a shell string built from text, and every call has a
timeout. Remote shells (SSH) implement the same protocol, so checks and samplers never know
which kind they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_TIMEOUT = 10.0
OUTPUT_GRACE = 0.5
"""Seconds to keep reading output after a command exits (children may still hold it)."""


def decoded(raw: bytes | bytearray) -> str:
    """Host output as text: a byte that is not UTF-8 becomes U+FFFD, never an error (a host
    decides what bytes its file names hold, so strict decoding lets it break the reader)."""
    return raw.decode("utf-8", errors="replace")


def exact(raw: bytes) -> str:
    """Host output with every byte kept: one that is not UTF-8 becomes a lone surrogate
    (os.fsdecode's way), so a name read from it, passed back in an argv, is those bytes.
    Such text must be shown through `checks.model.printable`, which escapes them (\\xff)."""
    return raw.decode("utf-8", errors="surrogateescape")


def encoded(text: str) -> bytes:
    """Text for a host, as bytes: the inverse of `exact` (os.fsencode's way)."""
    return text.encode("utf-8", errors="surrogateescape")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did: its argv, exit status, output and how long it took (seconds).

    `stdout` and `stderr` are decoded with replacement; `raw_stdout` keeps the bytes, for
    the few steps that act on a name exactly as the host spelled it (see `exact_stdout`)."""

    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration: float
    raw_stdout: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def exact_stdout(self) -> str:
        """The output with bytes that are not UTF-8 kept as surrogates (see `exact`)."""
        return self.stdout if self.raw_stdout is None else exact(self.raw_stdout)

    @property
    def command(self) -> str:
        """The command as a person would type it."""
        return shlex.join(self.argv)


def brief(argv: Sequence[str], limit: int = 60) -> str:
    """A command shortened for a message: its first line, cut at `limit` characters."""
    text = shlex.join(argv)
    first = text.split("\n", 1)[0]
    return first if first == text and len(text) <= limit else first[:limit].rstrip() + " …"


class ShellError(Exception):
    """A command could not be run at all on a host; the message names the host and why."""

    def __init__(self, host: str, argv: Sequence[str], reason: str) -> None:
        self.host = host
        self.argv = tuple(argv)
        self.reason = reason
        super().__init__(f"{host}: {brief(self.argv)}: {reason}")


class OutputLost(ShellError):
    """A command ran, or may have, but its output could not be read (the connection dropped
    under it): what it found is not known, which is never the same as finding nothing."""


class CommandTimeout(ShellError):
    """A command ran past its timeout and was killed."""

    def __init__(
        self, host: str, argv: Sequence[str], timeout: float, *, killed: bool = True
    ) -> None:
        reason = f"no answer within {timeout:g} s"
        super().__init__(host, argv, reason if killed else f"{reason}; it may still be running")
        self.timeout = timeout
        self.killed = killed
        """Whether the command is known to be stopped (killed), not just abandoned."""


class Shell(Protocol):
    """Runs argv lists on one host."""

    @property
    def host(self) -> str:
        """The host's name, as the operator knows it."""
        ...

    async def run(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None
    ) -> CommandResult:
        """Run argv; raise `ShellError` if it cannot start, `CommandTimeout` if it overruns."""
        ...


class LocalShell:
    """Runs commands on this machine as asyncio subprocesses."""

    def __init__(self, host: str = "localhost", env: dict[str, str] | None = None) -> None:
        self._host = host
        # The C locale keeps df, ps and friends in the English and ASCII the parsers read.
        self._env = {**os.environ, "LC_ALL": "C", **(env or {})}

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None
    ) -> CommandResult:
        if not argv:
            raise ShellError(self._host, argv, "empty command")
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitProtocol(exited, loop),
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                start_new_session=True,
            )
        except OSError as error:
            raise ShellError(self._host, argv, error.strerror or str(error)) from None
        process = asyncio.subprocess.Process(transport, protocol, loop)
        out, err = bytearray(), bytearray()
        readers = [
            asyncio.create_task(_drain(process.stdout, out)),
            asyncio.create_task(_drain(process.stderr, err)),
        ]
        try:
            async with asyncio.timeout(timeout):
                if stdin is not None and process.stdin is not None:
                    process.stdin.write(encoded(stdin))
                    with contextlib.suppress(ConnectionError):
                        await process.stdin.drain()
                    process.stdin.close()
                await exited  # not process.wait(): that also waits for the pipes to close
            # A command that started a daemon has exited, but the daemon may hold its output
            # open for ever: take what has come within a moment and stop listening.
            await asyncio.wait(readers, timeout=OUTPUT_GRACE)
        except TimeoutError:
            await _kill(process)
            raise CommandTimeout(self._host, argv, timeout) from None
        except asyncio.CancelledError:
            await _kill(process)
            raise
        finally:
            for reader in readers:
                reader.cancel()
            transport.close()  # the pipes; the process has exited or been killed by now
        return CommandResult(
            argv=tuple(argv),
            exit_status=process.returncode if process.returncode is not None else -1,
            stdout=decoded(out),
            stderr=decoded(err),
            duration=time.monotonic() - started,
            raw_stdout=bytes(out),
        )


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol, plus a future that is done the moment the process exits."""

    def __init__(self, exited: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self._exited = exited

    def process_exited(self) -> None:
        super().process_exited()
        if not self._exited.done():
            self._exited.set_result(None)


async def _drain(stream: asyncio.StreamReader | None, into: bytearray) -> None:
    """Read a pipe to its end, keeping what came so far if cancelled."""
    if stream is None:
        return
    while chunk := await stream.read(65536):
        into += chunk


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill a command and whatever it started (it leads its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), 2)
