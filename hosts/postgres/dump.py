"""An emergency `pg_dump` (runbook D8) of a target's database, on this machine.

pg_dump reaches the database the way fleetdeck's sessions do: libpq's own variables
(PGHOST, PGPASSFILE, PGSERVICEFILE, the SSL ones...) are kept, and what the session's
`Dial` sets overrides them, so the dump is of the database the checks looked at. For a
remote host it goes through the host's SSH connection, by a private unix socket forward no
other local user can reach. The password goes in pg_dump's environment, never on its
command line; `--no-password` means a missing one fails at once instead of prompting.

The archive is written to `NAME.partial`, opened here with O_EXCL | O_NOFOLLOW in a
directory that must be this user's own and not writable by others, and handed to pg_dump
as its stdout; it becomes NAME (never over an existing file) only when pg_dump exits 0.
Otherwise, and when the attempt is cancelled, pg_dump is killed and the partial file
removed, so nothing that looks like a backup is left behind. A dump that writes nothing for
`stall` seconds (a server that froze midway) is stopped and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from fleetdeck.hosts.postgres.session import APPLICATION_NAME, Dial, scrub
from fleetdeck.hosts.postgres.targets import PgError, PgTarget, describe

_LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "service": "PGSERVICE",
    "sslmode": "PGSSLMODE",
}
STALL = 120.0
"""Seconds without a byte written before a dump is taken for stuck."""
POLL = 1.0


@dataclass(frozen=True, slots=True)
class DumpResult:
    """How `pg_dump` went: its exit status (None: it could not run, or was stopped), what it
    printed (stderr), and why it could not run or was stopped, if so."""

    exit_status: int | None
    output: str
    duration: float
    error: str | None = None


def unsafe_directory(directory: Path) -> str | None:
    """Why a dump must not be written in `directory` (another user could swap the file or
    read it), or None."""
    try:
        info = os.lstat(directory)
    except OSError as error:
        return f"cannot use {directory}: {error.strerror or error}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a directory (a symlink is not followed)"
    if info.st_uid != os.geteuid():
        return f"{directory} belongs to uid {info.st_uid}, not to this user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{directory} is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


async def dump_database(
    target: PgTarget | None,
    path: str,
    *,
    host: str = "localhost",
    ssh: asyncssh.SSHClientConnection | None = None,
    timeout: float = 1800.0,
    stall: float = STALL,
) -> DumpResult:
    """`pg_dump --format=custom` of the target's database into the new file `path`."""
    started = time.monotonic()
    final = Path(path)
    partial = final.with_name(final.name + ".partial")

    def failed(said: str) -> DumpResult:
        return DumpResult(None, "", time.monotonic() - started, said)

    if problem := unsafe_directory(final.parent):
        return failed(problem)
    if _exists(final):
        return failed(f"{final} exists already: a dump never writes over a file")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        return failed(f"cannot create {partial}: {error.strerror or error}")
    try:
        dial = Dial(target, describe(target, host, os.environ), ssh)
        try:
            result = await _run(dial, fd, timeout, stall, started)
        finally:
            dial.close()
        if result.error is None and result.exit_status == 0:
            try:
                os.link(partial, final)  # fails rather than replace a file made meanwhile
            except OSError as error:
                return failed(f"cannot name the dump {final}: {error.strerror or error}")
        return result
    finally:  # cancelled or not: the partial name goes (a finished dump has its own)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(partial)


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


async def _run(dial: Dial, fd: int, timeout: float, stall: float, started: float) -> DumpResult:
    process: asyncio.subprocess.Process | None = None
    try:
        params = await asyncio.wait_for(dial.open(private=True), 10.0)
        child = dict(os.environ)  # libpq's own variables stay; the dial's win
        child.update({_LIBPQ_ENV[k]: str(v) for k, v in params.items() if k in _LIBPQ_ENV})
        if dial.ssh is not None and "hostaddr" not in params:
            child.pop("PGHOSTADDR", None)  # it would send libpq past the private socket
        child.update(PGAPPNAME=APPLICATION_NAME, PGCONNECT_TIMEOUT="5")
        process = await asyncio.create_subprocess_exec(
            *("pg_dump", "--format=custom", "--no-password", "--lock-wait-timeout=5000"),
            env=child,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fd,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C at the console is fleetdeck's to handle
        )
        assert process.stderr is not None
        reading = asyncio.ensure_future(process.stderr.read())  # never let the pipe fill
        stopped = await _watch(process, fd, timeout, stall)
        if stopped:
            process.kill()
        await process.wait()
        stderr = await reading
        text = scrub(stderr.decode(errors="replace"), dial.secret)
        took = time.monotonic() - started
        if stopped:
            return DumpResult(None, text, took, stopped)
        return DumpResult(process.returncode, text, took)
    except FileNotFoundError:
        said = "pg_dump is not installed on this machine (PostgreSQL's client package)"
        return DumpResult(None, "", time.monotonic() - started, said)
    except TimeoutError:
        return DumpResult(None, "", time.monotonic() - started, "the forward did not open")
    except (PgError, OSError, asyncssh.Error) as error:
        said = str(error) if isinstance(error, PgError) else f"SSH port forward: {error}"
        return DumpResult(None, "", time.monotonic() - started, f"could not run pg_dump: {said}")
    finally:
        if process is not None and process.returncode is None:  # cancelled, or stopped
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(process.wait())


async def _watch(
    process: asyncio.subprocess.Process, fd: int, timeout: float, stall: float
) -> str | None:
    """Wait for pg_dump; why it had to be stopped (too long, or nothing written for
    `stall` s), or None when it ended by itself."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), POLL)
        if process.returncode is not None:
            return None
        now = time.monotonic()
        written = os.fstat(fd).st_size
        if written != size:
            size, since = written, now
        if now >= deadline:
            return f"no end within {timeout:g} s: pg_dump was stopped"
        if now - since >= stall:
            return f"nothing written for {stall:g} s (the server stopped answering?): stopped"
