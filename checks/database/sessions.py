"""The PostgreSQL checks on sessions (runbooks D1-D3): reachability and login, connections
against max_connections, sessions idle in a transaction, long-running queries, lock chains.

A backend's target is `pid N`; its evidence starts with pid and backend_start, the identity a
fix pins. fleetdeck's own sessions are in no list and no count (see `checks.database.queries`).
"""

from __future__ import annotations

from collections import Counter

from fleetdeck.checks.database import fixes as db_fixes
from fleetdeck.checks.database.base import DbCheck, DbContext
from fleetdeck.checks.database.queries import Activity, Backend, LockChain, lock_chains, read_held
from fleetdeck.checks.database.wording import (
    backend_lines,
    hidden_note,
    ms,
    plural,
    shown,
    span,
    who,
    with_hidden,
)
from fleetdeck.checks.model import Evidence, Finding, Fix, Status, printable
from fleetdeck.hosts.units import human_duration

# -- D1 reachability and authentication -----------------------------------------------------


async def _reachable(db: DbContext) -> list[Finding]:
    server = await db.server()
    first = next((t.seconds for t in db.timings if t.name == "server"), None)
    took = db.connect_seconds
    limit = db.thresholds.connect_seconds
    status = limit.grade(took)
    role = "a standby (in recovery)" if server.standby else "a primary"
    summary = (
        f"{server.user} logged in to {server.database} in {ms(took)}: "
        f"PostgreSQL {server.version}, {role}"
    )
    if status is not Status.OK:
        summary += f"; connecting took over {limit.warn:g} s"
    if server.version_num < 130000:
        summary += "; versions before 13 are past end of life and some checks cannot read them"
    lines = [
        f"connect and authenticate: {ms(took)}",
        f"first query: {ms(first)}",
        f"server_version {server.version}, in recovery: {server.standby}",
        f"user {server.user}, pg_read_all_stats: {server.read_all_stats}",
    ]
    return [
        Finding("db.reachable", status, db.label, summary, (Evidence("connect", "\n".join(lines)),))
    ]


# -- D2 connections -------------------------------------------------------------------------


def _state(backend: Backend) -> str:
    return "hidden" if backend.hidden else (backend.state or "starting")


async def _connections(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    clients = activity.clients
    usable = server.usable
    percent = 100.0 * len(clients) / usable
    status = db.thresholds.connections.grade(percent)
    states = Counter(_state(b) for b in clients)
    by_state = ", ".join(f"{n} {state}" for state, n in states.most_common()) or "none"
    summary = f"{len(clients)} of {usable} connections in use ({percent:.0f} %): {by_state}"
    if status is not Status.OK:
        summary += f"; {max(usable - len(clients), 0)} left before only superusers can connect"
    if note := hidden_note(activity, server):
        summary += f"; {note}"
    reserved = f"superuser_reserved_connections {server.setting('superuser_reserved_connections')}"
    if "reserved_connections" in server.settings:
        reserved += f", reserved_connections {server.setting('reserved_connections')}"
    groups = Counter((b.user or "?", b.client or "?", printable(b.application)) for b in clients)
    lines = [
        f"max_connections {server.setting('max_connections')} minus {reserved}: "
        f"{usable} for ordinary users",
        "by state: " + by_state,
        "by user, client, application:",
        *(f"  {n:5}  {u}  {c}  {a!r}" for (u, c, a), n in groups.most_common(10)),
        f"left out: {plural(activity.own, 'session')} of fleetdeck's own",
    ]
    evidence = (Evidence("pg_stat_activity, pg_settings", "\n".join(lines)),)
    return [Finding("db.connections", status, db.label, summary, evidence)]


# -- D3 idle in transaction, long queries, lock chains --------------------------------------


def _blocking(activity: Activity) -> dict[int, int]:
    return {chain.root_pid: len(chain.waiting) for chain in lock_chains(activity.backends)}


async def _idle_in_transaction(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.idle_in_transaction
    blocking = _blocking(activity)
    idle = [b for b in activity.clients if (b.state or "").startswith("idle in transaction")]
    found = []
    for b in sorted(idle, key=lambda b: -(b.state_seconds or 0)):
        status = limit.grade(b.state_seconds)
        if status is Status.OK:
            continue
        summary = (
            f"pid {b.pid} ({who(b)}) has been idle in a transaction for "
            f"{human_duration(b.state_seconds or 0)}; the transaction has been open "
            f"{human_duration(b.xact_seconds or 0)}"
        )
        if (b.state or "").endswith("(aborted)"):
            summary += "; it failed and waits for a ROLLBACK"
        if waiting := blocking.get(b.pid):
            summary += f"; {plural(waiting, 'session')} wait on its locks"
        evidence = (Evidence("pg_stat_activity", "\n".join(backend_lines(b))),)
        fixes: tuple[Fix, ...] = ()
        if db_fixes.fixable(b):
            fixes = db_fixes.terminate(
                b, "db.idle_in_transaction", waiting or 0, server.database, db.dump_dir
            )
        found.append(Finding("db.idle_in_transaction", status, b.target, summary, evidence, fixes))
    calm = f"no session has been idle in a transaction for {span(limit.warn)} or more"
    if brief := len(idle) - len(found):
        calm += f" ({brief} briefly)"
    return with_hidden("db.idle_in_transaction", db, found, calm, hidden_note(activity, server))


async def _long_queries(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.long_query
    blocking = _blocking(activity)
    active = [b for b in activity.clients if b.state == "active"]
    found = []
    for b in sorted(active, key=lambda b: -(b.query_seconds or 0)):
        status = limit.grade(b.query_seconds)
        if status is Status.OK:
            continue
        summary = (
            f"pid {b.pid} ({who(b)}) has been running one statement for "
            f"{human_duration(b.query_seconds or 0)}"
        )
        if b.wait_event:
            summary += f", waiting on {b.wait_event_type} {b.wait_event}"
        if waiting := blocking.get(b.pid):
            summary += f"; {plural(waiting, 'session')} wait on its locks"
        summary += f": {shown(b.query, 80)}"
        evidence = (Evidence("pg_stat_activity", "\n".join(backend_lines(b))),)
        fixes: tuple[Fix, ...] = ()
        if db_fixes.fixable(b):
            cancel = db_fixes.cancel(b, "db.long_queries", waiting or 0)
            fixes = (
                cancel,
                *db_fixes.terminate(
                    b, "db.long_queries", waiting or 0, server.database, db.dump_dir
                ),
            )
        found.append(Finding("db.long_queries", status, b.target, summary, evidence, fixes))
    calm = f"no statement has run for {span(limit.warn)} or more"
    calm += f" ({plural(len(active), 'active session')})"
    return with_hidden("db.long_queries", db, found, calm, hidden_note(activity, server))


def _root(chain: LockChain) -> str:
    root = chain.root
    if chain.root_pid == 0:
        return "a prepared transaction (see pg_prepared_xacts)"
    if root is None:
        return f"pid {chain.root_pid} (not listed: fleetdeck's own, or it just ended)"
    if root.hidden:
        return f"pid {root.pid} ({root.user}: another user's session, its state is hidden)"
    xact = f", transaction open {human_duration(root.xact_seconds)}" if root.xact_seconds else ""
    return f"pid {root.pid} ({who(root)}, {root.state}{xact})"


def _chain_text(chain: LockChain, held: tuple[str, ...]) -> str:
    lines = backend_lines(chain.root) if chain.root else [_root(chain)]
    lines += [f"  holds {lock}" for lock in held]
    lines.append(f"waiting behind it ({len(chain.direct)} directly):")
    for waiter in chain.waiting:
        on = ", ".join(str(pid) for pid in waiter.blocked_by)
        lines.append(
            f"  {waiter.identity} ({who(waiter)}) waits on pid {on} for "
            f"{human_duration(waiter.waiting or 0)}: {shown(waiter.query, 120)}"
        )
    return "\n".join(lines)


WAITERS_NAMED = 5
"""Waiters a chain's summary names (the evidence lists them all)."""


def _waiters(chain: LockChain) -> str:
    """`pid 812 (3 s), pid 813 (1 s)`: who waits, longest first, and for how long."""
    ordered = sorted(chain.waiting, key=lambda b: -(b.waiting or 0.0))
    named = [f"pid {b.pid} ({_waited(b.waiting)})" for b in ordered[:WAITERS_NAMED]]
    more = len(ordered) - WAITERS_NAMED
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _waited(seconds: float | None) -> str:
    """`3 s` under a minute (a lock wait is read in seconds), else `2m 5s`; `wait hidden`
    for another user's session without pg_read_all_stats (never a made-up `0 s`)."""
    if seconds is None:
        return "wait hidden"
    return f"{seconds:.0f} s" if seconds < 60 else human_duration(seconds)


def _young(chain: LockChain, threshold: str) -> str:
    """A chain under the threshold, as far as its waits can be seen."""
    seen = [b.waiting for b in chain.waiting if b.waiting is not None]
    hidden = len(chain.waiting) - len(seen)
    if not seen:
        return f": how long they wait is hidden, so not judged against the {threshold} threshold"
    said = f": waiting {_waited(max(seen))}, under the {threshold} threshold"
    return said + (f" ({hidden} more with their wait hidden)" if hidden else "")


async def _lock_chain(db: DbContext) -> list[Finding]:
    """Every lock chain with its root blocker, what it holds and who waits: one younger
    than the threshold is listed as OK (during an incident the operator sees who blocks
    whom before it is late); the grade follows the longest wait."""
    server, activity = await db.server(), await db.activity()
    limit = db.thresholds.lock_wait
    chains = lock_chains(activity.backends)
    held = await read_held(db, [c.root_pid for c in chains if c.root_pid])
    found = [_chain_finding(db, server.database, c, held.get(c.root_pid, ())) for c in chains]
    unseen = sum(  # in a chain under the threshold: how long they waited is not known
        1
        for chain, finding in zip(chains, found, strict=True)
        for waiter in chain.waiting
        if waiter.hidden and finding.status is Status.OK
    )
    calm = f"no session waits on another's lock (the threshold: {span(limit.warn)})"
    note = ""
    if unseen:
        note = (
            f"{plural(unseen, 'session')} of other users wait on locks and hide for how "
            f"long: grant pg_monitor to {server.user} to see it"
        )
    return with_hidden("db.lock_chain", db, found, calm, note)


def _chain_finding(
    db: DbContext, database: str, chain: LockChain, held: tuple[str, ...]
) -> Finding:
    """One chain: its root, how many wait and how long, what the root holds; the fixes
    (terminate, cancel an active root) only once it is past the threshold."""
    limit = db.thresholds.lock_wait
    status = limit.grade(chain.longest_wait)
    total, direct = len(chain.waiting), len(chain.direct)
    summary = f"{_root(chain)} blocks {plural(total, 'session')}"
    summary += f" ({direct} directly)" if direct != total else ""
    if status is Status.OK:
        summary += _young(chain, span(limit.warn))
    else:
        summary += f"; the longest has waited {_waited(chain.longest_wait)}"
    summary += f"; it holds {held[0]}" if held else ""
    summary += f" and {len(held) - 1} more" if len(held) > 1 else ""
    summary += f"; waiters: {_waiters(chain)}"
    target = f"pid {chain.root_pid}" if chain.root_pid else "prepared transaction"
    source = "pg_stat_activity, pg_blocking_pids, pg_locks"
    evidence = (Evidence(source, _chain_text(chain, held)),)
    fixes: tuple[Fix, ...] = ()
    root = chain.root
    if status is not Status.OK and root is not None and db_fixes.fixable(root):
        fixes = db_fixes.terminate(root, "db.lock_chain", total, database, db.dump_dir)
        if root.state == "active":  # a running statement: cancelling it may be enough
            fixes = (db_fixes.cancel(root, "db.lock_chain", total), *fixes)
    return Finding("db.lock_chain", status, target, summary, evidence, fixes)


REACHABLE = DbCheck("db.reachable", "Reachable and logged in", _reachable)
CONNECTIONS = DbCheck("db.connections", "Connections against max_connections", _connections)
IDLE_IN_TRANSACTION = DbCheck(
    "db.idle_in_transaction", "Sessions idle in a transaction", _idle_in_transaction
)
LONG_QUERIES = DbCheck("db.long_queries", "Long-running queries", _long_queries)
LOCK_CHAIN = DbCheck("db.lock_chain", "Lock chains and their root blockers", _lock_chain)
