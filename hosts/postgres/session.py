"""Sessions fleetdeck opens to PostgreSQL: psycopg 3 async, the libpq way, bounded in time.

`open_session(target, host=..., ssh=...)` opens one `PgSession`. With no target on this
machine, libpq's defaults apply (PG* variables, the default socket). A remote host's target
is reached through that host's existing asyncssh connection by a local port forward (on this
machine's 127.0.0.1, only until libpq has connected): no second login, no database port
opened to the network. Passwords: see `hosts.postgres.targets`.

Every session says `application_name=fleetdeck` (so lists can leave fleetdeck out), runs in
autocommit, and carries statement_timeout, lock_timeout and
idle_in_transaction_session_timeout from its start. lock_timeout is short on purpose: during
an incident some DDL may hold or queue for an exclusive lock, and fleetdeck queueing behind
it would add to the pile-up; it gives up at once and says so. Connecting has libpq's
connect_timeout and an outer asyncio timeout (a server stopped with SIGSTOP accepts TCP and
never answers); so do queries, which close the session rather than wait on a dead server.

Every failure is a `PgError` naming the host and target and saying the cause in an
operator's words (`classify`); a password is never in a message, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh
import psycopg
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row

from fleetdeck.hosts.postgres.targets import (
    PgConnectError,
    PgError,
    PgFailure,
    PgQueryError,
    PgTarget,
    describe,
    effective,
    password_places,
    pgpass_password,
    pgpass_path,
    prepare,
    read_pgpass,
    service_missing,
    through_forward,
)

APPLICATION_NAME = "fleetdeck"
SSL_REQUIRED = frozenset({"require", "verify-ca", "verify-full"})

# The failures live in hosts.postgres.targets (it raises them too); callers import them from here.
__all__ = [
    "APPLICATION_NAME",
    "Dial",
    "PgConnectError",
    "PgError",
    "PgFailure",
    "PgQueryError",
    "PgSession",
    "PgTarget",
    "SessionSettings",
    "classify",
    "open_session",
]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Limits of every session fleetdeck opens (seconds)."""

    connect_timeout: float = 5.0
    statement_timeout: float = 5.0
    lock_timeout: float = 0.05
    idle_in_transaction_timeout: float = 10.0
    read_only: bool = False
    """`default_transaction_read_only`: for sessions that only look (the pane)."""

    def options(self) -> str:
        """The libpq `options` string that sets them at session start."""
        pairs: dict[str, object] = {
            "statement_timeout": round(self.statement_timeout * 1000),
            "lock_timeout": max(1, round(self.lock_timeout * 1000)),  # 0 would mean forever
            "idle_in_transaction_session_timeout": round(self.idle_in_transaction_timeout * 1000),
        }
        if self.read_only:  # never "off": that would undo a role's own read-only default
            pairs["default_transaction_read_only"] = "on"
        return " ".join(f"-c {name}={value}" for name, value in pairs.items())


_SSL_ONLY = (
    "the server accepts only SSL connections from here (hostssl in pg_hba.conf), "
    'but sslmode is disable: set sslmode = "require" (or verify-full)'
)
_NO_SSL = (
    "the server has SSL off, but sslmode requires it: turn ssl on in postgresql.conf, "
    "or lower sslmode on a network you trust"
)
_QUIET = "the server accepts the connection but does not reply (stopped, overloaded, or lost)"
_RULES: tuple[tuple[str, PgFailure, str], ...] = (
    # (pattern in libpq's message, failure, what to say: {0} libpq's words, {1} the place)
    ("password authentication failed", PgFailure.AUTH_FAILED, "{0}: the password was refused"),
    ("no password supplied", PgFailure.NO_PASSWORD, "the server asks for a password, none found"),
    ('role ".*" does not exist', PgFailure.AUTH_FAILED, "{0}"),
    ('database ".*" does not exist', PgFailure.NO_DATABASE, "{0}: check dbname"),
    ("no encryption", PgFailure.SSL_MISMATCH, _SSL_ONLY),
    ("does not support ssl", PgFailure.SSL_MISMATCH, _NO_SSL),
    ("certificate", PgFailure.SSL_MISMATCH, "{0}"),
    ("pg_hba.conf", PgFailure.REJECTED, "{0}: no pg_hba.conf line lets this user in from here"),
    ("permission denied", PgFailure.PERMISSION_DENIED, "{0}"),
    ("too many clients", PgFailure.FULL, "{0}: every max_connections slot is in use"),
    ("connection slots are reserved", PgFailure.FULL, "{0}: only reserved slots are left"),
    ("refused", PgFailure.DOWN, "nothing listens at {1} (connection refused)"),
    ("no such file or directory", PgFailure.DOWN, "no server at {1} (no such socket file)"),
    ("timeout expired", PgFailure.TIMEOUT, "no answer within connect_timeout: " + _QUIET),
    ("resolve host|translate host name", PgFailure.NAME_NOT_RESOLVED, "{0}"),
    ("the database system is", PgFailure.STARTING, "{0}"),
    ("definition of service", PgFailure.CONFIG, "{0}"),
    ("closed the connection", PgFailure.LOST, "the server closed the connection at once"),
    (
        "connection to server was lost|terminating connection|connection is closed",
        PgFailure.LOST,
        "{0}",
    ),
)
_PLACE = re.compile(
    r'connection to server (?:at "(?P<host>[^"]+)"(?: \([^)]*\))?, port (?P<port>\d+)'
    r'|on socket "(?P<socket>[^"]+)") failed: '
)


def classify(
    error: Exception, settings: SessionSettings, secret: str | None = None
) -> tuple[PgFailure, str]:
    """The cause of a psycopg error and a sentence saying it (the password scrubbed out)."""
    sqlstate = getattr(error, "sqlstate", None)
    words, place = _core(scrub(str(error), secret))
    if sqlstate == "55P03":
        ms = round(settings.lock_timeout * 1000)
        return PgFailure.LOCK_TIMEOUT, (
            f"gave up after {ms} ms waiting for a lock another session holds "
            "(fleetdeck never queues behind locks): try again, or look at the lock chain"
        )
    if sqlstate == "57014" and "statement timeout" in words:
        return PgFailure.STATEMENT_TIMEOUT, (
            f"the server stopped the query at statement_timeout ({settings.statement_timeout:g} s)"
        )
    for pattern, failure, text in _RULES:
        if re.search(pattern, words, re.IGNORECASE):
            return failure, text.format(words, place)
    return PgFailure.ERROR, words


def _core(message: str) -> tuple[str, str]:
    """libpq's words without psycopg's and libpq's prefixes (DETAIL and HINT kept), and the
    place it tried (`127.0.0.1 port 5432`, `socket /run/postgresql/.s.PGSQL.5432`)."""
    lines = [" ".join(line.split()) for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "unknown error"
    for prefix in ("connection failed:", "connection is bad:"):
        first = first.removeprefix(prefix).strip()
    place = "the server"
    if found := _PLACE.match(first):
        socket, host, port = found["socket"], found["host"], found["port"]
        place = f"socket {socket}" if socket else f"{host} port {port}"
        first = first[found.end() :]
    first = first.removeprefix("FATAL:").strip()
    extra = [line for line in lines[1:] if line.startswith(("DETAIL:", "HINT:"))]
    return "; ".join([first, *extra]), place


def scrub(text: str, secret: str | None) -> str:
    """Text with a password replaced (libpq never echoes one; this makes sure)."""
    return text.replace(secret, "********") if secret and len(secret) >= 4 else text


@dataclass(frozen=True, slots=True, repr=False)
class PgSession:
    """One open session to a target; `fetch` runs a query with bounded time, `close` ends it."""

    where: str
    connection: psycopg.AsyncConnection[dict[str, Any]]
    settings: SessionSettings
    connect_seconds: float
    """How long connecting took (D1 reports it)."""
    password_from: str | None
    """Where fleetdeck took the password from (a name, never the value); None: libpq's own."""
    backend_pid: int

    def __repr__(self) -> str:
        return f"<PgSession {self.where} backend {self.backend_pid}>"

    async def fetch(
        self, query: Any, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The rows of one statement as dicts; a `PgQueryError` saying why otherwise. The
        server ends it at statement_timeout; the outer limit covers a server gone quiet."""
        limit = self.settings.statement_timeout + 2.0
        task = asyncio.ensure_future(self._fetch(query, params))
        try:
            return await asyncio.wait_for(asyncio.shield(task), limit)
        except TimeoutError:
            await _abandon(task)
            raise PgQueryError(
                self.where, PgFailure.TIMEOUT, f"no answer within {limit:g} s: session closed"
            ) from None
        except psycopg.Error as error:
            failure, detail = classify(error, self.settings)
            raise PgQueryError(self.where, failure, detail) from None
        except asyncio.CancelledError:
            await _abandon(task)
            raise

    async def _fetch(
        self, query: Any, params: Sequence[Any] | Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        cursor = await self.connection.execute(query, params)
        return await cursor.fetchall() if cursor.description else []

    async def close(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.connection.close()
        except (TimeoutError, psycopg.Error, OSError):
            self.connection.pgconn.finish()

    async def __aenter__(self) -> PgSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_session(
    target: PgTarget | None = None,
    *,
    host: str = "localhost",
    ssh: asyncssh.SSHClientConnection | None = None,
    settings: SessionSettings | None = None,
) -> PgSession:
    """Open a session to `target` on inventory host `host` (through its SSH connection
    `ssh` when it is remote); raise `PgConnectError` naming the cause otherwise."""
    settings = settings or SessionSettings()
    env = os.environ  # libpq reads the same variables, so no other mapping would be honest
    where = describe(target, host, env)
    started = time.monotonic()
    dial = Dial(target, where, ssh)
    try:
        async with asyncio.timeout(settings.connect_timeout + 1.0):
            params = await dial.open()
            connection = await psycopg.AsyncConnection.connect(
                **params,
                application_name=APPLICATION_NAME,
                connect_timeout=max(2, math.ceil(settings.connect_timeout)),
                options=settings.options(),
                autocommit=True,
                prepare_threshold=None,
                row_factory=dict_row,
            )
    except TimeoutError:
        raise PgConnectError(
            where,
            PgFailure.TIMEOUT,
            f"no answer within {settings.connect_timeout + 1.0:g} s: {_QUIET}",
        ) from None
    except psycopg.Error as error:
        raise await dial.failed(error, settings) from None
    except (OSError, asyncssh.Error) as error:
        raise _ssh_failed(where, error) from None
    finally:
        dial.close()  # the forwarded session lives on; no new ones are accepted
    for name in TEXT_TYPES:
        connection.adapters.register_loader(name, TolerantText)
    elapsed = time.monotonic() - started
    return PgSession(
        where, connection, settings, elapsed, dial.password_from, connection.info.backend_pid
    )


class TolerantText(Loader):
    """Text from the server decoded with replacement. The server does not check the text
    it reports about other databases: a session in a SQL_ASCII database can put bytes that
    are not UTF-8 in pg_stat_activity.query, and psycopg's strict decoding would turn every
    reading of the session list into a UnicodeDecodeError."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        encoding = self.connection.info.encoding if self.connection else "utf-8"
        self._encoding = "utf-8" if encoding == "ascii" else encoding  # ascii: SQL_ASCII

    def load(self, data: Buffer) -> str:
        return bytes(data).decode(self._encoding, errors="replace")


TEXT_TYPES = (0, "text", "varchar", "bpchar", "name", '"char"')
"""The types psycopg reads as text (oid 0, psycopg's INVALID_OID: any type it has no
loader for, such as regclass)."""


class Dial:
    """How to reach a target: libpq parameters with the password from where fleetdeck may
    take it, through a forward over the host's SSH connection when it is remote.

    The forward is a loopback TCP port, closed once the session has connected. With
    `private=True` (a pg_dump, which may take long) it is a unix socket in a 0700 directory
    of fleetdeck's own, which no other local user can reach; for a target that demands SSL,
    which libpq never uses on a socket, a TCP port that takes one connection only. It stays
    open until `close`."""

    def __init__(
        self, target: PgTarget | None, where: str, ssh: asyncssh.SSHClientConnection | None
    ) -> None:
        self.target = target
        self.where = where
        self.ssh = ssh
        self.env = os.environ
        self.password_from: str | None = None
        self.secret: str | None = None
        self.lookup: tuple[str, int, str, str] | None = None
        self.service: dict[str, str] = {}
        self._listener: asyncssh.SSHListener | None = None
        self._private: str | None = None

    async def open(self, private: bool = False) -> dict[str, Any]:
        target, env = self.target, self.env
        params, self.service, self.password_from = prepare(
            target, env, self.where, remote=self.ssh is not None
        )
        self.secret = params.get("password")
        if self.ssh is not None:
            target = target or PgTarget()
            self.lookup = host, port, _, _ = effective(target, self.service, env, remote=True)
            sslmode = params.get("sslmode") or self.service.get("sslmode") or ""
            if private and sslmode not in SSL_REQUIRED:
                self._private = tempfile.mkdtemp(prefix="fleetdeck-pg-")  # mode 0700
                local = f"{self._private}/.s.PGSQL.{port}"
                self._listener = await _forward_path(self.ssh, local, host, port)
                params.update(host=self._private, port=port)
                params.pop("hostaddr", None)
            else:  # a pg_dump over SSL (libpq never retries it without) gets one connection
                self._listener = await _forward(self.ssh, host, port, once=private)
                params.update(through_forward(host, self._listener.get_port()))
            if "password" not in params and "password" not in self.service:
                entries, _ = read_pgpass(pgpass_path(env))
                if (from_file := pgpass_password(entries, *self.lookup)) is not None:
                    params["password"] = self.secret = from_file
                    self.password_from = str(pgpass_path(env))
        return params

    async def failed(self, error: psycopg.Error, settings: SessionSettings) -> PgConnectError:
        """The connect error in an operator's words, with where the password came from."""
        target, env, lookup = self.target, self.env, self.lookup
        failure, detail = classify(error, settings, self.secret)
        if self.ssh is not None and lookup is not None and failure is PgFailure.LOST:
            failure, detail = await _probe(self.ssh, lookup[0], lookup[1], failure, detail)
        if failure is PgFailure.NO_PASSWORD:
            lookup = lookup or effective(target or PgTarget(), self.service, env, remote=False)
            detail += "; fleetdeck looked in: " + "; ".join(password_places(target, env, lookup))
        if failure is PgFailure.CONFIG and target is not None and target.service:
            detail += f" ({service_missing(target.service, env)}, nor in libpq's own directory)"
        if failure is PgFailure.AUTH_FAILED:
            source = self.password_from or "libpq's search: PGPASSFILE, ~/.pgpass, the service file"
            detail += f" (the password came from {source})"
        return PgConnectError(self.where, failure, scrub(detail, self.secret))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None


def _ssh_failed(where: str, error: Exception) -> PgConnectError:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return PgConnectError(where, PgFailure.SSH, f"SSH port forward: {reason}")


async def _abandon(task: asyncio.Future[Any]) -> None:
    """Stop a query the server does not answer. psycopg meets a cancellation by sending the
    server a cancel request and waiting up to 10 s; a frozen server never answers that
    either, and a second cancellation makes psycopg close the connection instead."""
    for _ in range(10):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def _forward(
    ssh: asyncssh.SSHClientConnection, host: str, port: int, once: bool = False
) -> asyncssh.SSHListener:
    """A listener on this machine's loopback whose connections the remote host opens to
    `host:port` (or to the socket in directory `host`). A session's is closed as soon as
    libpq has connected (libpq may need a second try, without SSL after sslmode=prefer
    was refused); `once`: it takes the first connection only, and refuses the rest."""
    taken = False

    def first_only(_orig_host: str, _orig_port: int) -> bool:
        nonlocal taken
        accept, taken = not (taken and once), True
        return accept

    if host.startswith("/"):
        return await ssh.forward_local_port_to_path(
            "127.0.0.1", 0, f"{host}/.s.PGSQL.{port}", accept_handler=first_only
        )
    return await ssh.forward_local_port("127.0.0.1", 0, host, port, accept_handler=first_only)


async def _forward_path(
    ssh: asyncssh.SSHClientConnection, local: str, host: str, port: int
) -> asyncssh.SSHListener:
    """A unix socket `local` whose connections the remote host opens to `host:port` (or to
    the socket in directory `host`)."""
    if host.startswith("/"):
        return await ssh.forward_local_path(local, f"{host}/.s.PGSQL.{port}")
    return await ssh.forward_local_path_to_port(local, host, port)


async def _probe(
    ssh: asyncssh.SSHClientConnection, host: str, port: int, failure: PgFailure, detail: str
) -> tuple[PgFailure, str]:
    """Through a forward a refused connection reads as "closed unexpectedly": ask the remote
    host directly whether anything listens at `host:port`."""
    try:
        async with asyncio.timeout(2.0):
            if host.startswith("/"):
                _, writer = await ssh.open_unix_connection(f"{host}/.s.PGSQL.{port}")
            else:
                _, writer = await ssh.open_connection(host, port)
        writer.close()
    except asyncssh.ChannelOpenError as error:
        return PgFailure.DOWN, f"nothing listens on {host} port {port} there ({error.reason})"
    except (TimeoutError, OSError, asyncssh.Error):
        pass
    return failure, detail
