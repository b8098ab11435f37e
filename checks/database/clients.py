"""`db.clients`: the server's client connections by the address they come from (runbook R09,
the security review's database part): how many each address holds, as whom and to which
database, its share of the slots, and whether the address is one the settings expect.

The local socket has no address (pg_stat_activity's client_addr is NULL, client_port -1) and
is shown as `local socket`; it and loopback are local, always expected. Another user's
session hides its address from a role without pg_read_all_stats, so such sessions are counted
apart (`hidden`) and make the finding UNKNOWN: the crowd may be among them. fleetdeck's own
sessions are left out, as in every database check. The figures come from the activity
snapshot the other checks of the run share, so this check sends no query of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from fleetdeck.checks.database.base import DbCheck, DbContext
from fleetdeck.checks.database.queries import Backend, ServerInfo
from fleetdeck.checks.database.wording import hidden_note, plural, worst
from fleetdeck.checks.model import Evidence, Finding, Status, aligned, printable

LOCAL_SOCKET = "local socket"
"""How `queries.backend_from_row` names a Unix-socket client (no address, port -1)."""
HIDDEN = "hidden"
NAMED = 3
"""Users and databases named per address (the rest are counted)."""


@dataclass(slots=True)
class Source:
    """The connections from one client address."""

    address: str
    kind: str
    """`local`, `expected`, `unexpected` (outside a set expected_clients), `remote` (no list
    set) or `hidden`."""
    users: Counter[str] = field(default_factory=Counter)
    databases: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return self.users.total()


def _ip(address: str) -> IPv4Address | IPv6Address | None:
    """The address as an IP (an IPv4-mapped IPv6 one as its IPv4), or None if it is not one."""
    try:
        ip = ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def kind_of(address: str | None, expected: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """Where a client address stands: local (the socket, loopback), expected, unexpected,
    or remote when no expected_clients are set; hidden when the role may not see it."""
    if address is None:
        return HIDDEN
    if address == LOCAL_SOCKET:
        return "local"
    ip = _ip(address)
    if ip is not None and ip.is_loopback:
        return "local"
    if not expected:
        return "remote"
    if ip is not None and any(ip.version == net.version and ip in net for net in expected):
        return "expected"
    return "unexpected"


def group_clients(
    clients: tuple[Backend, ...], expected: tuple[IPv4Network | IPv6Network, ...]
) -> list[Source]:
    """The client connections by address, the most connections first (then by address)."""
    sources: dict[str, Source] = {}
    for backend in clients:
        address = (None if backend.hidden else backend.client) or None
        key = printable(address, one_line=True) if address else HIDDEN
        source = sources.setdefault(key, Source(key, kind_of(address, expected)))
        source.users[printable(backend.user or "?", one_line=True)] += 1
        source.databases[printable(backend.database or "?", one_line=True)] += 1
    return sorted(sources.values(), key=lambda s: (-s.count, s.address))


def _named(counts: Counter[str]) -> str:
    """`app 5, report 1 and 2 more`: the first few by count (then by name)."""
    common = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{name} {n}" for name, n in common[:NAMED])
    return text + (f" and {len(common) - NAMED} more" if len(common) > NAMED else "")


def _addresses(count: int) -> str:
    return f"{count} address" + ("" if count == 1 else "es")


def _listed(sources: list[Source], top: int) -> str:
    """`local socket 3, 127.0.0.1 2 and 4 more addresses (7)`: the first `top` by count."""
    text = ", ".join(f"{s.address} {s.count}" for s in sources[:top])
    if rest := sources[top:]:
        text += f" and {len(rest)} more ({sum(s.count for s in rest)})"
    return text


async def _clients(db: DbContext) -> list[Finding]:
    server, activity = await db.server(), await db.activity()
    th = db.thresholds
    usable = server.usable
    sources = group_clients(activity.clients, th.expected_clients)
    seen = [s for s in sources if s.kind != HIDDEN]
    total = sum(s.count for s in sources)

    problems: list[str] = []
    statuses: list[Status] = []
    crowded = [(s, th.client_share.grade(100.0 * s.count / usable)) for s in seen]
    crowded = [(s, status) for s, status in crowded if status is not Status.OK]
    for source, status in crowded[: th.top]:
        statuses.append(status)
        problems.append(
            f"{source.address} holds {source.count} of {usable} slots "
            f"({100.0 * source.count / usable:.0f} %, as {_named(source.users)})"
        )
    if len(crowded) > th.top:
        statuses.append(crowded[th.top][1])
        more = len(crowded) - th.top
        problems.append(f"{_addresses(more)} more over {th.client_share.warn:g} % each")
    unexpected = [s for s in seen if s.kind == "unexpected"]
    outside = sum(s.count for s in unexpected)
    status = th.unexpected_clients.grade(outside) if unexpected else Status.OK
    if status is not Status.OK:
        statuses.append(status)
        problems.append(
            f"{plural(outside, 'connection')} from addresses not in expected_clients: "
            + _listed(unexpected, th.top)
        )

    overview = f"{plural(total, 'client connection')} from {_addresses(len(sources))}"
    if sources:
        overview += ": " + _listed(sources, th.top)
    summary = "; ".join([*problems, overview])
    final = worst(statuses)
    if note := hidden_note(activity, server):
        summary += f"; {note}"
        final = final if final is not Status.OK else Status.UNKNOWN
    listed = {s.address for s in (*sources[: th.top], *unexpected[: th.top])}
    shown = [s for s in sources if s.address in listed]
    rest = [s for s in sources if s.address not in listed]
    evidence = (_evidence(db, server, shown, rest, activity.own),)
    return [Finding("db.clients", final, db.label, summary, evidence)]


def _evidence(
    db: DbContext, server: ServerInfo, shown: list[Source], rest: list[Source], own: int
) -> Evidence:
    """The addresses `shown` (the top ones and the unexpected) as a table, the `rest`
    counted, then what they were judged against."""
    th, usable = db.thresholds, server.usable
    rows = [("address", "kind", "conns", "share", "users", "databases")]
    for s in shown:
        share = f"{100.0 * s.count / usable:.0f} %"
        rows.append((s.address, s.kind, str(s.count), share, _named(s.users), _named(s.databases)))
    lines = aligned(rows)
    if rest:
        more = sum(s.count for s in rest)
        lines.append(f"and {_addresses(len(rest))} more with {plural(more, 'connection')}")
    expected = ", ".join(str(n) for n in th.expected_clients)
    limit = th.client_share
    lines += [
        f"slots for ordinary users: {usable} (max_connections {server.setting('max_connections')}"
        f" less {server.reserved} reserved); "
        f"one address holding {limit.warn:g} % of them is WARN, {limit.crit:g} % CRIT",
        f"expected_clients: {expected}"
        if expected
        else "expected_clients not set: remote addresses are listed, not judged",
        f"left out: {plural(own, 'session')} of fleetdeck's own",
    ]
    return Evidence("pg_stat_activity", "\n".join(lines))


CLIENTS = DbCheck("db.clients", "Connections by client address", _clients)
