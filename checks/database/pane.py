"""What the Host screen's database pane shows: one `PaneSnapshot` of a target per refresh.

Four cheap queries on the link's monitoring session (statistics views; its short
lock_timeout never queues behind a lock): connections by state against the slots ordinary
users may take, statements running now, who blocks whom, transactions per second and cache
hit ratio since the last reading, and replication. fleetdeck's own sessions are in no list
and no count, and the pane's own statements are taken out of the transaction rate.

Nothing here raises for a server that is down, silent or refusing: a snapshot's `error`
names the target and the cause. A part that cannot be read (no right to it, a lock wait
given up) is a note, and the rest shows. Server text is made printable here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from fleetdeck.checks.database.base import DbContext, cannot_read
from fleetdeck.checks.database.queries import STANDBYS, Backend, LockChain, lock_chains
from fleetdeck.checks.database.standby import read_standby_lag
from fleetdeck.checks.database.wording import hidden_note, plural, shown
from fleetdeck.checks.model import printable
from fleetdeck.hosts.postgres.session import PgConnectError, PgQueryError
from fleetdeck.hosts.units import human_bytes, human_duration

if TYPE_CHECKING:
    from fleetdeck.checks.database.link import DbLink

ACTIVE_SHOWN = 12
"""Running statements kept (the longest running first); the count says how many in all."""
CHAINS_SHOWN = 5
WAITERS_SHOWN = 6
STANDBYS_SHOWN = 4
QUERY_SHOWN = 160

STATS = """/* fleetdeck: database stats */ SELECT xact_commit + xact_rollback AS xacts,
 blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database() LIMIT 1"""

STATE_ORDER = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SessionLine:
    """One session as a line of the pane (text already printable and one line)."""

    pid: int
    seconds: float | None
    """Running its statement (active), waiting on its lock (a waiter), in its transaction
    (a root blocker)."""
    state: str
    wait: str
    who: str
    """user@client"""
    client: str
    application: str
    query: str
    blocked_by: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainView:
    """A root blocker and the sessions behind it; `root` None: said in `root_text`."""

    root_pid: int
    root: SessionLine | None
    root_text: str
    waiting: tuple[SessionLine, ...]
    total: int
    direct: int
    longest_wait: float


@dataclass(frozen=True, slots=True)
class Counters:
    """pg_stat_database for the current database at one moment, and how many statements
    the pane had sent by then (its own transactions, left out of the rate)."""

    xacts: int
    blks_hit: int
    blks_read: int
    sent: int
    at: float


@dataclass(frozen=True, slots=True)
class PaneSnapshot:
    """One reading of a target, or why there is none (`error`); the rate's counters and
    the pane's statement count carry over a failed reading."""

    label: str
    where: str
    at: float
    """time.monotonic() of the reading (ages and rates)."""
    taken: float
    """time.time() of the reading (shown)."""
    error: str | None = None
    user: str = ""
    database: str = ""
    version: str = ""
    standby: bool | None = None
    usable: int = 0
    seen: bool = False
    """pg_stat_activity was read (connections, statements, chains); if not, a note says why."""
    states: tuple[tuple[str, int], ...] = ()
    own: int = 0
    active: tuple[SessionLine, ...] = ()
    active_total: int = 0
    chains: tuple[ChainView, ...] = ()
    tps: float | None = None
    cache_hit: float | None = None
    rate_note: str = ""
    """Why `tps` is None: "first reading" (a rate needs two), "statistics were reset"."""
    counters: Counters | None = None
    replication: tuple[str, ...] = ()
    hidden: str = ""
    notes: tuple[str, ...] = ()
    sent: int = 0

    @property
    def connections(self) -> int:
        return sum(n for _, n in self.states)

    @property
    def role(self) -> str:
        if self.standby is None:
            return "role unknown"
        return "standby" if self.standby else "primary"


async def read_pane(link: DbLink, previous: PaneSnapshot | None = None) -> PaneSnapshot:
    """One reading of the target; never raises for what the server does (see the module)."""
    base = PaneSnapshot(link.label, link.where, time.monotonic(), time.time())
    sent = previous.sent if previous else 0
    counters = previous.counters if previous else None
    try:
        db = await link.context()
    except PgConnectError as error:
        said = f"cannot connect to {error.where}: {error.failure.value}: {error.detail}"
        return replace(base, error=printable(said), sent=sent, counters=counters)
    try:
        return await _read(db, base, previous, sent)
    except PgQueryError as error:
        said = f"{error.where}: {error.failure.value}: {error.detail}"
        said += " (the pane reconnects at its next reading)" if db.gone is not None else ""
    except (KeyError, TypeError, ValueError) as error:  # a server that answers oddly
        said = f"{link.where}: unexpected answer ({type(error).__name__}: {error})"
    return replace(base, error=printable(said), sent=sent + len(db.timings), counters=counters)


async def _read(
    db: DbContext, base: PaneSnapshot, previous: PaneSnapshot | None, sent: int
) -> PaneSnapshot:
    server = await db.server()
    notes: list[str] = []
    activity = await _part(db, "sessions", db.activity(), notes)
    rows = await _part(db, "transaction rate", db.fetch(STATS), notes)
    counters = None
    if rows:
        hit, read = int(rows[0]["blks_hit"] or 0), int(rows[0]["blks_read"] or 0)
        at, done = time.monotonic(), sent + len(db.timings)
        counters = Counters(int(rows[0]["xacts"] or 0), hit, read, done, at)
    tps, cache, rate_note = rates(counters, previous.counters if previous else None)
    replication = await _part(db, "replication", _replication(db, server.standby), notes)
    snapshot = replace(
        base,
        user=printable(server.user),
        database=printable(server.database),
        version=server.version.split(" ")[0],
        standby=server.standby,
        usable=server.usable,
        tps=tps,
        cache_hit=cache,
        rate_note=rate_note,
        counters=counters,
        replication=replication or (),
        notes=tuple(notes),
        sent=sent + len(db.timings),
    )
    if activity is None:
        return snapshot
    clients = activity.clients
    states = Counter("hidden" if b.hidden else (b.state or "starting") for b in clients)
    order = [s for s in STATE_ORDER if s in states] + sorted(set(states) - set(STATE_ORDER))
    running = sorted(
        (b for b in clients if b.state == "active" and not b.hidden),
        key=lambda b: -(b.query_seconds or 0.0),
    )
    chains = lock_chains(activity.backends)
    return replace(
        snapshot,
        seen=True,
        states=tuple((s, states[s]) for s in order),
        own=activity.own,
        active=tuple(_line(b, b.query_seconds) for b in running[:ACTIVE_SHOWN]),
        active_total=len(running),
        chains=tuple(_chain(c) for c in chains[:CHAINS_SHOWN]),
        hidden=hidden_note(activity, server),
    )


async def _part(db: DbContext, what: str, read: Awaitable[T], notes: list[str]) -> T | None:
    """A part of the reading, or None with a note saying why not; a lost or silent session
    ends the whole reading (nothing more would come back)."""
    try:
        return await read
    except PgQueryError as error:
        if db.gone is not None:
            raise
        notes.append(f"{what}: {printable(cannot_read(error, db))}")
        return None


def rates(now: Counters | None, before: Counters | None) -> tuple[float | None, float | None, str]:
    """Transactions per second (the pane's own left out) and cache hit % between two
    readings; on the first reading, the hit % since the statistics were reset."""
    if now is None:
        return None, None, ""
    blocks = now.blks_hit + now.blks_read
    cache = 100.0 * now.blks_hit / blocks if blocks else None
    if before is None:
        return None, cache, "first reading"
    took, moved = now.at - before.at, now.xacts - before.xacts
    hit, read = now.blks_hit - before.blks_hit, now.blks_read - before.blks_read
    if took <= 0 or moved < 0 or hit < 0 or read < 0:
        return None, cache, "statistics were reset"
    if hit + read:
        cache = 100.0 * hit / (hit + read)
    return max(moved - (now.sent - before.sent), 0) / took, cache, ""


def _flat(text: str | None) -> str:
    return printable(" ".join((text or "").split()))


def _line(backend: Backend, seconds: float | None) -> SessionLine:
    wait = f"{backend.wait_event_type}:{backend.wait_event}" if backend.wait_event else ""
    client = _flat(backend.client)
    who = (_flat(backend.user) or "?") + (f"@{client}" if client else "")
    return SessionLine(
        pid=backend.pid,
        seconds=seconds,
        state="hidden" if backend.hidden else _flat(backend.state) or "starting",
        wait=_flat(wait),
        who=who,
        client=client,
        application=_flat(backend.application),
        query="" if backend.hidden else shown(backend.query, QUERY_SHOWN),
        blocked_by=tuple(dict.fromkeys(backend.blocked_by)),
    )


def _chain(chain: LockChain) -> ChainView:
    root = chain.root
    if chain.root_pid == 0:
        text = "a prepared transaction (see pg_prepared_xacts)"
    elif root is None:
        text = f"pid {chain.root_pid} (not listed: fleetdeck's own, or it just ended)"
    else:
        text = f"pid {root.pid}"
    return ChainView(
        root_pid=chain.root_pid,
        root=_line(root, root.xact_seconds) if root is not None else None,
        root_text=text,
        waiting=tuple(_line(b, b.waiting) for b in chain.waiting[:WAITERS_SHOWN]),
        total=len(chain.waiting),
        direct=len(chain.direct),
        longest_wait=chain.longest_wait,
    )


async def _replication(db: DbContext, standby: bool) -> tuple[str, ...]:
    """A standby's own lag, or a primary's standbys (a few, then how many more)."""
    if standby:
        own = await read_standby_lag(db, probe=0.0)  # one look per refresh: no waiting
        text = (
            f"standby of {_flat(own.sender) or '?'} (receiver {own.receiver or 'not running'})"
            f": {own.words()}"
        )
        return (text + ("; replay is paused" if own.paused else ""),)
    rows = await db.fetch(STANDBYS)
    if not rows:
        return ("primary, no standbys streaming from it",)
    lines, hidden = [], 0
    for r in rows:
        if r["state"] is None:
            hidden += 1
            continue
        name = _flat(r["application_name"]) or _flat(r["client_addr"]) or f"pid {r['pid']}"
        lag = "?" if r["replay_lag"] is None else human_duration(r["replay_lag"])
        lines.append(
            f"standby {name} ({_flat(r['client_addr']) or 'local'}) {r['state']} "
            f"{r['sync_state']}: replay lag {lag}, {human_bytes(r['behind_bytes'] or 0)} behind"
        )
    said = [f"primary, {plural(len(rows), 'standby')}:", *lines[:STANDBYS_SHOWN]]
    if len(lines) > STANDBYS_SHOWN:
        said.append(f"and {plural(len(lines) - STANDBYS_SHOWN, 'more standby')}")
    if hidden:
        verb = "hides its" if hidden == 1 else "hide their"
        said.append(f"{plural(hidden, 'standby')} {verb} state: grant pg_monitor to see it")
    return tuple(said)
