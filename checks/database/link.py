"""`DbLink`: one PostgreSQL target as the database wizard, the pane and the gate use it.

It opens its monitoring session when first asked and again after the session was lost or
stopped answering, so a re-run after a restart of the server works. Each wizard step gets
a fresh `DbContext` (re-read facts, its own timings; the link keeps every query's timing
for the benchmark). A fix's steps run in a session of their own, opened for that step with
the fix's time as its statement_timeout, so a VACUUM is not cut at the monitoring 5 s and
the monitoring session is never busy with it. A `pg_dump` runs on this machine, through
the same forward as the sessions for a remote host.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

from fleetdeck.checks.actions import CommandRun, DatabaseError
from fleetdeck.checks.database.base import DbContext, QueryTime
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.model import DbStep
from fleetdeck.hosts.postgres.dump import dump_database
from fleetdeck.hosts.postgres.session import (
    PgConnectError,
    PgError,
    PgFailure,
    PgQueryError,
    PgSession,
    PgTarget,
    SessionSettings,
    open_session,
)

SshOpener = Callable[[], Awaitable[asyncssh.SSHClientConnection]]
"""The host's SSH connection, (re)connected on demand: `HostLink.connection`."""

FIX_LOCK_TIMEOUT = 2.0
"""How long a fix's statement waits for a lock (VACUUM behind an ALTER TABLE) before it
gives up and says so, instead of queueing and making others queue behind it."""

KEPT_CONTEXTS = 200


class DbLink:
    """One target on one host: a monitoring session opened on demand, fix sessions per step."""

    def __init__(
        self,
        target: PgTarget | None,
        host: str,
        *,
        ssh: SshOpener | None = None,
        thresholds: DbThresholds | None = None,
        settings: SessionSettings | None = None,
        dump_dir: str = "",
    ) -> None:
        self.target = target
        self.host = host
        self.label = target.label if target is not None else "postgres"
        self.thresholds = thresholds or DbThresholds()
        self.settings = settings or SessionSettings()
        self.dump_dir = dump_dir
        self._ssh = ssh
        self._session: PgSession | None = None
        self._dbname = ""
        self._contexts: deque[DbContext] = deque(maxlen=KEPT_CONTEXTS)

    @property
    def where(self) -> str:
        """`orders on db-01`; for libpq's defaults, the database the session reached."""
        if self.target is None and self._dbname:
            return f"database {self._dbname} on {self.host}"
        return f"{self.label} on {self.host}"

    @property
    def timings(self) -> list[QueryTime]:
        """Every query the link's checks sent (the last KEPT_CONTEXTS runs), in order."""
        return [t for db in self._contexts for t in db.timings]

    async def session(self) -> PgSession:
        """The monitoring session, opened (again) if need be; `PgConnectError` says why not."""
        lost = any(db.gone is not None and db.session is self._session for db in self._contexts)
        if self._session is not None and (lost or self._session.connection.closed):
            await self.close()
        if self._session is None:
            self._session = await self._open(self.settings)
            self._dbname = self._session.connection.info.dbname
        return self._session

    async def context(self) -> DbContext:
        """A fresh `DbContext` over the monitoring session, for one check or step."""
        session = await self.session()
        db = DbContext(
            session,
            self.host,
            self.thresholds,
            label=self.label,
            connect_seconds=session.connect_seconds,
        )
        db.dump_dir = self.dump_dir
        self._contexts.append(db)
        return db

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- the gate's side (checks.actions.Database) ----------------------------------------

    async def read(self, step: DbStep, timeout: float) -> str | None:
        """A pin's value now: the first column of the first row as text; None: no row."""
        try:
            session = await self.session()
            rows = await session.fetch(step.query, step.params)
        except PgError as error:
            raise DatabaseError(f"{error.failure.value}: {error.detail}") from None
        if not rows:
            return None
        return " ".join(_pinned(value) for value in rows[0].values())

    async def execute(self, step: DbStep, timeout: float) -> CommandRun:
        """Run one fix step in a session of its own; never raises."""
        if step.dump_to:
            return await self._dump(step, timeout)
        started = time.monotonic()
        settings = SessionSettings(
            connect_timeout=self.settings.connect_timeout,
            statement_timeout=timeout,
            lock_timeout=min(step.lock_timeout or FIX_LOCK_TIMEOUT, timeout),
            idle_in_transaction_timeout=self.settings.idle_in_transaction_timeout,
        )
        notices: list[str] = []
        try:
            async with await self._open(settings) as session:
                session.connection.add_notice_handler(
                    lambda d: notices.append(f"{d.severity}: {d.message_primary}")
                )
                rows = await session.fetch(step.query, step.params)
        except PgConnectError as error:
            said = f"could not connect: {error.failure.value}: {error.detail}"
            return CommandRun(step.shown, None, time.monotonic() - started, "", said)
        except PgQueryError as error:
            output = "\n".join([*notices, f"{error.failure.value}: {error.detail}"])
            if step.on_failure:
                output += f"; {step.on_failure}"
            return CommandRun(step.shown, 1, time.monotonic() - started, output)
        took = time.monotonic() - started
        output = "\n".join(
            [*(" | ".join(_text(v) for v in row.values()) for row in rows), *notices]
        )
        if step.must_match and not (rows and next(iter(rows[0].values())) is True):
            said = output or "no row: the target is gone or has moved on (another statement, "
            said += "" if output else "another transaction, or another process on its pid)"
            return CommandRun(step.shown, 1, took, f"did not act: {said}")
        warned = [n for n in notices if n.startswith("WARNING")]
        if warned:  # VACUUM skipping a table this user may not touch only warns
            return CommandRun(step.shown, 1, took, output + f"\nnot done: {warned[-1]}")
        return CommandRun(step.shown, 0, took, output or "done")

    async def _dump(self, step: DbStep, timeout: float) -> CommandRun:
        try:
            Path(step.dump_to).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            ssh = await self._ssh() if self._ssh is not None else None
        except OSError as error:
            said = f"cannot make {Path(step.dump_to).parent}: {error.strerror or error}"
            return CommandRun(step.shown, None, 0.0, "", said)
        except Exception as error:  # the host's own link says why it cannot connect
            return CommandRun(step.shown, None, 0.0, "", f"SSH: {error}")
        result = await dump_database(
            self.target, step.dump_to, host=self.host, ssh=ssh, timeout=timeout
        )
        if result.error is not None:
            return CommandRun(step.shown, None, result.duration, result.output, result.error)
        output = result.output
        if result.exit_status == 0:
            output = f"wrote {step.dump_to}" + (f"\n{output}" if output.strip() else "")
        else:  # the gate quotes the last line: make it pg_dump's reason, not its context
            lines = output.strip().splitlines()
            reason = next((line for line in lines if " error: " in line), "")
            output += f"\n{reason}" if reason else ""
        return CommandRun(step.shown, result.exit_status, result.duration, output)

    async def _open(self, settings: SessionSettings) -> PgSession:
        try:
            ssh = await self._ssh() if self._ssh is not None else None
        except Exception as error:  # the host's own link says why it cannot connect
            raise PgConnectError(self.where, PgFailure.SSH, f"SSH: {error}") from None
        return await open_session(self.target, host=self.host, ssh=ssh, settings=settings)


def _pinned(value: object) -> str:
    """A pin's column as text: times in ISO 8601 (as the finding's evidence shows them)."""
    if value is None:
        return "none"
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


def _text(value: object) -> str:
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "t" if value else "f"
    return str(value)
