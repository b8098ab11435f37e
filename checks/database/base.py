"""What every PostgreSQL check is built on: `DbContext`, shared by the checks of one run
(the timed session, the thresholds, the server facts and the pg_stat_activity snapshot, each
read once), and `DbCheck`, a check whose failed query becomes an UNKNOWN finding saying why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.database.queries import (
    Activity,
    Fetcher,
    ServerInfo,
    read_activity,
    read_server,
)
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status
from fleetdeck.hosts.postgres.session import PgConnectError, PgFailure, PgQueryError

DOMAIN = "database"


@dataclass(frozen=True, slots=True)
class QueryTime:
    """One query a run sent: its name (from its leading comment), seconds, rows."""

    name: str
    seconds: float
    rows: int


class DbContext:
    """What the checks of one run share: the session (timed), the thresholds, and the
    server facts and activity snapshot, each read once (a failure is kept and raised again)."""

    def __init__(
        self,
        session: Fetcher,
        host: str,
        thresholds: DbThresholds | None = None,
        *,
        label: str = "postgres",
        connect_seconds: float | None = None,
    ) -> None:
        self.session = session
        self.host = host
        self.thresholds = thresholds or DbThresholds()
        self.label = label
        self.connect_seconds = connect_seconds
        self.timings: list[QueryTime] = []
        self.focus = ""
        """The target a fix's verification asks about (`public.orders`): a check that lists
        only its worst few reads it whatever its rank."""
        self.dump_dir = ""
        """Where a fix's emergency pg_dump writes (D8); "": fleetdeck's own state directory."""
        self.gone: PgQueryError | None = None
        """Set when the session was lost or stopped answering: later checks do not run."""
        self._cache: dict[str, Any] = {}

    async def fetch(
        self, query: Any, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        try:
            rows = await self.session.fetch(query, params)
            return rows
        except PgQueryError as error:
            if error.failure in (PgFailure.TIMEOUT, PgFailure.LOST):
                self.gone = error
            raise
        finally:
            text = query if isinstance(query, str) else query.as_string(None)
            name = text.partition("*/")[0].removeprefix("/* fleetdeck:").strip()
            self.timings.append(QueryTime(name, time.perf_counter() - started, len(rows)))

    @property
    def user(self) -> str:
        """The user fleetdeck logged in as, once known (for "grant pg_monitor to ...")."""
        server = self._cache.get("server")
        return server.user if isinstance(server, ServerInfo) else "the monitoring user"

    async def server(self) -> ServerInfo:
        info: ServerInfo = await self._once("server", read_server)
        return info

    async def activity(self) -> Activity:
        found: Activity = await self._once("activity", read_activity)
        return found

    async def _once(self, key: str, read: Callable[[Fetcher], Awaitable[Any]]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = await read(self)
            except PgQueryError as error:
                self._cache[key] = error
        found = self._cache[key]
        if isinstance(found, PgQueryError):
            raise found
        return found


Body = Callable[[DbContext], Awaitable[list[Finding]]]


class ContextSource(Protocol):
    """What a wizard step asks for its `DbContext`: `checks.database.link.DbLink`."""

    label: str

    async def context(self) -> DbContext: ...


def unreachable(error: PgConnectError, label: str) -> Finding:
    """db.reachable for a session that could not be opened (the message has no password)."""
    summary = f"cannot connect: {error.failure.value}: {error.detail}"
    return Finding(
        "db.reachable", Status.CRIT, label, summary, (Evidence(error.where, str(error)),)
    )


@dataclass(frozen=True, slots=True)
class DbCheck:
    """A check that asks PostgreSQL through an open session."""

    id: str
    title: str
    body: Body
    domain: str = DOMAIN

    async def run(self, ctx: CheckContext) -> list[Finding]:
        """As a wizard step: a fresh `DbContext` from the context's `DbLink`, then `check`."""
        link = cast("ContextSource | None", ctx.database)
        if link is None:
            said = "no PostgreSQL target to check (the wizard was given no database)"
            return [Finding(self.id, Status.UNKNOWN, ctx.host, said)]
        try:
            db = await link.context()
        except PgConnectError as error:
            if self.id == "db.reachable":
                return [unreachable(error, link.label)]
            said = f"not checked: cannot connect: {error.failure.value}: {error.detail}"
            return [Finding(self.id, Status.UNKNOWN, link.label, said)]
        db.focus = ctx.params.get("focus", "")
        return await self.check(db)

    async def check(self, db: DbContext) -> list[Finding]:
        """The body's findings; a query it could not run is one UNKNOWN finding saying why."""
        try:
            return await self.body(db)
        except PgQueryError as error:
            return [Finding(self.id, Status.UNKNOWN, db.label, cannot_read(error, db))]
        except (KeyError, TypeError, ValueError) as error:  # a server that answers oddly
            said = f"unexpected answer from the server ({type(error).__name__}: {error})"
            return [Finding(self.id, Status.UNKNOWN, db.label, said)]


def cannot_read(error: PgQueryError, db: DbContext) -> str:
    said = f"cannot read: {error.failure.value}: {error.detail}"
    if error.failure is PgFailure.PERMISSION_DENIED:
        said += f" (grant pg_monitor to {db.user})"
    return said
